/*
 * Symbol table for backtraces, taken from the image itself. build-image.py
 * links twice: the first link's function symbols become a sorted table in
 * .ksymtab (after all code, so no function moves) for the second link.
 * The first link has no table: the weak references resolve to zero.
 */
#include <stddef.h>
#include "ksyms.h"

extern const uint64_t ksym_count __attribute__((weak));
extern const uint64_t ksym_addrs[] __attribute__((weak));
extern const uint32_t ksym_name_offsets[] __attribute__((weak));
extern const char ksym_names[] __attribute__((weak));

const char *ksym_lookup(uint64_t addr, uint64_t *offset)
{
    if (!&ksym_count || !ksym_addrs || !ksym_count)
        return NULL;
    size_t lo = 0, hi = ksym_count;
    if (addr < ksym_addrs[0])
        return NULL;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (ksym_addrs[mid] <= addr)
            lo = mid;
        else
            hi = mid;
    }
    /* The last entry is the end-of-text sentinel. */
    if (lo + 1 >= ksym_count)
        return NULL;
    *offset = addr - ksym_addrs[lo];
    return ksym_names + ksym_name_offsets[lo];
}
