/*
 * PCI resource assignment (see pci_assign.h), in passes over tables filled
 * once per call:
 *
 *   1. collect every function pci_scan() finds, with its BARs sized, and one
 *      record per bus. pci_scan visits a bridge before the bus behind it, so
 *      a bus's index is always above its parent's and index 0 is bus 0;
 *   2. classify top-down, per bus and per address space (memory, I/O): a bus
 *      is "kept" when it is bus 0 or the firmware opened the bridge window
 *      leading to it. There, BARs with usable addresses inside the window
 *      stay and are reserved, and new ones are placed around them. Otherwise
 *      the bus is "fresh": nothing on it is reachable, so every BAR on it
 *      (and behind it) gets a new address inside a new bridge window;
 *   3. size fresh windows bottom-up, then place top-down. On each bus the
 *      BARs and fresh windows to place are sorted largest alignment first,
 *      which packs power-of-two sizes without holes, and each goes to the
 *      lowest aligned address of the bus's window that overlaps nothing
 *      reserved on that bus. Sizing runs the same placement in an empty
 *      space from 0: every alignment divides the window's, so the window,
 *      placed anywhere aligned, holds the same layout shifted;
 *   4. write BARs, bridge windows and command registers, and report.
 *
 * New memory always comes from the 32-bit window, 64-bit BARs included
 * (their upper dword is written 0), and behind bridges only the
 * non-prefetchable window is used: prefetchable BARs work there too, and
 * it keeps one window per bridge. ROM BARs are left alone.
 */
#include <linux/pci_regs.h>
#include <stdbool.h>
#include "pci.h"
#include "pci_assign.h"
#include "acpi.h"
#include "paging.h"
#include "../../kernel/console.h"

#define MAX_FNS    128
#define MAX_BUSES  32
#define NBARS      6
/* Every BAR and every bridge's two memory windows: the reserved list cannot overflow. */
#define MAX_RANGES (MAX_FNS * NBARS + MAX_BUSES * 2)
#define MAX_ITEMS  (MAX_FNS * NBARS + MAX_BUSES)
#define NONE       0xFF

/* Bridges forward memory in 1 MiB units and I/O in 4 KiB units. */
#define MEM_GRANULE 0x100000ULL
#define IO_GRANULE  0x1000ULL
/* A memory BAR gets a page at least, so that no two devices share one
   (pci_map_bar maps whole pages). */
#define MEM_MIN_ALIGN 0x1000ULL
#define FOUR_GIB      (1ULL << 32)
#define IO_SPACE_END  0x10000ULL
/* The space a fresh window is sized in: larger than anything that fits
   anywhere, small enough that no sum overflows. */
#define SIZING_SPACE  (1ULL << 62)
/* Decoding on: the firmware set the function up (see pci_assign_resources). */
#define DECODE_BITS   (PCI_COMMAND_IO | PCI_COMMAND_MEMORY)
/* Start of the RAM gap: at least this far past usable RAM, on this boundary. */
#define RAM_MARGIN    0x1000000ULL

enum { MEM, IO, KINDS };

struct fn_rec {
    struct pci_addr a;
    uint8_t bus;                /* index of the bus it sits on */
    uint8_t child;              /* bridges: index of the bus behind, else NONE */
    bool firmware_set;          /* decoding was on: never changed, usable BARs only reserved */
    uint8_t todo;               /* BARs (bit per index) that need an address */
    uint8_t placed;             /* of those, the ones that got one (now in bar[].base) */
    struct pci_bar bar[NBARS];  /* size 0: no BAR at this index */
};

struct space {
    bool fresh;                 /* see the top of the file */
    bool placed;                /* fresh: win is the new window; false: nothing to forward */
    struct pci_window win;      /* where new addresses here come from */
    struct pci_window alt;      /* kept memory: the prefetchable window, also forwarded */
    uint64_t need, align;       /* fresh: size and alignment of the window to place */
};

struct bus_rec {
    uint8_t number;
    uint8_t bridge;             /* index of the bridge leading here; NONE for bus 0 */
    uint8_t parent;             /* index of the bus the bridge sits on */
    struct space s[KINDS];
};

struct range {
    uint64_t base, size;
    uint8_t bus, kind;          /* ranges only conflict on the same bus and in the same space */
};

/* A BAR (child == NONE) or a fresh bridge window (child: the bus behind) to place. */
struct item {
    uint64_t size, align;
    uint8_t fn, bar, child;
};

/* Boot-time, BSP-only scratch of one pci_assign_resources() call. */
static struct {
    struct fn_rec fn[MAX_FNS];
    struct bus_rec bus[MAX_BUSES];
    struct range used[MAX_RANGES];
    struct item items[MAX_ITEMS];
    unsigned nfn, nbus, nused;
    bool overflow;
} st;

static const char *const kind_name[KINDS] = { "mem", "io" };

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t align_up(uint64_t v, uint64_t align) { return (v + align - 1) & ~(align - 1); }

static uint64_t pow2_at_least(uint64_t v)
{
    uint64_t p = 1;
    while (p < v && p < SIZING_SPACE)
        p <<= 1;
    return p;
}

static struct pci_window window_below(const struct pci_window *w, uint64_t end)
{
    if (!w || !w->size || w->base >= end)
        return (struct pci_window){ 0, 0 };
    return (struct pci_window){ w->base, w->size < end - w->base ? w->size : end - w->base };
}

static bool within(struct pci_window w, uint64_t base, uint64_t size)
{
    return w.size && size <= w.size && base >= w.base && base - w.base <= w.size - size;
}

/* ---- the default windows ---- */

/* The larger of [lo, hi) minus [cut_lo, cut_hi), as a window. */
static struct pci_window largest_outside(uint64_t lo, uint64_t hi, uint64_t cut_lo, uint64_t cut_hi)
{
    if (lo >= hi)
        return (struct pci_window){ 0, 0 };
    if (cut_hi <= lo || cut_lo >= hi)
        return (struct pci_window){ lo, hi - lo };
    uint64_t below = cut_lo > lo ? cut_lo - lo : 0, above = cut_hi < hi ? hi - cut_hi : 0;
    if (below >= above)
        return (struct pci_window){ lo, below };
    return (struct pci_window){ cut_hi, above };
}

struct pci_window pci_default_mem_window(const struct ram_range *ram, int nram, const struct acpi_info *acpi)
{
    uint64_t lo = PCI_MEM_FALLBACK_BASE;
    if (nram > 0) {
        /* The map lists usable RAM only; firmware keeps ACPI tables and
           other reserved areas right above it, hence the margin. */
        uint64_t top = 0;
        for (int i = 0; i < nram; i++)
            if (ram[i].base < FOUR_GIB)
                top = max64(top, ram[i].base + ram[i].len);
        lo = align_up(top + RAM_MARGIN, RAM_MARGIN);
    }
    uint64_t cut_lo = 0, cut_hi = 0;
    if (acpi && acpi->have_mcfg && acpi->mcfg_bus_start <= acpi->mcfg_bus_end) {
        /* From bus 0's address: the chipset decodes the whole range from there. */
        cut_lo = acpi->mcfg_base;
        cut_hi = acpi->mcfg_base + (((uint64_t)acpi->mcfg_bus_end + 1) << 20);
    }
    return largest_outside(lo, PCI_MEM_WINDOW_END, cut_lo, cut_hi);
}

struct pci_window pci_default_io_window(void)
{
    return (struct pci_window){ PCI_IO_WINDOW_BASE, PCI_IO_WINDOW_END - PCI_IO_WINDOW_BASE };
}

/* ---- reserved ranges ---- */

static const struct range *overlap(unsigned bus, unsigned kind, uint64_t base, uint64_t size)
{
    for (unsigned i = 0; i < st.nused; i++) {
        const struct range *r = &st.used[i];
        if (r->bus == bus && r->kind == kind && base < r->base + r->size && r->base < base + size)
            return r;
    }
    return 0;
}

static void reserve(unsigned bus, unsigned kind, uint64_t base, uint64_t size)
{
    if (st.nused < MAX_RANGES)
        st.used[st.nused++] = (struct range){ base, size, (uint8_t)bus, (uint8_t)kind };
}

/* The lowest `align`-aligned start in w where `size` bytes overlap nothing reserved on the bus. */
static bool fit(unsigned bus, unsigned kind, struct pci_window w, uint64_t size, uint64_t align, uint64_t *out)
{
    if (!w.size || !size || size > w.size)
        return false;
    uint64_t last = w.base + (w.size - size);
    /* Every step moves past a reserved range that ends above `at`: the loop ends. */
    for (uint64_t at = align_up(w.base, align); at >= w.base && at <= last;) {
        const struct range *r = overlap(bus, kind, at, size);
        if (!r) {
            *out = at;
            return true;
        }
        at = align_up(r->base + r->size, align);
    }
    return false;
}

/* ---- pass 1: collect ---- */

static int bus_index(uint8_t number)
{
    for (unsigned i = 0; i < st.nbus; i++)
        if (st.bus[i].number == number)
            return (int)i;
    return -1;
}

static bool add_bus(uint8_t number, uint8_t bridge, uint8_t parent)
{
    if (st.nbus == MAX_BUSES) {
        st.overflow = true;
        return false;
    }
    st.bus[st.nbus++] = (struct bus_rec){ .number = number, .bridge = bridge, .parent = parent };
    return true;
}

static bool is_bridge(struct pci_addr a)
{
    return (pci_read8(a, PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK) == PCI_HEADER_TYPE_BRIDGE;
}

static void collect(struct pci_addr a, void *arg)
{
    (void)arg;
    int bus = bus_index(a.bus);
    if (bus < 0 || st.nfn == MAX_FNS) {
        st.overflow = true;
        return;
    }
    unsigned i = st.nfn++;
    struct fn_rec *f = &st.fn[i];
    *f = (struct fn_rec){ .a = a, .bus = (uint8_t)bus, .child = NONE };
    f->firmware_set = pci_read16(a, PCI_COMMAND) & DECODE_BITS;
    for (unsigned n = 0; n < NBARS; n++)
        if (!pci_read_bar(a, n, &f->bar[n]))
            f->bar[n] = (struct pci_bar){ 0 };
    if (!is_bridge(a))
        return;
    /* Like pci_scan: the first bridge that names a bus number leads to it. */
    uint8_t secondary = pci_read8(a, PCI_SECONDARY_BUS);
    if (secondary == 0 || secondary == 0xFF || bus_index(secondary) >= 0)
        return;
    if (add_bus(secondary, (uint8_t)i, (uint8_t)bus))
        f->child = (uint8_t)(st.nbus - 1);
}

static void note_untouched(struct pci_addr a, void *arg)
{
    if (!(pci_read16(a, PCI_COMMAND) & DECODE_BITS))
        *(bool *)arg = true;
}

/* ---- pass 2: classify ---- */

/* A bridge window register pair, limit inclusive; closed when base > limit or at 0. */
static struct pci_window span(uint64_t base, uint64_t limit)
{
    if (!base || base > limit)
        return (struct pci_window){ 0, 0 };
    return (struct pci_window){ base, limit - base + 1 };
}

static struct pci_window mem_window(struct pci_addr a)
{
    uint64_t base = (uint64_t)(pci_read16(a, PCI_MEMORY_BASE) & 0xFFF0u) << 16;
    uint64_t limit = (uint64_t)(pci_read16(a, PCI_MEMORY_LIMIT) & 0xFFF0u) << 16 | 0xFFFFF;
    return span(base, limit);
}

static struct pci_window pref_window(struct pci_addr a)
{
    uint16_t lo = pci_read16(a, PCI_PREF_MEMORY_BASE);
    uint64_t base = (uint64_t)(lo & 0xFFF0u) << 16;
    uint64_t limit = (uint64_t)(pci_read16(a, PCI_PREF_MEMORY_LIMIT) & 0xFFF0u) << 16 | 0xFFFFF;
    if ((lo & PCI_PREF_RANGE_TYPE_MASK) == PCI_PREF_RANGE_TYPE_64) {
        base |= (uint64_t)pci_read32(a, PCI_PREF_BASE_UPPER32) << 32;
        limit |= (uint64_t)pci_read32(a, PCI_PREF_LIMIT_UPPER32) << 32;
    }
    return span(base, limit);
}

static struct pci_window io_window(struct pci_addr a)
{
    uint8_t lo = pci_read8(a, PCI_IO_BASE);
    uint64_t base = (uint64_t)(lo & 0xF0u) << 8;
    uint64_t limit = (uint64_t)(pci_read8(a, PCI_IO_LIMIT) & 0xF0u) << 8 | 0xFFF;
    if ((lo & PCI_IO_RANGE_TYPE_MASK) == PCI_IO_RANGE_TYPE_32) {
        base |= (uint64_t)pci_read16(a, PCI_IO_BASE_UPPER16) << 16;
        limit |= (uint64_t)pci_read16(a, PCI_IO_LIMIT_UPPER16) << 16;
    }
    return span(base, limit);
}

/* Whether [base, base + size) on bus `b` is forwarded to it. Only asked of kept buses. */
static bool reach(unsigned b, unsigned kind, uint64_t base, uint64_t size)
{
    if (b == 0)
        return true;
    const struct space *s = &st.bus[b].s[kind];
    return within(s->win, base, size) || within(s->alt, base, size);
}

/*
 * An address the firmware could have given: not 0 (the reset value), not
 * with every address bit set (what a BAR reads after a sizing write nobody
 * undid; its end is then the top of its space), inside its space.
 */
static bool usable(const struct pci_bar *b)
{
    uint64_t end = b->base + b->size;
    if (!b->base || end < b->base)
        return false;
    if (b->io)
        return end < IO_SPACE_END;
    return b->is64 ? end <= PCI_PHYS_LIMIT : end < FOUR_GIB;
}

/* Kept when the parent is kept and the bridge forwards part of the parent's
   space; the windows are then reserved on the parent. */
static void classify_space(unsigned c, unsigned kind, struct pci_window win, struct pci_window alt)
{
    struct bus_rec *bus = &st.bus[c];
    struct space *s = &bus->s[kind];
    unsigned p = bus->parent;
    bool win_ok = win.size && reach(p, kind, win.base, win.size);
    bool alt_ok = alt.size && reach(p, kind, alt.base, alt.size);
    if (st.bus[p].s[kind].fresh || (!win_ok && !alt_ok)) {
        s->fresh = true;
        return;
    }
    if (win_ok) {
        s->win = win;
        reserve(p, kind, win.base, win.size);
    }
    if (alt_ok) {
        s->alt = alt;
        reserve(p, kind, alt.base, alt.size);
    }
}

static void classify_child(unsigned c)
{
    struct pci_addr a = st.fn[st.bus[c].bridge].a;
    classify_space(c, MEM, mem_window(a), pref_window(a));
    classify_space(c, IO, io_window(a), (struct pci_window){ 0, 0 });
}

static void classify_fn(unsigned i)
{
    struct fn_rec *f = &st.fn[i];
    for (unsigned n = 0; n < NBARS; n++) {
        const struct pci_bar *b = &f->bar[n];
        if (!b->size)
            continue;
        unsigned kind = b->io ? IO : MEM;
        bool keep = !st.bus[f->bus].s[kind].fresh && usable(b) && reach(f->bus, kind, b->base, b->size);
        if (keep && (f->firmware_set || !overlap(f->bus, kind, b->base, b->size)))
            reserve(f->bus, kind, b->base, b->size);
        else if (!f->firmware_set)
            f->todo |= (uint8_t)(1u << n);
    }
    if (f->child != NONE)
        classify_child(f->child);
}

/* ---- the console line ---- */

struct line {
    char s[320];
    unsigned n;
};

static void put(struct line *l, const char *s)
{
    while (*s && l->n + 1 < sizeof l->s)
        l->s[l->n++] = *s++;
    l->s[l->n] = 0;
}

static void put_hex(struct line *l, uint64_t v)
{
    char buf[19] = "0x";
    int digits = 1;
    while (digits < 16 && v >> (4 * digits))
        digits++;
    for (int i = 0; i < digits; i++)
        buf[2 + i] = "0123456789abcdef"[v >> (4 * (digits - 1 - i)) & 0xF];
    buf[2 + digits] = 0;
    put(l, buf);
}

static void put_range(struct line *l, const char *name, const char *kind, uint64_t base, uint64_t size)
{
    put(l, l->n ? ", " : "");
    put(l, name);
    put(l, kind);
    put(l, " ");
    put_hex(l, base);
    put(l, " size ");
    put_hex(l, size);
}

/* ---- pass 3: size and place ---- */

static void sort_items(unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        struct item it = st.items[i];
        unsigned j = i;
        for (; j > 0; j--) {
            const struct item *o = &st.items[j - 1];
            if (o->align > it.align || (o->align == it.align && o->size >= it.size))
                break;
            st.items[j] = *o;
        }
        st.items[j] = it;
    }
}

/* What bus b needs in `kind`, into st.items, largest alignment first. */
static unsigned gather(unsigned b, unsigned kind)
{
    unsigned n = 0;
    for (unsigned i = 0; i < st.nfn && n < MAX_ITEMS; i++) {
        const struct fn_rec *f = &st.fn[i];
        for (unsigned bar = 0; f->bus == b && bar < NBARS && n < MAX_ITEMS; bar++) {
            if (!(f->todo >> bar & 1) || (f->bar[bar].io ? IO : MEM) != kind)
                continue;
            uint64_t size = f->bar[bar].size;
            size = pow2_at_least(kind == MEM ? max64(size, MEM_MIN_ALIGN) : size);
            st.items[n++] = (struct item){ size, size, (uint8_t)i, (uint8_t)bar, NONE };
        }
    }
    for (unsigned c = 1; c < st.nbus && n < MAX_ITEMS; c++) {
        const struct space *s = &st.bus[c].s[kind];
        if (st.bus[c].parent == b && s->fresh && s->need)
            st.items[n++] = (struct item){ s->need, s->align, st.bus[c].bridge, 0, (uint8_t)c };
    }
    sort_items(n);
    return n;
}

/* Bridges need not implement the I/O window; its registers then read 0 and ignore writes. */
static bool forwards_io(struct pci_addr a)
{
    if (pci_read16(a, PCI_IO_BASE))
        return true;
    pci_write8(a, PCI_IO_BASE, 0xF0);
    bool ok = pci_read8(a, PCI_IO_BASE) != 0;
    pci_write8(a, PCI_IO_BASE, 0);
    return ok;
}

static void size_window(unsigned c, unsigned kind)
{
    struct space *s = &st.bus[c].s[kind];
    unsigned n = s->fresh ? gather(c, kind) : 0;
    if (!n)
        return;
    const struct fn_rec *br = &st.fn[st.bus[c].bridge];
    if (kind == IO && !forwards_io(br->a)) {
        klog("pci %02x:%02x.%x: bridge has no I/O window: I/O BARs behind it left unassigned", br->a.bus,
             br->a.dev, br->a.fn);
        return;
    }
    uint64_t granule = kind == MEM ? MEM_GRANULE : IO_GRANULE;
    uint64_t end = 0, align = granule;
    unsigned mark = st.nused;
    for (unsigned i = 0; i < n; i++) {
        const struct item *it = &st.items[i];
        uint64_t at;
        if (!fit(c, kind, (struct pci_window){ 0, SIZING_SPACE }, it->size, it->align, &at))
            continue;
        reserve(c, kind, at, it->size);
        end = max64(end, at + it->size);
        align = max64(align, it->align);
    }
    st.nused = mark;
    s->need = align_up(end, granule);
    s->align = align;
}

static void report_unfit(unsigned b, unsigned kind, const struct item *it)
{
    const struct fn_rec *f = &st.fn[it->fn];
    const struct pci_window *w = &st.bus[b].s[kind].win;
    struct line where = { .n = 0 };
    where.s[0] = 0;
    if (w->size) {
        put(&where, "in ");
        put_hex(&where, w->base);
        put(&where, "-");
        put_hex(&where, w->base + w->size - 1);
    } else {
        put(&where, "(no window)");
    }
    if (it->child != NONE)
        klog("pci %02x:%02x.%x: bridge %s window of size 0x%lx does not fit %s, devices behind it get no %s",
             f->a.bus, f->a.dev, f->a.fn, kind_name[kind], (unsigned long)it->size, where.s, kind_name[kind]);
    else
        klog("pci %02x:%02x.%x: BAR%u %s%s size 0x%lx does not fit %s, left unassigned", f->a.bus, f->a.dev,
             f->a.fn, (unsigned)it->bar, kind_name[kind], f->bar[it->bar].is64 ? "64" : "",
             (unsigned long)f->bar[it->bar].size, where.s);
}

static void place_bus(unsigned b, unsigned kind)
{
    struct space *s = &st.bus[b].s[kind];
    /* A fresh bus whose window was not placed needs nothing, or its window did not fit (reported there). */
    if (s->fresh && !s->placed)
        return;
    unsigned n = gather(b, kind);
    for (unsigned i = 0; i < n; i++) {
        const struct item *it = &st.items[i];
        uint64_t at;
        if (!fit(b, kind, s->win, it->size, it->align, &at)) {
            report_unfit(b, kind, it);
            continue;
        }
        reserve(b, kind, at, it->size);
        if (it->child != NONE) {
            st.bus[it->child].s[kind].win = (struct pci_window){ at, it->size };
            st.bus[it->child].s[kind].placed = true;
        } else {
            st.fn[it->fn].bar[it->bar].base = at;
            st.fn[it->fn].placed |= (uint8_t)(1u << it->bar);
        }
    }
}

/* ---- pass 4: program and report ---- */

/* Decoding of a space goes on when the function got something in it and no BAR of it is left without an address. */
static uint16_t command_bits(const struct fn_rec *f)
{
    static const uint16_t bit[KINDS] = { PCI_COMMAND_MEMORY, PCI_COMMAND_IO };
    uint16_t bits = 0;
    for (unsigned kind = 0; kind < KINDS; kind++) {
        bool got = f->child != NONE && st.bus[f->child].s[kind].placed, missing = false;
        for (unsigned n = 0; n < NBARS; n++) {
            if (!f->bar[n].size || (f->bar[n].io ? IO : MEM) != kind)
                continue;
            got |= f->placed >> n & 1;
            missing |= (f->todo & ~f->placed) >> n & 1;
        }
        if (got && !missing)
            bits |= bit[kind];
    }
    return bits ? bits | PCI_COMMAND_MASTER : 0;
}

static void write_bars(const struct fn_rec *f)
{
    for (unsigned n = 0; n < NBARS; n++) {
        if (!(f->placed >> n & 1))
            continue;
        unsigned off = PCI_BASE_ADDRESS_0 + 4 * n;
        pci_write32(f->a, off, (uint32_t)f->bar[n].base);
        if (f->bar[n].is64)
            pci_write32(f->a, off + 4, (uint32_t)(f->bar[n].base >> 32));
    }
}

/* Open a register pair at [base, base + size), or close it (base above limit) when size is 0. */
static void write_mem_window(struct pci_addr a, unsigned base_reg, unsigned limit_reg, struct pci_window w)
{
    uint16_t base = w.size ? (uint16_t)(w.base >> 16 & 0xFFF0) : 0xFFF0;
    uint16_t limit = w.size ? (uint16_t)((w.base + w.size - 1) >> 16 & 0xFFF0) : 0;
    pci_write16(a, base_reg, base);
    pci_write16(a, limit_reg, limit);
}

static void write_io_window(struct pci_addr a, struct pci_window w)
{
    uint64_t last = w.base + w.size - 1;
    pci_write8(a, PCI_IO_BASE, w.size ? (uint8_t)(w.base >> 8 & 0xF0) : 0xF0);
    pci_write8(a, PCI_IO_LIMIT, w.size ? (uint8_t)(last >> 8 & 0xF0) : 0);
    pci_write16(a, PCI_IO_BASE_UPPER16, w.size ? (uint16_t)(w.base >> 16) : 0);
    pci_write16(a, PCI_IO_LIMIT_UPPER16, w.size ? (uint16_t)(last >> 16) : 0);
}

/* A memory window pair that reads base <= limit forwards something (reset leaves [0, 1 MiB) open). */
static bool mem_regs_open(struct pci_addr a, unsigned base_reg, unsigned limit_reg)
{
    return (pci_read16(a, base_reg) & 0xFFF0) <= (pci_read16(a, limit_reg) & 0xFFF0);
}

static bool io_regs_open(struct pci_addr a)
{
    return (pci_read8(a, PCI_IO_BASE) & 0xF0) <= (pci_read8(a, PCI_IO_LIMIT) & 0xF0);
}

/* A fresh bus's bridge: open what was placed, close what it would otherwise forward. */
static void write_bridge(const struct bus_rec *bus)
{
    struct pci_addr a = st.fn[bus->bridge].a;
    const struct space *mem = &bus->s[MEM], *io = &bus->s[IO];
    const struct pci_window none = { 0, 0 };
    if (mem->fresh) {
        if (mem->placed || mem_regs_open(a, PCI_MEMORY_BASE, PCI_MEMORY_LIMIT))
            write_mem_window(a, PCI_MEMORY_BASE, PCI_MEMORY_LIMIT, mem->placed ? mem->win : none);
        if (mem_regs_open(a, PCI_PREF_MEMORY_BASE, PCI_PREF_MEMORY_LIMIT)) {
            write_mem_window(a, PCI_PREF_MEMORY_BASE, PCI_PREF_MEMORY_LIMIT, none);
            pci_write32(a, PCI_PREF_BASE_UPPER32, 0);
            pci_write32(a, PCI_PREF_LIMIT_UPPER32, 0);
        }
    }
    if (io->fresh && (io->placed || io_regs_open(a)))
        write_io_window(a, io->placed ? io->win : none);
}

static void program_fn(const struct fn_rec *f)
{
    uint16_t bits = command_bits(f);
    if (!f->placed && !bits)
        return;
    uint16_t cmd = pci_read16(f->a, PCI_COMMAND);
    /* Decoding stays off while the BARs move. */
    pci_write16(f->a, PCI_COMMAND, cmd & (uint16_t)~DECODE_BITS);
    write_bars(f);
    pci_write16(f->a, PCI_COMMAND, cmd | bits);
}

static void report_fn(const struct fn_rec *f)
{
    struct line l = { .n = 0 };
    l.s[0] = 0;
    for (unsigned n = 0; n < NBARS; n++) {
        const struct pci_bar *b = &f->bar[n];
        char name[] = "BARn ";
        name[3] = (char)('0' + n);
        if (f->placed >> n & 1)
            put_range(&l, name, b->io ? "io" : b->is64 ? "mem64" : "mem", b->base, b->size);
    }
    for (unsigned kind = 0; f->child != NONE && kind < KINDS; kind++) {
        const struct space *s = &st.bus[f->child].s[kind];
        if (s->placed)
            put_range(&l, "window ", kind_name[kind], s->win.base, s->win.size);
    }
    if (l.n)
        klog("pci %02x:%02x.%x: assigned %s", f->a.bus, f->a.dev, f->a.fn, l.s);
}

/* ---- the whole ---- */

void pci_assign_resources(const struct pci_window *mem, const struct pci_window *io)
{
    /* Firmware that assigns resources turns decoding on (SeaBIOS for every
       function, OVMF for those it uses); reset leaves it off. When no
       function has it off there is nothing to do, and no BAR is sized. */
    bool untouched = false;
    pci_scan(note_untouched, &untouched);
    if (!untouched)
        return;
    st.nfn = st.nbus = st.nused = 0;
    st.overflow = false;
    add_bus(0, NONE, 0);
    st.bus[0].s[MEM].win = window_below(mem, FOUR_GIB);
    st.bus[0].s[IO].win = window_below(io, IO_SPACE_END);
    pci_scan(collect, 0);
    if (st.overflow) {
        klog("pci: more than %u functions or %u buses: resources left as the firmware set them", MAX_FNS, MAX_BUSES);
        return;
    }
    /* Bus indices grow away from bus 0 (see the top of the file): these loops run top-down or bottom-up. */
    for (unsigned b = 0; b < st.nbus; b++)
        for (unsigned i = 0; i < st.nfn; i++)
            if (st.fn[i].bus == b)
                classify_fn(i);
    for (unsigned c = st.nbus; c-- > 1;)
        for (unsigned kind = 0; kind < KINDS; kind++)
            size_window(c, kind);
    for (unsigned b = 0; b < st.nbus; b++)
        for (unsigned kind = 0; kind < KINDS; kind++)
            place_bus(b, kind);
    for (unsigned c = 1; c < st.nbus; c++)
        write_bridge(&st.bus[c]);
    for (unsigned i = 0; i < st.nfn; i++) {
        program_fn(&st.fn[i]);
        report_fn(&st.fn[i]);
    }
}
