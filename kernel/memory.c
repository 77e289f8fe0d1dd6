/*
 * Per-shard memory. Free RAM is cut into one contiguous region per CPU,
 * each starting on a 2 MiB boundary so that buddy blocks up to order 9 are
 * aligned absolutely. A region's allocator metadata and the CPU's percpu
 * block sit at the region's end, in memory the shard owns.
 */
#include "memory.h"
#include "percpu.h"
#include "console.h"

#define MB2 0x200000ULL

void *memset(void *, int, size_t);

/* Read-only after boot: region bounds by CPU, ascending. */
static uintptr_t region_base[MAX_CPUS], region_end[MAX_CPUS];
static unsigned region_count;
static uint64_t total_bytes;

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

static void setup_region(unsigned cpu, uintptr_t base, uintptr_t end)
{
    size_t n0 = (end - base) / PAGE_SIZE;
    size_t meta = round_up(sizeof(struct percpu), 64) + page_alloc_meta_size(n0) + 64 +
                  heap_meta_size(n0) + 64;
    uintptr_t meta_start = (end - round_up(meta, PAGE_SIZE)) & ~(uintptr_t)(PAGE_SIZE - 1);
    if (meta_start <= base + 16 * PAGE_SIZE)
        panic("memory: region for cpu %u too small (%lu KiB)", cpu, (unsigned long)((end - base) >> 10));
    size_t npages = (meta_start - base) / PAGE_SIZE;

    struct percpu *c = (struct percpu *)meta_start;
    memset(c, 0, sizeof *c);
    uint8_t *pa_meta = (uint8_t *)round_up(meta_start + sizeof *c, 64);
    uint8_t *heap_meta = (uint8_t *)round_up((uintptr_t)pa_meta + page_alloc_meta_size(npages), 64);
    page_alloc_init(&c->pages, base, npages, pa_meta);
    heap_init(&c->heap, &c->pages, heap_meta);
    c->id = cpu;
    c->region_base = base;
    c->region_end = end;
    cpu_table[cpu] = c;
    region_base[cpu] = base;
    region_end[cpu] = end;
    total_bytes += npages * PAGE_SIZE;
}

void memory_init(const struct ram_range *free_ram, int n, unsigned ncpus)
{
    uint64_t usable = 0;
    for (int r = 0; r < n; r++) {
        uint64_t b = round_up(free_ram[r].base, MB2), e = (free_ram[r].base + free_ram[r].len) & ~(MB2 - 1);
        if (e > b)
            usable += e - b;
    }
    uint64_t share = (usable / ncpus) & ~(MB2 - 1);
    if (share < MB2)
        panic("memory: %lu MiB of free RAM cannot feed %u CPUs", (unsigned long)(usable >> 20), ncpus);
    unsigned cpu = 0;
    for (int r = 0; r < n && cpu < ncpus; r++) {
        uint64_t b = round_up(free_ram[r].base, MB2), e = (free_ram[r].base + free_ram[r].len) & ~(MB2 - 1);
        while (cpu < ncpus && e > b && e - b >= share / 2) {
            uint64_t take = (e - b < share || cpu == ncpus - 1) ? e - b : share;
            if (cpu == ncpus - 1 && r + 1 < n && take < share)
                take = e - b;
            setup_region(cpu++, b, b + take);
            b += take;
        }
    }
    if (cpu < ncpus)
        panic("memory: could only make %u regions for %u CPUs", cpu, ncpus);
    region_count = ncpus;
}

int memory_shard_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    unsigned lo = 0, hi = region_count;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (a < region_base[mid])
            hi = mid;
        else if (a >= region_end[mid])
            lo = mid + 1;
        else
            return (int)mid;
    }
    return -1;
}

uint64_t memory_total_bytes(void) { return total_bytes; }
