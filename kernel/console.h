#ifndef KERNEL_CONSOLE_H
#define KERNEL_CONSOLE_H
#include <stddef.h>

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

void console_init(void);
/* Whole lines from different CPUs never interleave. */
void console_write(const char *s, size_t n);
void kprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* One log line: "[cpu seconds.micros] message". */
void klog(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* For crash paths: takes no lock, so it works even if the crashing CPU held one. */
void crash_printf(const char *fmt, ...) PRINTF_LIKE(1, 2);
__attribute__((noreturn)) void panic(const char *fmt, ...) PRINTF_LIKE(1, 2);
#endif
