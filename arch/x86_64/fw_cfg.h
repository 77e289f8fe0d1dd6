/*
 * QEMU's firmware configuration interface (docs/specs/fw_cfg.rst in QEMU),
 * legacy I/O ports. Used for two things: the kernel command line as QEMU
 * holds it (under Multiboot QEMU copies -append into the boot information
 * before the microvm machine appends its virtio_mmio.device= words, which
 * only fw_cfg then carries), and named files that scripts/run.py adds with
 * -fw_cfg name=opt/shoal/...: facts about the host that are not the
 * application's configuration, so they stay off its command line.
 */
#ifndef ARCH_FW_CFG_H
#define ARCH_FW_CFG_H
#include <stdbool.h>
#include <stddef.h>

/* Copies QEMU's command line (NUL-terminated, truncated to size) into buf;
   false when there is no fw_cfg device or it holds no command line. */
bool fw_cfg_cmdline(char *buf, size_t size);

/* Copies the named file's contents (NUL-terminated, truncated to size) into
   buf; false when there is no fw_cfg device or no such file. */
bool fw_cfg_file(const char *name, char *buf, size_t size);
#endif
