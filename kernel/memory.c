/*
 * Per-shard memory. Free RAM is cut into one contiguous region per CPU,
 * each starting on a 2 MiB boundary so that buddy blocks up to order 9 are
 * aligned absolutely. A region's allocator metadata and the CPU's percpu
 * block sit at the region's end, in memory the shard owns.
 */
#include "memory.h"
#include "percpu.h"
#include "console.h"
#include "bootinfo.h"

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

/*
 * CPU i gets 2 MiB units [i*U/n, (i+1)*U/n) of the free RAM laid end to end,
 * so shares differ by at most one unit. A share that straddles a hole keeps
 * its larger side (a region must be contiguous); the other side is lost.
 */
void memory_init(const struct ram_range *free_ram, int n, unsigned ncpus)
{
    uint64_t rb[BOOTINFO_MAX_RANGES], re[BOOTINFO_MAX_RANGES], units = 0;
    int nr = 0;
    for (int r = 0; r < n && nr < BOOTINFO_MAX_RANGES; r++) {
        uint64_t b = round_up(free_ram[r].base, MB2), e = (free_ram[r].base + free_ram[r].len) & ~(MB2 - 1);
        if (e <= b)
            continue;
        rb[nr] = b;
        re[nr++] = e;
        units += (e - b) / MB2;
    }
    if (units < ncpus)
        panic("memory: %lu MiB of free RAM cannot feed %u CPUs", (unsigned long)(units * 2), ncpus);
    int r = 0;
    uint64_t range_first_unit = 0; /* unit index where range r starts */
    for (unsigned cpu = 0; cpu < ncpus; cpu++) {
        uint64_t u0 = units * cpu / ncpus, u1 = units * (cpu + 1) / ncpus;
        while (r < nr && range_first_unit + (re[r] - rb[r]) / MB2 <= u0) {
            range_first_unit += (re[r] - rb[r]) / MB2;
            r++;
        }
        uint64_t range_units = (re[r] - rb[r]) / MB2;
        uint64_t a = u0 - range_first_unit, b = u1 - range_first_unit;
        if (b > range_units) {
            /* Straddles the end of range r: keep the larger side. */
            uint64_t here = range_units - a, next = b - range_units;
            if (next > here && r + 1 < nr) {
                range_first_unit += range_units;
                r++;
                a = 0;
                b = next;
            } else {
                b = range_units;
            }
        }
        setup_region(cpu, rb[r] + a * MB2, rb[r] + b * MB2);
    }
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
