/*
 * Per-shard memory. Free RAM is cut into one span per CPU, each starting on
 * a 2 MiB boundary so that buddy blocks up to order 9 are aligned
 * absolutely; a span may cross holes, which its page allocator never uses. A region's allocator metadata and the CPU's percpu
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

/* Free RAM in whole 2 MiB units, ascending; the gaps between ranges are holes. */
struct units {
    int n;
    uint64_t base[BOOTINFO_MAX_RANGES], count[BOOTINFO_MAX_RANGES];
    uint64_t total;
};

/* Address of unit u counted across all ranges (u < total). */
static uint64_t unit_addr(const struct units *u, uint64_t unit)
{
    int r = 0;
    while (unit >= u->count[r])
        unit -= u->count[r++];
    return u->base[r] + unit * MB2;
}

/* Start of the RAM range holding addr (addr must be in one). */
static uint64_t range_base_of(const struct units *u, uint64_t addr)
{
    int r = 0;
    while (addr >= u->base[r] + u->count[r] * MB2)
        r++;
    return u->base[r];
}

/*
 * The span [base, end) may cross holes: only the RAM in it is handed to the
 * page allocator. The percpu block and the allocator metadata take the
 * span's last pages, which are RAM (the span ends on a unit).
 */
static void setup_region(unsigned cpu, const struct units *u, uintptr_t base, uintptr_t end)
{
    size_t n0 = (end - base) / PAGE_SIZE;
    size_t meta = round_up(sizeof(struct percpu), 64) + page_alloc_meta_size(n0) + 64 +
                  heap_meta_size(n0) + 64;
    uintptr_t meta_start = end - round_up(meta, PAGE_SIZE);
    if (meta_start <= base + 16 * PAGE_SIZE || range_base_of(u, end - 1) > meta_start)
        panic("memory: region for cpu %u too small (%lu KiB)", cpu, (unsigned long)((end - base) >> 10));
    size_t npages = (meta_start - base) / PAGE_SIZE;

    struct percpu *c = (struct percpu *)meta_start;
    memset(c, 0, sizeof *c);
    uint8_t *pa_meta = (uint8_t *)round_up(meta_start + sizeof *c, 64);
    uint8_t *heap_meta = (uint8_t *)round_up((uintptr_t)pa_meta + page_alloc_meta_size(npages), 64);
    page_alloc_init(&c->pages, base, npages, pa_meta);
    for (int r = 0; r < u->n; r++) {
        uint64_t b = u->base[r] > base ? u->base[r] : base;
        uint64_t e = u->base[r] + u->count[r] * MB2;
        e = e < meta_start ? e : meta_start;
        if (e > b)
            page_alloc_add_free(&c->pages, (b - base) / PAGE_SIZE, (e - b) / PAGE_SIZE);
    }
    heap_init(&c->heap, &c->pages, heap_meta);
    c->id = cpu;
    c->region_base = base;
    c->region_end = end;
    cpu_table[cpu] = c;
    region_base[cpu] = base;
    region_end[cpu] = end;
    total_bytes += page_alloc_free_pages(&c->pages) * PAGE_SIZE;
}

/* CPU i gets units [i*U/n, (i+1)*U/n): shares differ by at most one unit, holes cost nothing. */
void memory_init(const struct ram_range *free_ram, int n, unsigned ncpus)
{
    struct units u = { 0 };
    for (int r = 0; r < n && u.n < BOOTINFO_MAX_RANGES; r++) {
        uint64_t b = round_up(free_ram[r].base, MB2), e = (free_ram[r].base + free_ram[r].len) & ~(MB2 - 1);
        if (e <= b)
            continue;
        u.base[u.n] = b;
        u.count[u.n++] = (e - b) / MB2;
        u.total += (e - b) / MB2;
    }
    if (u.total < ncpus)
        panic("memory: %lu MiB of free RAM cannot feed %u CPUs", (unsigned long)(u.total * 2), ncpus);
    for (unsigned cpu = 0; cpu < ncpus; cpu++) {
        uint64_t first = u.total * cpu / ncpus, last = u.total * (cpu + 1) / ncpus - 1;
        setup_region(cpu, &u, unit_addr(&u, first), unit_addr(&u, last) + MB2);
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
