/*
 * Command-line parser tests: options, "--" and app argv, virtio_mmio words
 * after the app's arguments, quotes, overflow, and line selection.
 */
#include "check.h"

#include "../../kernel/cmdline.c"

#include <stdio.h>
#include <string.h>

static struct cmdline C;

static bool str_is(const char *got, const char *want)
{
    return got && strcmp(got, want) == 0;
}

TEST(options_only)
{
    CHECK_EQ(cmdline_parse(&C, "  a=1 flag\tb=x=y  c= ", "app"), 0);
    CHECK(!C.truncated);
    CHECK_EQ(C.nopts, 4);
    CHECK(str_is(cmdline_get(&C, "a"), "1"));
    CHECK(str_is(cmdline_get(&C, "flag"), ""));
    CHECK(str_is(cmdline_get(&C, "b"), "x=y"));
    CHECK(str_is(cmdline_get(&C, "c"), ""));
    CHECK(cmdline_get(&C, "d") == NULL);
    CHECK(cmdline_get(&C, "fla") == NULL);
    CHECK_EQ(C.argc, 1);
    CHECK(str_is(C.argv[0], "app"));
    CHECK(C.argv[1] == NULL);
}

TEST(empty_and_null_lines)
{
    CHECK_EQ(cmdline_parse(&C, "", "app"), 0);
    CHECK_EQ(C.nopts, 0);
    CHECK_EQ(C.argc, 1);
    CHECK_EQ(cmdline_parse(&C, NULL, NULL), 0);
    CHECK_EQ(C.argc, 1);
    CHECK(str_is(C.argv[0], ""));
    CHECK_EQ(cmdline_parse(&C, " \t\r\n ", "x"), 0);
    CHECK_EQ(C.nopts, 0);
}

TEST(app_args)
{
    CHECK_EQ(cmdline_parse(&C, "mem=64 -- serve --port 80 -- x=1", "httpd"), 0);
    CHECK_EQ(C.nopts, 1);
    CHECK(str_is(cmdline_get(&C, "mem"), "64"));
    CHECK_EQ(C.argc, 6);
    CHECK(str_is(C.argv[0], "httpd"));
    CHECK(str_is(C.argv[1], "serve"));
    CHECK(str_is(C.argv[2], "--port"));
    CHECK(str_is(C.argv[3], "80"));
    CHECK(str_is(C.argv[4], "--"));     /* only the first "--" separates */
    CHECK(str_is(C.argv[5], "x=1"));    /* not split, not an option */
    CHECK(C.argv[6] == NULL);
    CHECK(cmdline_get(&C, "x") == NULL);
    /* argv strings are writable copies */
    C.argv[1][0] = 'S';
    CHECK(str_is(C.argv[1], "Serve"));
}

TEST(separator_at_ends)
{
    CHECK_EQ(cmdline_parse(&C, "--", "a"), 0);
    CHECK_EQ(C.argc, 1);
    CHECK_EQ(C.nopts, 0);
    CHECK_EQ(cmdline_parse(&C, "-- one", "a"), 0);
    CHECK_EQ(C.argc, 2);
    CHECK(str_is(C.argv[1], "one"));
    CHECK_EQ(cmdline_parse(&C, "--x k", "a"), 0);   /* "--x" is an option */
    CHECK_EQ(C.nopts, 2);
    CHECK(str_is(C.key[0], "--x"));
}

TEST(virtio_mmio_after_app_args)
{
    const char *line =
        "console=ttyS0 -- app -v file virtio_mmio.device=512@0xfeb00e00:12 "
        "virtio_mmio.device=512@0xfeb00c00:11";
    const char *dev[4];
    CHECK_EQ(cmdline_parse(&C, line, "app"), 0);
    CHECK_EQ(C.argc, 4);
    CHECK(str_is(C.argv[1], "app"));
    CHECK(str_is(C.argv[2], "-v"));
    CHECK(str_is(C.argv[3], "file"));
    CHECK(C.argv[4] == NULL);
    CHECK_EQ(C.nopts, 3);
    CHECK_EQ(cmdline_get_all(&C, "virtio_mmio.device", dev, 4), 2);
    CHECK(str_is(dev[0], "512@0xfeb00e00:12"));
    CHECK(str_is(dev[1], "512@0xfeb00c00:11"));
    CHECK(str_is(cmdline_get(&C, "virtio_mmio.device"), "512@0xfeb00c00:11"));
    CHECK_EQ(cmdline_get_all(&C, "virtio_mmio.device", dev, 1), 1);
    CHECK(str_is(dev[0], "512@0xfeb00e00:12"));
    CHECK_EQ(cmdline_get_all(&C, "nope", dev, 4), 0);
}

TEST(virtio_mmio_between_args_and_without_separator)
{
    CHECK_EQ(cmdline_parse(&C, "-- a virtio_mmio.device=1 b", "p"), 0);
    CHECK_EQ(C.argc, 3);
    CHECK(str_is(C.argv[1], "a"));
    CHECK(str_is(C.argv[2], "b"));
    CHECK(str_is(cmdline_get(&C, "virtio_mmio.device"), "1"));
    CHECK_EQ(cmdline_parse(&C, "k=v virtio_mmio.device=2", "p"), 0);
    CHECK_EQ(C.nopts, 2);
    CHECK_EQ(C.argc, 1);
    /* "virtio_mmio" without the dot is an ordinary app argument */
    CHECK_EQ(cmdline_parse(&C, "-- virtio_mmio=3", "p"), 0);
    CHECK_EQ(C.argc, 2);
    CHECK_EQ(C.nopts, 0);
}

TEST(last_occurrence_wins)
{
    CHECK_EQ(cmdline_parse(&C, "a=1 b=2 a=3 a", "p"), 0);
    CHECK(str_is(cmdline_get(&C, "a"), ""));
    CHECK_EQ(cmdline_parse(&C, "a=1 b=2 a=3", "p"), 0);
    CHECK(str_is(cmdline_get(&C, "a"), "3"));
    const char *all[3];
    CHECK_EQ(cmdline_get_all(&C, "a", all, 3), 2);
    CHECK(str_is(all[0], "1") && str_is(all[1], "3"));
}

TEST(quotes)
{
    const char *line = "msg=\"hello world\" \"spaced key=v w\" x=a\"b c\"d "
                       "-- \"one arg\" \"\" tail\"s x\" \"--\"";
    CHECK_EQ(cmdline_parse(&C, line, "p"), 0);
    CHECK(str_is(cmdline_get(&C, "msg"), "hello world"));
    CHECK(str_is(cmdline_get(&C, "spaced key"), "v w"));
    CHECK(str_is(cmdline_get(&C, "x"), "ab cd"));
    CHECK_EQ(C.argc, 5);
    CHECK(str_is(C.argv[1], "one arg"));
    CHECK(str_is(C.argv[2], ""));
    CHECK(str_is(C.argv[3], "tails x"));
    CHECK(str_is(C.argv[4], "--"));
    /* a quoted "--" does not separate */
    CHECK_EQ(cmdline_parse(&C, "\"--\" a", "p"), 0);
    CHECK_EQ(C.nopts, 2);
    CHECK_EQ(C.argc, 1);
    /* an unterminated quote runs to the end of the line */
    CHECK_EQ(cmdline_parse(&C, "-- \"a b  c", "p"), 0);
    CHECK_EQ(C.argc, 2);
    CHECK(str_is(C.argv[1], "a b  c"));
}

TEST(get_u64)
{
    uint64_t v = 7;
    CHECK_EQ(cmdline_parse(&C, "a=123 b=0x1F c=0XfFfF d= e=12x f=0x g=-1 "
                               "h=18446744073709551615 i=18446744073709551616 "
                               "j=0xffffffffffffffff k=0x10000000000000000 l=007 m",
                           "p"), 0);
    CHECK(cmdline_get_u64(&C, "a", &v) && v == 123);
    CHECK(cmdline_get_u64(&C, "b", &v) && v == 0x1f);
    CHECK(cmdline_get_u64(&C, "c", &v) && v == 0xffff);
    CHECK(cmdline_get_u64(&C, "h", &v) && v == UINT64_MAX);
    CHECK(cmdline_get_u64(&C, "j", &v) && v == UINT64_MAX);
    CHECK(cmdline_get_u64(&C, "l", &v) && v == 7);
    v = 42;
    CHECK(!cmdline_get_u64(&C, "d", &v));
    CHECK(!cmdline_get_u64(&C, "e", &v));
    CHECK(!cmdline_get_u64(&C, "f", &v));
    CHECK(!cmdline_get_u64(&C, "g", &v));
    CHECK(!cmdline_get_u64(&C, "i", &v));
    CHECK(!cmdline_get_u64(&C, "k", &v));
    CHECK(!cmdline_get_u64(&C, "m", &v));
    CHECK(!cmdline_get_u64(&C, "absent", &v));
    CHECK_EQ(v, 42);     /* untouched on failure */
}

TEST(too_many_options)
{
    char line[2048] = "";
    for (int i = 0; i < CMDLINE_MAX_OPTS + 10; i++) {
        char w[32];
        snprintf(w, sizeof(w), "k%d=%d ", i, i);
        strcat(line, w);
    }
    strcat(line, "-- a b virtio_mmio.device=z");
    CHECK_EQ(cmdline_parse(&C, line, "p"), -1);
    CHECK(C.truncated);
    CHECK_EQ(C.nopts, CMDLINE_MAX_OPTS);
    CHECK(str_is(cmdline_get(&C, "k0"), "0"));
    CHECK(str_is(cmdline_get(&C, "k63"), "63"));
    CHECK(cmdline_get(&C, "k64") == NULL);
    CHECK_EQ(C.argc, 3);        /* app args are still parsed */
    CHECK(str_is(C.argv[2], "b"));
}

TEST(too_many_args)
{
    char line[2048] = "x=1 --";
    for (int i = 1; i < CMDLINE_MAX_ARGS + 5; i++) {
        char w[32];
        snprintf(w, sizeof(w), " a%d", i);
        strcat(line, w);
    }
    strcat(line, " virtio_mmio.device=d");
    CHECK_EQ(cmdline_parse(&C, line, "p"), -1);
    CHECK(C.truncated);
    CHECK_EQ(C.argc, CMDLINE_MAX_ARGS);
    CHECK(str_is(C.argv[CMDLINE_MAX_ARGS - 1], "a63"));
    CHECK(C.argv[CMDLINE_MAX_ARGS] == NULL);
    CHECK(str_is(cmdline_get(&C, "virtio_mmio.device"), "d"));
    CHECK(str_is(cmdline_get(&C, "x"), "1"));
}

TEST(buffer_overflow)
{
    /* A huge app argument does not fit: it and later args are dropped,
     * earlier ones and the trailing virtio_mmio option are kept. */
    static char line[3 * CMDLINE_MAX];
    strcpy(line, "k=v -- first ");
    size_t n = strlen(line);
    memset(line + n, 'x', CMDLINE_MAX);
    n += CMDLINE_MAX;
    strcpy(line + n, " small virtio_mmio.device=1@2:3");
    CHECK_EQ(cmdline_parse(&C, line, "p"), -1);
    CHECK(C.truncated);
    CHECK_EQ(C.argc, 2);
    CHECK(str_is(C.argv[1], "first"));
    CHECK(C.argv[2] == NULL);
    CHECK(str_is(cmdline_get(&C, "k"), "v"));
    CHECK(str_is(cmdline_get(&C, "virtio_mmio.device"), "1@2:3"));
}

TEST(buffer_exactly_full)
{
    /* app name + NUL + word + NUL == CMDLINE_MAX fits; one more byte does
     * not, and then nothing is stored past the buffer. */
    static char line[CMDLINE_MAX + 8];
    size_t word = CMDLINE_MAX - 3;      /* "p\0" + word + "\0" */
    memset(line, 'y', word);
    line[word] = '\0';
    CHECK_EQ(cmdline_parse(&C, line, "p"), 0);
    CHECK_EQ(C.nopts, 1);
    CHECK_EQ(strlen(C.key[0]), word);
    line[word] = 'y';
    line[word + 1] = '\0';
    CHECK_EQ(cmdline_parse(&C, line, "p"), -1);
    CHECK_EQ(C.nopts, 0);
    /* a virtio_mmio word that does not fit is dropped but still counts as
     * an option: it must not close the app's argv */
    static char line2[2 * CMDLINE_MAX];
    strcpy(line2, "-- a virtio_mmio.device=");
    size_t n = strlen(line2);
    memset(line2 + n, '9', CMDLINE_MAX);
    strcpy(line2 + n + CMDLINE_MAX, " b");
    CHECK_EQ(cmdline_parse(&C, line2, "p"), -1);
    CHECK_EQ(C.argc, 3);
    CHECK(str_is(C.argv[2], "b"));
    CHECK_EQ(C.nopts, 0);
}

TEST(long_app_name)
{
    static char name[CMDLINE_MAX + 10];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    CHECK_EQ(cmdline_parse(&C, "a=1", name), -1);
    CHECK_EQ(strlen(C.argv[0]), CMDLINE_MAX - 1);
    CHECK_EQ(C.argc, 1);
}

TEST(select_line)
{
    const char *def = "default=1";
    CHECK(cmdline_select(NULL, false, def) == def);
    CHECK(cmdline_select("", false, def) == def);
    CHECK(cmdline_select(" \t ", false, def) == def);
    CHECK(str_is(cmdline_select("a=1", false, def), "a=1"));
    CHECK(str_is(cmdline_select("  a=1", false, def), "a=1"));
    /* Multiboot: QEMU prepends the kernel file name */
    CHECK(cmdline_select("/boot/shoal.elf", true, def) == def);
    CHECK(cmdline_select("/boot/shoal.elf   ", true, def) == def);
    CHECK(str_is(cmdline_select("shoal.elf a=1 -- x", true, def), "a=1 -- x"));
    CHECK(str_is(cmdline_select("  shoal.elf\ta=1", true, def), "a=1"));
    CHECK(cmdline_select(NULL, true, NULL) == NULL);
}

TEST(parse_number_prefix)
{
    const char *end;
    uint64_t v;
    CHECK(cmdline_parse_number("512@0xfeb00e00:12", &end, &v) && v == 512 && *end == '@');
    CHECK(cmdline_parse_number("0xfeb00e00:12", &end, &v) && v == 0xfeb00e00 && *end == ':');
    CHECK(cmdline_parse_number("0x", &end, &v) && v == 0 && *end == 'x');
    CHECK(cmdline_parse_number("4K", &end, &v) && v == 4 && *end == 'K');
    v = 9;
    CHECK(!cmdline_parse_number("x12", &end, &v) && v == 9);
    CHECK(!cmdline_parse_number("", &end, &v));
    CHECK(!cmdline_parse_number("99999999999999999999", &end, &v));
}

TEST(compose_keeps_default_when_machine_only_adds_devices)
{
    char out[256];
    const char *dev = "virtio_mmio.device=512@0xfeb00e00:12";
    /* microvm,acpi=off with no -append: PVH gives only the device words */
    CHECK(cmdline_compose(out, sizeof out, " virtio_mmio.device=512@0xfeb00e00:12", false, NULL, "a=1 -- run"));
    CHECK(str_is(out, "a=1 -- run virtio_mmio.device=512@0xfeb00e00:12"));
    /* Multiboot: the file name first, the devices only in QEMU's copy */
    CHECK(cmdline_compose(out, sizeof out, "shoal.elf x=2 -- go", true, "x=2 -- go virtio_mmio.device=512@0xfeb00e00:12", "d"));
    CHECK(str_is(out, "x=2 -- go virtio_mmio.device=512@0xfeb00e00:12"));
    /* Multiboot, no -append: default line plus QEMU's device words */
    CHECK(cmdline_compose(out, sizeof out, "shoal.elf", true, dev, "dflt"));
    CHECK(str_is(out, "dflt virtio_mmio.device=512@0xfeb00e00:12"));
    /* nothing appended twice */
    CHECK(cmdline_compose(out, sizeof out, dev, false, dev, "dflt"));
    CHECK(str_is(out, "dflt virtio_mmio.device=512@0xfeb00e00:12"));
    /* an ordinary line is taken as it is */
    CHECK(cmdline_compose(out, sizeof out, "a b c", false, NULL, "dflt"));
    CHECK(str_is(out, "a b c"));
    CHECK(cmdline_compose(out, sizeof out, NULL, false, NULL, "dflt"));
    CHECK(str_is(out, "dflt"));
}

TEST(compose_reports_overflow)
{
    char out[16];
    CHECK(!cmdline_compose(out, sizeof out, "a=1 b=2 c=3 d=4 e=5", false, NULL, ""));
    CHECK(strlen(out) == 15);
    CHECK(!cmdline_compose(out, sizeof out, "a=1", false, "virtio_mmio.device=512@0x1000:5", ""));
    CHECK(str_is(out, "a=1"));
}

TEST_MAIN()
