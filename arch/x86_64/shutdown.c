/*
 * Leaving the VM with a status. QEMU's isa-debug-exit device (the run
 * script adds it at port 0xf4) turns a written byte v into exit code
 * (v << 1) | 1, which scripts/run.py maps back. Without it, fall back to
 * ACPI S5: the status is then only on the console.
 */
#include "shutdown.h"
#include "acpi.h"
#include "cpu.h"
#include "../../kernel/console.h"

#define ISA_DEBUG_EXIT_PORT 0xf4
#define SLP_EN (1u << 13)
#define HW_REDUCED_SLP_EN (1u << 5)

static struct acpi_info acpi;

void shutdown_init(const struct acpi_info *info)
{
    if (info)
        acpi = *info;
}

static void acpi_poweroff(void)
{
    if (!acpi.present)
        return;
    uint8_t typ = acpi.have_s5 ? acpi.s5_typa : 5;
    if (acpi.hw_reduced && acpi.sleep_ctl_addr) {
        uint8_t v = (uint8_t)(((typ & 7) << 2) | HW_REDUCED_SLP_EN);
        if (acpi.sleep_ctl_space == 1)
            outb((uint16_t)acpi.sleep_ctl_addr, v);
        else
            *(volatile uint8_t *)acpi.sleep_ctl_addr = v;
        return;
    }
    if (acpi.pm1a_cnt_port)
        outw(acpi.pm1a_cnt_port, (uint16_t)(((typ & 7) << 10) | SLP_EN));
    if (acpi.pm1b_cnt_port)
        outw(acpi.pm1b_cnt_port, (uint16_t)(((acpi.s5_typb & 7) << 10) | SLP_EN));
}

void machine_exit(int status)
{
    crash_printf("shoal: exit status %d\n", status);
    outb(ISA_DEBUG_EXIT_PORT, (uint8_t)status);
    acpi_poweroff();
    for (;;)
        __asm__ volatile("cli; hlt");
}
