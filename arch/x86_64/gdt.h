#ifndef ARCH_GDT_H
#define ARCH_GDT_H
#include <stdint.h>
/* Load the shared GDT and this CPU's TSS (IST1 = double fault, IST2 = NMI). */
void gdt_load(unsigned cpu);
#endif
