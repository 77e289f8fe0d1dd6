/*
 * QEMU's firmware configuration interface (docs/specs/fw_cfg.rst in QEMU),
 * legacy I/O ports. Used for one thing: the kernel command line as QEMU
 * holds it. Under Multiboot QEMU copies -append into the boot information
 * before the microvm machine appends its virtio_mmio.device= words, which
 * only fw_cfg then carries.
 */
#ifndef ARCH_FW_CFG_H
#define ARCH_FW_CFG_H
#include <stdbool.h>
#include <stddef.h>

/* Copies QEMU's command line (NUL-terminated, truncated to size) into buf;
   false when there is no fw_cfg device or it holds no command line. */
bool fw_cfg_cmdline(char *buf, size_t size);
#endif
