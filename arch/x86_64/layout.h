/* Memory layout constants shared by assembly and C. */
#ifndef ARCH_LAYOUT_H
#define ARCH_LAYOUT_H

#define KERNEL_BASE        0x100000
#define MAX_CPUS           64
#define PAGE_SIZE          4096

/*
 * Each CPU's stack block: guard pages (left unmapped once the final page
 * tables are live) under the kernel stack and under each IST stack, so an
 * overflow faults instead of corrupting a neighbour.
 */
#define STACK_GUARD0       0x0000
#define STACK_KERNEL       0x1000
#define STACK_KERNEL_SIZE  0x10000
#define STACK_GUARD1       0x11000
#define STACK_IST_DF       0x12000
#define STACK_IST_SIZE     0x2000
#define STACK_GUARD2       0x14000
#define STACK_IST_NMI      0x15000
#define STACK_BLOCK_SIZE   0x17000

#define STACK_KERNEL_TOP   (STACK_KERNEL + STACK_KERNEL_SIZE)
#define STACK_DF_TOP       (STACK_IST_DF + STACK_IST_SIZE)
#define STACK_NMI_TOP      (STACK_IST_NMI + STACK_IST_SIZE)

/* Real-mode page the AP trampoline is copied to (must be < 1 MiB, 4 KiB aligned). */
#define AP_TRAMPOLINE_BASE 0x8000

/* Pages reserved for the final page tables. */
#define PAGING_POOL_PAGES  160

#define GDT_KERNEL_CODE    0x08
#define GDT_KERNEL_DATA    0x10
#define GDT_TSS_FIRST      0x18

#define BOOT_PROTO_MULTIBOOT 1
#define BOOT_PROTO_PVH       2

/* Interrupt vectors beyond the exceptions. */
/* Device interrupts: 16 vectors a driver may claim (IOAPIC lines of virtio-mmio). */
#define VEC_IRQ_BASE       0xD0
#define VEC_IRQ_COUNT      16
#define VEC_TIMER          0xE0
#define VEC_WAKE           0xE1
/* MSI-X of a queue owned by the receiving CPU: waking it is all there is to do. */
#define VEC_QUEUE          0xE2
#define VEC_SPURIOUS       0xFF

#endif
