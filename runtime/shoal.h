/*
 * The Shoal runtime API: what applications program against. Everything is
 * per shard (one shard per vCPU); callbacks run to completion on the shard
 * that owns the object and never block. An application provides
 *     void app_main(int argc, char **argv);
 * which runs once on every shard after all shards are up.
 */
#ifndef SHOAL_H
#define SHOAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernel/task.h"
#include "../kernel/timer_wheel.h"

void app_main(int argc, char **argv);

/* Shards */
unsigned shard_id(void);
unsigned shard_count(void);

/* Cross-shard calls: fn(arg) runs on `shard` soon, in its reactor. */
void smp_call(unsigned shard, void (*fn)(void *), void *arg);
bool smp_try_call(unsigned shard, void (*fn)(void *), void *arg);

/* Tasks: intrusive, scheduling allocates nothing. */
void task_schedule(struct task *t);

/* Timers on this shard. Deadlines are absolute now_ns() values. */
uint64_t now_ns(void);       /* monotonic */
uint64_t wall_ns(void);      /* Unix time */
void shoal_timer_init(struct timer *t, void (*fn)(struct timer *));
void shoal_timer_arm(struct timer *t, uint64_t deadline_ns);
bool shoal_timer_cancel(struct timer *t);

/* Memory: per-shard heaps; freeing another shard's memory is allowed. */
void *malloc(size_t size);
void free(void *p);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);
void *aligned_alloc(size_t align, size_t size);
int posix_memalign(void **out, size_t align, size_t size);
size_t shoal_heap_bytes_in_use(void);        /* this shard */
void shoal_flush_remote_frees(void);

/* Strings */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* Console */
void shoal_print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* raw text */
void shoal_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));    /* "[cpu t] ..." line */

/* Counters of this shard's reactor (for benchmarks and tests). */
struct shoal_reactor_stats { uint64_t loops, tasks, messages, timers, halts, busy_cycles, idle_cycles; };
void shoal_reactor_stats(unsigned shard, struct shoal_reactor_stats *out);

/* Power off the VM with this exit status (from any shard). */
__attribute__((noreturn)) void shoal_exit(int status);

#endif
