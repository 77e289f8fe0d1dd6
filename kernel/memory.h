#ifndef KERNEL_MEMORY_H
#define KERNEL_MEMORY_H
#include <stdint.h>
#include "../arch/x86_64/paging.h"

/* Split free RAM above the image into one region per CPU, set up each region's
   page and size-class allocators, and place each CPU's percpu block in its region. */
void memory_init(const struct ram_range *free_ram, int n, unsigned ncpus);
/* Which shard owns p, or -1 if p is in no shard's region. */
int memory_shard_of(const void *p);
uint64_t memory_total_bytes(void);
#endif
