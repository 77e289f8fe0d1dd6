/*
 * The serial console. Lines are formatted into a stack buffer and written
 * under a spin lock so lines from different CPUs do not interleave; the
 * console is a debugging aid, never on the data path.
 */
#include <stdarg.h>
#include <stdint.h>
#include "console.h"
#include "clock.h"
#include "format.h"
#include "percpu.h"
#include "../arch/x86_64/serial.h"
#include "../arch/x86_64/trap.h"
#include "../arch/x86_64/shutdown.h"
#include "../arch/x86_64/cpu.h"

#define LINE_MAX 512
/* How long a crash report waits for the console lock: far longer than any line takes to print. */
#define CRASH_LOCK_SPINS 10000000u

static int console_lock;

void console_init(void) { serial_init(); }

void console_write(const char *s, size_t n)
{
    while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
        cpu_relax();
    serial_write(s, n);
    __atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

static void vprint(const char *prefix, const char *fmt, va_list ap)
{
    char line[LINE_MAX];
    int n = prefix ? fmt_snprintf(line, sizeof line, "%s", prefix) : 0;
    int m = fmt_vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len >= sizeof line)
        len = sizeof line - 1;
    console_write(line, len);
}

void kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint(NULL, fmt, ap);
    va_end(ap);
}

void klog(const char *fmt, ...)
{
    char prefix[48];
    uint64_t ns = now_ns();
    fmt_snprintf(prefix, sizeof prefix, "[%u %lu.%06lu] ", this_cpu_id_safe(),
                 (unsigned long)(ns / 1000000000u), (unsigned long)(ns / 1000u % 1000000u));
    va_list ap;
    va_start(ap, fmt);
    vprint(prefix, fmt, ap);
    va_end(ap);
    console_write("\n", 1);
}

void crash_printf(const char *fmt, ...)
{
    char line[LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /*
     * Under the lock when it can be had soon, so that the line (run.py
     * reads "shoal: exit status N" from it) is not cut by another CPU's
     * output; without it when the lock's holder is the CPU that crashed.
     */
    bool locked = false;
    for (unsigned i = 0; i < CRASH_LOCK_SPINS && !locked; i++)
        if (!__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
            locked = true;
        else
            cpu_relax();
    serial_write(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    if (locked)
        __atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

void panic(const char *fmt, ...)
{
    irq_disable();
    char line[LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    fmt_vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    crash_printf("\n*** PANIC on cpu %u: %s\n", this_cpu_id_safe(), line);
    uint64_t rbp;
    __asm__ volatile("mov %%rbp, %0" : "=r"(rbp));
    trap_print_backtrace((uint64_t)__builtin_return_address(0), rbp);
    machine_exit(EXIT_CRASH);
}
