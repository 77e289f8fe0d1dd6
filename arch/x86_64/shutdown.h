#ifndef ARCH_SHUTDOWN_H
#define ARCH_SHUTDOWN_H
#define EXIT_CRASH 3
struct acpi_info;
void shutdown_init(const struct acpi_info *acpi);
/* Power the VM off carrying status: isa-debug-exit, else ACPI poweroff. Never returns. */
__attribute__((noreturn)) void machine_exit(int status);
#endif
