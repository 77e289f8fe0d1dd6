/*
 * Boot: the BSP enters boot_main() from boot/long_mode.S, every AP enters
 * ap_main() from the trampoline. The BSP sets up everything shared (page
 * tables, IDT, memory regions, message rings) before any AP starts, so
 * nothing here needs a lock. Then every CPU runs its reactor and the
 * application starts on every shard.
 */
#include <stdint.h>
#include "bootinfo.h"
#include "clock.h"
#include "cmdline.h"
#include "console.h"
#include "format.h"
#include "malloc.h"
#include "memory.h"
#include "percpu.h"
#include "reactor.h"
#include "smp_call.h"
#include "string.h"
#include "app.h"
#include "../drivers/virtio/virtio.h"
#include "../net/net_kernel.h"
#include "../net/netif.h"
#include "../arch/x86_64/acpi.h"
#include "../arch/x86_64/apic.h"
#include "../arch/x86_64/cpu.h"
#include "../arch/x86_64/fpu.h"
#include "../arch/x86_64/fw_cfg.h"
#include "../arch/x86_64/irq.h"
#include "../arch/x86_64/kvmclock.h"
#include "../arch/x86_64/gdt.h"
#include "../arch/x86_64/mptable.h"
#include "../arch/x86_64/paging.h"
#include "../arch/x86_64/pci.h"
#include "../arch/x86_64/pci_assign.h"
#include "../arch/x86_64/pic.h"
#include "../arch/x86_64/rtc.h"
#include "../arch/x86_64/shutdown.h"
#include "../arch/x86_64/smp.h"
#include "../arch/x86_64/trap.h"
#include "../arch/x86_64/tsc.h"

extern char __image_start[], __image_end[];
extern const char shoal_default_cmdline[] __attribute__((weak));
extern const char shoal_app_name[] __attribute__((weak));

/* Boot-time state of the BSP, read-only once the APs run. */
static struct boot_info boot;
static struct cmdline cmd;
static char qemu_cmdline[CMDLINE_MAX];
static char line[CMDLINE_MAX];
static struct acpi_info acpi;
static uint64_t idle_poll_ns = REACTOR_IDLE_POLL_NS;
static uint64_t task_budget_ns = REACTOR_TASK_BUDGET_NS;
static uint64_t tsc_boot_main;
static unsigned cpus_online;
static uint64_t ioapic_addrs[ACPI_MAX_IOAPICS];
static uint32_t ioapic_bases[ACPI_MAX_IOAPICS];
static uint32_t ioapic_count;
static bool ioapics_sequential;

/* Boot phase timestamps, printed as one line so the boot benchmark can say where time goes. */
#define MAX_PHASES 12
static const char *phase_name[MAX_PHASES];
static uint64_t phase_tsc[MAX_PHASES];
static unsigned phases;
static const char *exit_after;      /* exit_after=PHASE: stop the boot there (slow accelerators, tests) */

/* The TSC rate the host states (see given_tsc_rate), and where the wall clock came from. */
#define TSC_KHZ_FW_CFG "opt/shoal/tsc_khz"
static struct tsc_known tsc_known;
static struct tsc_calibration cal;
static uint64_t boot_unix_ns;
static const char *wall_source;

static void report_phases(void);
static void report_clock(void);

static void stop_after_phase(const char *name)
{
    if (clock_tsc_hz()) {
        report_clock();
        report_phases();
    }
    klog("shoal: stopping after boot phase %s (exit_after=%s)", name, name);
    machine_exit(0);
}

static void phase(const char *name)
{
    if (phases < MAX_PHASES) {
        phase_name[phases] = name;
        phase_tsc[phases++] = rdtsc();
    }
    if (exit_after && strcmp(name, exit_after) == 0)
        stop_after_phase(name);
}

/* Printed once the boot is timed: each console byte is a trapped port write. */
static void report_clock(void)
{
    uint64_t unix_ns = boot_unix_ns ? wall_ns() : 0;
    if (!unix_ns)
        klog("shoal: no kvmclock and no RTC, wall clock starts at 1970");
    else
        klog("shoal: wall clock %lu.%06lu (unix seconds, from %s)", (unsigned long)(unix_ns / 1000000000u),
             (unsigned long)(unix_ns / 1000u % 1000000u), wall_source);
    klog("shoal: tsc %lu kHz (%s), lapic timer %lu kHz", (unsigned long)(cal.tsc_hz / 1000), cal.source,
         (unsigned long)(cal.lapic_hz / 1000));
}

static void report_phases(void)
{
    char line[256];
    int n = 0;
    uint64_t prev = tsc_boot_main;
    for (unsigned i = 0; i < phases && n < (int)sizeof line - 40; i++) {
        n += fmt_snprintf(line + n, sizeof line - (size_t)n, " %s=%lu", phase_name[i],
                          (unsigned long)(cycles_to_ns(phase_tsc[i] - prev) / 1000));
        prev = phase_tsc[i];
    }
    klog("shoal: boot phases (us):%s", line);
}

static const char *app_name(void) { return &shoal_app_name ? shoal_app_name : "app"; }

static void parse_command_line(void)
{
    const char *def = &shoal_default_cmdline ? shoal_default_cmdline : "";
    /* QEMU's own copy also has what the machine appended (microvm's virtio_mmio devices). */
    bool from_qemu = boot.proto == BOOT_PROTO_MULTIBOOT && fw_cfg_cmdline(qemu_cmdline, sizeof qemu_cmdline);
    if (!cmdline_compose(line, sizeof line, boot.cmdline, boot.proto == BOOT_PROTO_MULTIBOOT,
                         from_qemu ? qemu_cmdline : 0, def))
        klog("cmdline: too long, truncated");
    if (cmdline_parse(&cmd, line, app_name()) < 0)
        klog("cmdline: too long, truncated");
    uint64_t v;
    /* Clamped to an hour so the nanosecond values cannot overflow. */
    if (cmdline_get_u64(&cmd, "idle_poll_us", &v))
        idle_poll_ns = (v < 3600000000ULL ? v : 3600000000ULL) * 1000;
    if (cmdline_get_u64(&cmd, "task_budget_us", &v))
        task_budget_ns = (v < 3600000000ULL ? v : 3600000000ULL) * 1000;
    exit_after = cmdline_get(&cmd, "exit_after");
}

static bool khz_to_hz(uint64_t khz, uint64_t *hz)
{
    if (khz > TSC_MAX_HZ / 1000 || !tsc_rate_plausible(khz * 1000))
        return false;
    *hz = khz * 1000;
    return true;
}

/*
 * tsc_khz=N on the command line (like Linux's tsc_early_khz), else the
 * same number in QEMU's fw_cfg file opt/shoal/tsc_khz, which scripts/run.py
 * adds under TCG (guests there read the host's TSC) without touching the
 * application's command line. A value that is malformed or out of range is
 * reported and ignored: the TSC is then calibrated as usual.
 */
static void given_tsc_rate(void)
{
    const char *opt = cmdline_get(&cmd, "tsc_khz");
    uint64_t khz;
    if (opt) {
        if (cmdline_get_u64(&cmd, "tsc_khz", &khz) && khz_to_hz(khz, &tsc_known.given_hz))
            tsc_known.given_source = "tsc_khz option";
        else
            klog("tsc: tsc_khz=%s ignored (kHz from %lu to %lu), calibrating", opt,
                 (unsigned long)(TSC_MIN_HZ / 1000), (unsigned long)(TSC_MAX_HZ / 1000));
        return;
    }
    char buf[32];
    const char *end;
    if (!fw_cfg_file(TSC_KHZ_FW_CFG, buf, sizeof buf))
        return;
    if (cmdline_parse_number(buf, &end, &khz) && (*end == '\0' || *end == '\n') &&
        khz_to_hz(khz, &tsc_known.given_hz))
        tsc_known.given_source = "fw_cfg " TSC_KHZ_FW_CFG;
    else
        klog("tsc: fw_cfg %s=\"%s\" ignored, calibrating", TSC_KHZ_FW_CFG, buf);
}

/* Unix time in ns at TSC value *tsc: kvmclock's to the nanosecond, else the RTC's second. */
static uint64_t read_wall_clock(const struct kvmclock_reading *kvm, uint64_t *tsc)
{
    if (kvm->unix_ns) {
        wall_source = "kvmclock";
        *tsc = kvm->tsc;
        return kvm->unix_ns;
    }
    wall_source = "the RTC";
    uint64_t sec = rtc_read_unix();
    *tsc = rdtsc();
    return sec * 1000000000ULL;
}

static void add_cpu(uint32_t apic_id)
{
    for (uint32_t i = 0; i < cpu_count; i++)
        if (cpu_apic_ids[i] == apic_id)
            return;
    if (cpu_count < MAX_CPUS)
        cpu_apic_ids[cpu_count++] = apic_id;
}

static const char *enumerate_cpus(void)
{
    /* The BSP is CPU 0 whatever the firmware's table order. */
    cpu_count = 0;
    add_cpu(lapic_id());
    const char *source = "none";
    struct mptable_info mp;
    bool have_mp = false;
    if (acpi_init(&acpi, boot.rsdp) && acpi.cpu_count) {
        for (uint32_t i = 0; i < acpi.cpu_count; i++)
            add_cpu(acpi.apic_ids[i]);
        source = "ACPI MADT";
    } else if ((have_mp = mptable_init(&mp)) && mp.cpu_count) {
        for (uint32_t i = 0; i < mp.cpu_count; i++)
            add_cpu(mp.apic_ids[i]);
        source = "MP table";
    }
    /* Device lines are routed later, once paging maps the IOAPICs. */
    if (acpi.present && acpi.ioapic_count) {
        ioapic_count = acpi.ioapic_count;
        for (uint32_t i = 0; i < ioapic_count; i++) {
            ioapic_addrs[i] = acpi.ioapic_addrs[i];
            ioapic_bases[i] = acpi.ioapic_gsi_bases[i];
        }
    } else if (have_mp) {
        ioapic_count = mp.ioapic_count;
        ioapics_sequential = true;
        for (uint32_t i = 0; i < ioapic_count; i++)
            ioapic_addrs[i] = mp.ioapic_addrs[i];
    }
    uint64_t max;
    if (cmdline_get_u64(&cmd, "max_cpus", &max) && max >= 1 && max < cpu_count)
        cpu_count = (uint32_t)max;
    return source;
}

/* Before any driver reads a BAR: qboot leaves every BAR unassigned. */
static void assign_pci_resources(void)
{
    const struct acpi_info *a = acpi.present ? &acpi : 0;
    pci_init(a);
    struct pci_window mem = pci_default_mem_window(boot.ram, boot.nram, a);
    struct pci_window io = pci_default_io_window();
    pci_assign_resources(&mem, &io);
}

static void cpu_local_setup(unsigned id)
{
    gdt_load(id);
    idt_load();
    fpu_enable();
    lapic_init_cpu();
    percpu_install(cpu_table[id]);
    cpu_table[id]->apic_id = lapic_id();
    reactor_init(cpu_table[id], idle_poll_ns, task_budget_ns);
}

static void start_app_on_shard(void *arg)
{
    (void)arg;
    app_main(cmd.argc, cmd.argv);
}

__attribute__((noreturn)) void ap_main(unsigned id)
{
    cpu_local_setup(id);
    __atomic_add_fetch(&cpus_online, 1, __ATOMIC_RELEASE);
    reactor_run();
}

static void wait_for_aps(void)
{
    uint64_t deadline = rdtsc() + clock_tsc_hz() * 5;
    while (__atomic_load_n(&cpus_online, __ATOMIC_ACQUIRE) < cpu_count) {
        if (rdtsc() > deadline)
            panic("only %u of %u CPUs came up", __atomic_load_n(&cpus_online, __ATOMIC_ACQUIRE), cpu_count);
        cpu_relax();
    }
}

static void report_boot(const char *cpu_source, uint64_t tsc_ready)
{
    klog("shoal: booted by %s, %u cpus (%s), %s",
         boot.proto == BOOT_PROTO_PVH ? "PVH" : "Multiboot", cpu_count, cpu_source,
         lapic_is_x2apic() ? "x2APIC" : "xAPIC");
    klog("shoal: %lu MiB for shards, image %lu KiB, idle_poll_us=%lu",
         (unsigned long)(memory_total_bytes() >> 20),
         (unsigned long)((__image_end - __image_start) >> 10), (unsigned long)(idle_poll_ns / 1000));
    klog("shoal: all %u shards ready at %lu us (boot_main entered at %lu us)", cpu_count,
         (unsigned long)(cycles_to_ns(tsc_ready) / 1000), (unsigned long)(cycles_to_ns(tsc_boot_main) / 1000));
}

__attribute__((noreturn)) void boot_main(int proto, uint32_t info)
{
    tsc_boot_main = rdtsc();
    console_init();
    pic_disable();
    gdt_load(0); /* the TSS's IST stacks must exist before an IDT that uses them */
    idt_init();
    idt_load();
    const char *why = "";
    if (bootinfo_parse(proto, info, &boot, &why) < 0)
        panic("boot: %s", why);
    parse_command_line();
    lapic_init_cpu();
    given_tsc_rate();
    phase("early");
    struct kvmclock_reading kvm;
    kvmclock_read(&kvm);
    tsc_known.kvmclock_hz = kvm.tsc_hz;
    tsc_calibrate(&cal, &tsc_known);
    phase("calibrate");
    uint64_t tsc_at_wall;
    boot_unix_ns = read_wall_clock(&kvm, &tsc_at_wall);
    clock_init(cal.tsc_hz, boot_unix_ns, tsc_at_wall);
    lapic_timer_set_hz(cal.lapic_hz);
    phase("wallclock");
    const char *cpu_source = enumerate_cpus();
    shutdown_init(acpi.present ? &acpi : 0);
    phase("cpus");

    paging_init(boot.ram, boot.nram);
    phase("paging");
    struct ram_range free_ram[BOOTINFO_MAX_RANGES];
    int nfree = bootinfo_free_ram(&boot, (uint64_t)__image_end, free_ram, BOOTINFO_MAX_RANGES);
    memory_init(free_ram, nfree, cpu_count);
    cpu_total = cpu_count;
    phase("memory");
    smp_call_init(cpu_count);
    phase("rings");

    cpu_local_setup(0);
    cpus_online = 1;
    /* Devices are set up before the other shards run; each shard attaches
       its queues from a message that arrives before the app starts. */
    ioapic_init(ioapic_addrs, ioapics_sequential ? 0 : ioapic_bases, ioapic_count);
    virtio_mmio_probe(&cmd, acpi.present ? &acpi : 0);
    assign_pci_resources();
    virtio_pci_probe(acpi.present ? &acpi : 0);
    netif_init();
    net_start(&cmd);
    phase("devices");
    smp_start_aps(paging_root());
    phase("bsp");
    wait_for_aps();
    paging_seal_trampoline();
    uint64_t tsc_ready = rdtsc();
    phase("aps");
    report_boot(cpu_source, tsc_ready);
    report_clock();
    report_phases();
    for (unsigned i = 0; i < cpu_count; i++)
        smp_call(i, start_app_on_shard, 0);
    reactor_run();
}
