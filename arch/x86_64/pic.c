/*
 * BIOSes leave the 8259 master on vectors 8-15, where the PIT's IRQ 0 would
 * arrive as a "double fault" the moment interrupts are enabled. Remap both
 * chips to 0x20-0x2F and mask every line. Harmless where there is no PIC.
 */
#include "pic.h"
#include "cpu.h"

void pic_disable(void)
{
    outb(0x20, 0x11); /* ICW1: init, expect ICW4 */
    outb(0xA0, 0x11);
    outb(0x21, 0x20); /* ICW2: vector bases */
    outb(0xA1, 0x28);
    outb(0x21, 0x04); /* ICW3: slave on IRQ 2 */
    outb(0xA1, 0x02);
    outb(0x21, 0x01); /* ICW4: 8086 mode */
    outb(0xA1, 0x01);
    outb(0x21, 0xFF); /* mask all */
    outb(0xA1, 0xFF);
}
