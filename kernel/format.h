/*
 * snprintf for the kernel, with C semantics: the output is always
 * NUL-terminated when size > 0 and the return value is the length the full
 * output would have had.
 *
 * Conversions: d i u x X o p s c %. Flags: - 0 + space #. Width and
 * precision, either may be '*'. Length modifiers: hh h l ll z t j. No
 * floating point (the kernel is built with -mgeneral-regs-only) and no %n.
 * Like glibc, %p prints 0x-prefixed hex and "(nil)" for NULL, and %s of
 * NULL prints "(null)", or nothing when the precision is below 6.
 */
#ifndef KERNEL_FORMAT_H
#define KERNEL_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int fmt_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
