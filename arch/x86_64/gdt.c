/*
 * One GDT for all CPUs: kernel code/data, then a 16-byte TSS descriptor per
 * CPU. Each TSS only provides IST stacks: double fault and NMI run on their
 * own guarded stacks so that a kernel-stack overflow still gets reported.
 */
#include "gdt.h"
#include "layout.h"

struct tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));

extern uint8_t cpu_stacks[];

static struct tss tss[MAX_CPUS] __attribute__((aligned(64)));
static uint64_t gdt[3 + 2 * MAX_CPUS] __attribute__((aligned(16)));

static void tss_descriptor(unsigned cpu)
{
    uint64_t base = (uint64_t)&tss[cpu];
    uint64_t limit = sizeof(struct tss) - 1;
    uint64_t lo = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ULL << 40) |
                  (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
    gdt[3 + 2 * cpu] = lo;
    gdt[4 + 2 * cpu] = base >> 32;
}

void gdt_load(unsigned cpu)
{
    uint8_t *stacks = cpu_stacks + (uint64_t)cpu * STACK_BLOCK_SIZE;
    gdt[1] = 0x00AF9A000000FFFFULL;
    gdt[2] = 0x00CF92000000FFFFULL;
    tss[cpu].ist[0] = (uint64_t)(stacks + STACK_DF_TOP);
    tss[cpu].ist[1] = (uint64_t)(stacks + STACK_NMI_TOP);
    tss[cpu].iomap_base = sizeof(struct tss);
    tss_descriptor(cpu);

    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) ptr = {
        sizeof(gdt) - 1, (uint64_t)gdt,
    };
    __asm__ volatile("lgdt %0" ::"m"(ptr));
    __asm__ volatile(
        "pushq %0\n\t"
        "leaq 1f(%%rip), %%rax\n\t"
        "pushq %%rax\n\t"
        "lretq\n"
        "1:\n\t"
        "movw %w1, %%ax\n\t"
        "movw %%ax, %%ds\n\t"
        "movw %%ax, %%es\n\t"
        "movw %%ax, %%ss\n\t"
        :: "i"(GDT_KERNEL_CODE), "i"(GDT_KERNEL_DATA) : "rax", "memory");
    uint16_t sel = GDT_TSS_FIRST + 16 * cpu;
    __asm__ volatile("ltr %0" ::"r"(sel));
}
