#ifndef KERNEL_MALLOC_H
#define KERNEL_MALLOC_H
#include <stddef.h>

void *malloc(size_t size);
void free(void *p);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);
void *aligned_alloc(size_t align, size_t size);
int posix_memalign(void **out, size_t align, size_t size);
size_t malloc_usable_size(void *p);
/* Send batched frees of other shards' memory home now (the reactor does this before halting). */
void malloc_flush_remote_frees(void);
#endif
