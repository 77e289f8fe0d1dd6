#include "percpu.h"
#include "../arch/x86_64/cpu.h"

struct percpu *cpu_table[MAX_CPUS];
unsigned cpu_total;

unsigned this_cpu_id_safe(void)
{
    if (!rdmsr(MSR_GS_BASE))
        return 0;
    return this_cpu_id();
}

void percpu_install(struct percpu *c)
{
    c->self = c;
    wrmsr(MSR_GS_BASE, (uint64_t)c);
}
