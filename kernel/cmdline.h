/*
 * Kernel command line: "k=v k2 flag -- app args".
 *
 * Words are separated by blanks (space, tab, CR, LF); double quotes group
 * words and are removed ("a b" is one word, k="a b" has value "a b"; an
 * unterminated quote runs to the end of the line). Words before an unquoted
 * "--" are kernel options, key=value split at the first '=', value "" when
 * there is no '='. Words after it form the application's argv from argv[1];
 * argv[0] is the application name and argv[argc] is NULL. A word beginning
 * with "virtio_mmio." is always a kernel option, wherever it stands, since
 * QEMU microvm appends its device words after the whole line.
 *
 * All strings point into c->buf; argv strings may be modified by the app.
 */
#ifndef KERNEL_CMDLINE_H
#define KERNEL_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMDLINE_MAX 4096
#define CMDLINE_MAX_OPTS 64
#define CMDLINE_MAX_ARGS 64

struct cmdline {
    char buf[CMDLINE_MAX];
    const char *key[CMDLINE_MAX_OPTS];
    const char *value[CMDLINE_MAX_OPTS];
    int nopts;
    char *argv[CMDLINE_MAX_ARGS + 1];
    int argc;
    bool truncated;
};

/* Returns 0, or -1 if something did not fit; then truncated is set and what
 * fit is kept: an option that does not fit is dropped alone, while an app
 * argument that does not fit drops it and every later app argument (so that
 * positions never shift); virtio_mmio options are still collected. */
int cmdline_parse(struct cmdline *c, const char *line, const char *app_name);

/* Value of the last occurrence of key; NULL if absent. */
const char *cmdline_get(const struct cmdline *c, const char *key);

/* Decimal or 0x hex; false if absent, empty, malformed or out of range. */
bool cmdline_get_u64(const struct cmdline *c, const char *key, uint64_t *out);

/* Leading decimal or 0x-hex number of s; *end is the first byte after it.
 * False when s does not start with a digit or the number overflows. */
bool cmdline_parse_number(const char *s, const char **end, uint64_t *out);

/* Stores up to max values of key, in command-line order, into out and
 * returns how many it stored. */
int cmdline_get_all(const struct cmdline *c, const char *key, const char **out, int max);

/* The effective line: the boot loader's line (minus its first word when
 * skip_first_word, for Multiboot where QEMU puts the kernel file name
 * first) unless that is NULL, empty or blank; then default_line. */
const char *cmdline_select(const char *bootloader_line, bool skip_first_word,
                           const char *default_line);

/*
 * The line the kernel parses, written to out: the boot loader's line (as
 * cmdline_select takes it) unless it holds nothing but virtio_mmio device
 * words, in which case default_line; then every virtio_mmio word of the
 * boot loader's line and of machine_line (QEMU's fw_cfg copy, which under
 * Multiboot alone carries microvm's devices; may be NULL) not already
 * there. So a machine that appends its devices to an empty line does not
 * take the application's default arguments away. False if out was too small.
 */
bool cmdline_compose(char *out, size_t size, const char *bootloader_line, bool skip_first_word,
                     const char *machine_line, const char *default_line);

#endif
