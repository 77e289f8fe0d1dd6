/* The shared IDT: exceptions, device lines, the LAPIC timer, the wake IPI, queue MSI-X, spurious. */
#include "trap.h"
#include "layout.h"

struct idt_gate {
    uint16_t off0;
    uint16_t sel;
    uint8_t ist;
    uint8_t type;
    uint16_t off1;
    uint32_t off2;
    uint32_t zero;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));

extern const uint64_t isr_table[32];
extern const uint64_t isr_irq_table[VEC_IRQ_COUNT];
extern const uint64_t isr_timer, isr_wake, isr_queue, isr_spurious, isr_ignore_addr;

static void set_gate(unsigned vec, uint64_t handler, unsigned ist)
{
    idt[vec] = (struct idt_gate){
        .off0 = handler & 0xFFFF,
        .sel = GDT_KERNEL_CODE,
        .ist = ist,
        .type = 0x8E, /* present, ring 0, 64-bit interrupt gate: IF cleared on entry */
        .off1 = (handler >> 16) & 0xFFFF,
        .off2 = handler >> 32,
    };
}

void idt_init(void)
{
    for (unsigned v = 32; v < 256; v++)
        set_gate(v, isr_ignore_addr, 0);
    for (unsigned v = 0; v < 32; v++)
        set_gate(v, isr_table[v], 0);
    set_gate(8, isr_table[8], 1);   /* double fault: IST1 */
    set_gate(2, isr_table[2], 2);   /* NMI: IST2 */
    set_gate(VEC_TIMER, isr_timer, 0);
    set_gate(VEC_WAKE, isr_wake, 0);
    set_gate(VEC_QUEUE, isr_queue, 0);
    for (unsigned i = 0; i < VEC_IRQ_COUNT; i++)
        set_gate(VEC_IRQ_BASE + i, isr_irq_table[i], 0);
    set_gate(VEC_SPURIOUS, isr_spurious, 0);
}

void idt_load(void)
{
    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) ptr = {
        sizeof(idt) - 1, (uint64_t)idt,
    };
    __asm__ volatile("lidt %0" ::"m"(ptr));
}
