/*
 * Page tables are built once and never change on the data path. The image
 * (first few MiB) uses 4 KiB pages so each section gets its own rights and
 * stack guard pages can be left out; the rest of RAM uses 2 MiB pages.
 */
#include <stdbool.h>
#include "paging.h"
#include "cpu.h"
#include "layout.h"
#include "../../kernel/console.h"

#define PTE_P    (1ULL << 0)
#define PTE_W    (1ULL << 1)
#define PTE_PWT  (1ULL << 3)
#define PTE_PCD  (1ULL << 4)
#define PTE_PS   (1ULL << 7)
#define PTE_NX   (1ULL << 63)
#define ADDR_MASK 0x000FFFFFFFFFF000ULL
#define MB2 0x200000ULL
#define GB1 0x40000000ULL


extern char __text_start[], __text_end[], __rodata_start[], __rodata_end[], __image_end[];
extern uint8_t cpu_stacks[];

extern uint64_t paging_pool[PAGING_POOL_PAGES][512];
static unsigned pool_used;
static uint64_t *pml4;

static uint64_t *new_table(void)
{
    if (pool_used >= PAGING_POOL_PAGES)
        panic("paging: page-table pool exhausted");
    uint64_t *t = paging_pool[pool_used++];
    for (int i = 0; i < 512; i++)
        t[i] = 0;
    return t;
}

static uint64_t *next_level(uint64_t *table, unsigned idx)
{
    if (!(table[idx] & PTE_P))
        table[idx] = (uint64_t)new_table() | PTE_P | PTE_W;
    return (uint64_t *)(table[idx] & ADDR_MASK);
}

static uint64_t *pdpt_for(uint64_t va) { return next_level(pml4, (va >> 39) & 511); }

/* The page directory for va, or NULL when a 1 GiB page already maps it. */
static uint64_t *pd_for(uint64_t va)
{
    uint64_t *pdpt = pdpt_for(va);
    if (pdpt[(va >> 30) & 511] & PTE_PS)
        return NULL;
    return next_level(pdpt, (va >> 30) & 511);
}

static void map_2m(uint64_t va, uint64_t flags)
{
    uint64_t *pd = pd_for(va);
    unsigned i = (va >> 21) & 511;
    if (!pd || (pd[i] & PTE_P))
        return; /* already mapped (image area, an earlier range or a 1 GiB page) */
    pd[i] = va | PTE_P | PTE_PS | flags;
}

/* 1 GiB pages keep the table pool small on big VMs (one PD per GiB otherwise). */
static bool map_1g(uint64_t va, uint64_t flags)
{
    static int supported = -1;
    if (supported < 0)
        supported = (cpuid(0x80000001, 0).edx >> 26) & 1;
    uint64_t *pdpt = pdpt_for(va);
    unsigned i = (va >> 30) & 511;
    if (!supported || (pdpt[i] & PTE_P))
        return false;
    pdpt[i] = va | PTE_P | PTE_PS | flags;
    return true;
}

static void map_range(uint64_t a, uint64_t b, uint64_t flags)
{
    a &= ~(MB2 - 1);
    b = (b + MB2 - 1) & ~(MB2 - 1);
    while (a < b) {
        if (!(a & (GB1 - 1)) && b - a >= GB1 && map_1g(a, flags)) {
            a += GB1;
            continue;
        }
        map_2m(a, flags);
        a += MB2;
    }
}

static uint64_t page_flags(uint64_t va)
{
    uint64_t text0 = (uint64_t)__text_start, text1 = (uint64_t)__text_end;
    uint64_t ro0 = (uint64_t)__rodata_start, ro1 = (uint64_t)__rodata_end;
    uint64_t st0 = (uint64_t)cpu_stacks, st1 = st0 + (uint64_t)MAX_CPUS * STACK_BLOCK_SIZE;
    if (va == 0)
        return 0;
    if (va == AP_TRAMPOLINE_BASE)
        return PTE_P | PTE_W;
    if (va >= text0 && va < text1)
        return PTE_P;
    if (va >= ro0 && va < ro1)
        return PTE_P | PTE_NX;
    if (va >= st0 && va < st1) {
        uint64_t off = (va - st0) % STACK_BLOCK_SIZE;
        if (off == STACK_GUARD0 || off == STACK_GUARD1 || off == STACK_GUARD2)
            return 0;
    }
    return PTE_P | PTE_W | PTE_NX;
}

static void map_image_4k(uint64_t end)
{
    for (uint64_t va = 0; va < end; va += MB2) {
        uint64_t *pd = pd_for(va);
        uint64_t *pt = new_table();
        pd[(va >> 21) & 511] = (uint64_t)pt | PTE_P | PTE_W;
        for (unsigned i = 0; i < 512; i++) {
            uint64_t a = va + (uint64_t)i * PAGE_SIZE;
            uint64_t f = page_flags(a);
            pt[i] = f ? (a | f) : 0;
        }
    }
}

void paging_init(const struct ram_range *ram, int n)
{
    pml4 = new_table();
    uint64_t image_end = ((uint64_t)__image_end + MB2 - 1) & ~(MB2 - 1);
    map_image_4k(image_end);
    for (int r = 0; r < n; r++)
        map_range(ram[r].base, ram[r].base + ram[r].len, PTE_W | PTE_NX);
    /* Below 4 GiB everything else is firmware tables or devices: uncached,
       in 2 MiB pages so that RAM and devices never share a page. */
    for (uint64_t a = 0; a < (4ULL << 30); a += MB2)
        map_2m(a, PTE_W | PTE_NX | PTE_PCD | PTE_PWT);
    write_cr3((uint64_t)pml4);
}

uint64_t paging_root(void) { return (uint64_t)pml4; }

void paging_map_mmio(uint64_t phys, uint64_t size)
{
    map_range(phys, phys + size, PTE_W | PTE_NX | PTE_PCD | PTE_PWT);
    write_cr3(read_cr3());
}

void paging_seal_trampoline(void)
{
    uint64_t *pd = pd_for(0);
    uint64_t *pt = (uint64_t *)(pd[0] & ADDR_MASK);
    pt[AP_TRAMPOLINE_BASE >> 12] |= PTE_NX;
    __asm__ volatile("invlpg (%0)" ::"r"((uint64_t)AP_TRAMPOLINE_BASE) : "memory");
}
