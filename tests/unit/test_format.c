/*
 * fmt_snprintf tests: outputs and return values compared against the host
 * C library for hand-picked formats and for every combination of flags,
 * width, precision and length modifier over a set of edge values, each
 * also into truncating buffers.
 */
#include "check.h"

#include "../../kernel/format.c"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int mismatches;

static void report(const char *fmt, size_t size, const char *want, int want_n,
                   const char *got, int got_n)
{
    if (++mismatches <= 20)
        fprintf(stderr, "fmt \"%s\" size %zu: want \"%s\" (%d), got \"%s\" (%d)\n",
                fmt, size, want, want_n, got, got_n);
}

/* Formats with both implementations into a buffer of `size` bytes (with a
 * guard byte beyond) and compares text, terminator and return value. */
static bool cmp_sized(size_t size, const char *fmt, va_list ap)
{
    char want[512], got[512];
    va_list a1, a2;
    memset(want, 0x5a, sizeof(want));
    memset(got, 0x5a, sizeof(got));
    va_copy(a1, ap);
    va_copy(a2, ap);
    int want_n = vsnprintf(size ? want : NULL, size, fmt, a1);
    int got_n = fmt_vsnprintf(size ? got : NULL, size, fmt, a2);
    va_end(a1);
    va_end(a2);
    bool ok = want_n == got_n && memcmp(want, got, size + 1) == 0;
    if (!ok)
        report(fmt, size, size ? want : "", want_n, size ? got : "", got_n);
    return ok;
}

static bool cmp(const char *fmt, ...)
{
    va_list ap;
    bool ok = true;
    size_t sizes[] = { 300, 0, 1, 2, 7 };
    va_start(ap, fmt);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        ok &= cmp_sized(sizes[i], fmt, ap);
    va_end(ap);
    return ok;
}

/* The format strings below are deliberate, including the unusual ones. */
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
#pragma GCC diagnostic ignored "-Wformat-zero-length"

TEST(plain_text)
{
    CHECK(cmp(""));
    CHECK(cmp("hello"));
    CHECK(cmp("100%% sure %%"));
    CHECK(cmp("a long line of text that is longer than the small buffers"));
}

TEST(integers)
{
    CHECK(cmp("%d %i %u", 0, -1, 0u));
    CHECK(cmp("%d %d", INT_MIN, INT_MAX));
    CHECK(cmp("%u %x %X %o", UINT_MAX, UINT_MAX, 0xabcdefu, UINT_MAX));
    CHECK(cmp("%ld %lu %lx", LONG_MIN, ULONG_MAX, LONG_MAX));
    CHECK(cmp("%lld %llu %llo", LLONG_MIN, ULLONG_MAX, ULLONG_MAX));
    CHECK(cmp("%hhd %hhu %hhx", 300, 300, -1));
    CHECK(cmp("%hd %hu %hx", 70000, 70000, -1));
    CHECK(cmp("%zd %zu %zx", (size_t)-5, SIZE_MAX, (size_t)4096));
    CHECK(cmp("%td %tu %tx", (ptrdiff_t)-77, (ptrdiff_t)77, PTRDIFF_MIN));
    CHECK(cmp("%jd %ju %jx", INTMAX_MIN, UINTMAX_MAX, (uintmax_t)1 << 63));
    CHECK(cmp("[%5d][%-5d][%05d][%+d][% d][%+ d]", 42, 42, -42, 42, 42, 42));
    CHECK(cmp("[%.3d][%8.3d][%-8.3d][%08.3d][%.0d][%.0u][%.0x]", 7, -7, 7, 7, 0, 0u, 0u));
    CHECK(cmp("[%#x][%#X][%#o][%#x][%#o][%#.0o][%#5.3o][%#08x]", 255u, 255u, 8u, 0u, 0u, 0u, 1u, 255u));
    CHECK(cmp("[%-#10x][%0-10d][%-010d]", 0xbeefu, 5, 5));
}

TEST(star_width_and_precision)
{
    CHECK(cmp("[%*d][%-*d][%*d]", 6, 1, 6, 2, -6, 3));
    CHECK(cmp("[%.*d][%.*d][%*.*d]", 4, 5, -1, 6, 8, 3, 9));
    CHECK(cmp("[%.*s][%*s][%-*.*s]", 3, "abcdef", -8, "ab", 7, 2, "xyz"));
    CHECK(cmp("[%0*d][%0*.*d]", 7, -12, 7, -1, -12));
}

TEST(strings_and_chars)
{
    CHECK(cmp("[%s][%10s][%-10s][%.2s][%10.2s][%.0s]", "abc", "abc", "abc", "abc", "abc", "abc"));
    CHECK(cmp("[%s][%10s][%-10s][%.6s][%.7s]", (char *)NULL, (char *)NULL,
              (char *)NULL, (char *)NULL, (char *)NULL));
    CHECK(cmp("[%.3s][%.0s]", (char *)NULL, (char *)NULL));    /* glibc: empty */
    CHECK(cmp("[%c][%3c][%-3c][%c]", 'a', 'b', 'c', 0x141));
    CHECK(cmp("[%05s][%05c]", "ab", 'x'));       /* '0' does not apply */
    CHECK(cmp("%s", ""));
    CHECK(cmp("%c", 0));
    /* precision bounds the read: an unterminated buffer is fine */
    char raw[3] = { 'x', 'y', 'z' };
    CHECK(cmp("[%.3s][%.2s]", raw, raw));
}

TEST(pointers)
{
    void *p = (void *)(uintptr_t)0x1234abcdu;
    CHECK(cmp("[%p][%20p][%-20p][%020p][%+p][% p][%.12p]", p, p, p, p, p, p, p));
    CHECK(cmp("[%p][%10p][%-10p][%010p][%.2p]", NULL, NULL, NULL, NULL, NULL));
    CHECK(cmp("%p", (void *)UINTPTR_MAX));
}

TEST(unknown_conversion_is_copied)
{
    char buf[32];
    CHECK_EQ(fmt_snprintf(buf, sizeof(buf), "a%yb"), 4);
    CHECK(strcmp(buf, "a%yb") == 0);
    CHECK_EQ(fmt_snprintf(buf, sizeof(buf), "a%-5yb"), 6);
    CHECK(strcmp(buf, "a%-5yb") == 0);
    CHECK_EQ(fmt_snprintf(buf, sizeof(buf), "end%"), 4);
    CHECK(strcmp(buf, "end%") == 0);
}

TEST(size_zero_and_truncation)
{
    char buf[8];
    memset(buf, 'q', sizeof(buf));
    CHECK_EQ(fmt_snprintf(buf, 0, "%d", 123456), 6);
    CHECK_EQ(buf[0], 'q');                  /* nothing written */
    CHECK_EQ(fmt_snprintf(NULL, 0, "%s!", "hello"), 6);
    CHECK_EQ(fmt_snprintf(buf, 1, "%d", 5), 1);
    CHECK_EQ(buf[0], '\0');
    CHECK_EQ(fmt_snprintf(buf, 4, "%s", "abcdef"), 6);
    CHECK(strcmp(buf, "abc") == 0);
    CHECK_EQ(buf[4], 'q');
}

/* Every combination of flags, width, precision and length modifier for each
 * integer conversion, over values at the edges of each type. */
static bool sweep_one(const char *fmt, const char *len, char conv, long long v)
{
    bool is_signed = conv == 'd' || conv == 'i';
    if (!strcmp(len, "l"))
        return is_signed ? cmp(fmt, (long)v) : cmp(fmt, (unsigned long)v);
    if (!strcmp(len, "ll"))
        return is_signed ? cmp(fmt, v) : cmp(fmt, (unsigned long long)v);
    if (!strcmp(len, "z"))
        return cmp(fmt, (size_t)v);
    if (!strcmp(len, "t"))
        return cmp(fmt, (ptrdiff_t)v);
    if (!strcmp(len, "j"))
        return is_signed ? cmp(fmt, (intmax_t)v) : cmp(fmt, (uintmax_t)v);
    return is_signed ? cmp(fmt, (int)v) : cmp(fmt, (unsigned)v);
}

static void flag_string(unsigned mask, char *out)
{
    const char *flags = "-0+ #";
    for (unsigned i = 0; flags[i]; i++) {
        if (mask & (1u << i))
            *out++ = flags[i];
    }
    *out = '\0';
}

TEST(integer_sweep)
{
    static const char *const lens[] = { "", "hh", "h", "l", "ll", "z", "t", "j" };
    static const char *const widths[] = { "", "1", "6", "25" };
    static const char *const precs[] = { "", ".", ".0", ".1", ".4", ".22" };
    static const long long values[] = {
        0, 1, -1, 7, 8, 9, 42, -42, 127, 128, -128, 255, 256, 32767, -32768,
        65535, 65536, INT_MAX, INT_MIN, UINT_MAX, 0x123456789abcdefll,
        LLONG_MAX, LLONG_MIN,
    };
    const char *convs = "diuxXo";
    bool ok = true;
    unsigned n = 0;
    for (const char *c = convs; *c; c++)
    for (unsigned f = 0; f < 32; f++)
    for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++)
    for (size_t p = 0; p < sizeof(precs) / sizeof(precs[0]); p++)
    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        char flags[8], fmt[64];
        flag_string(f, flags);
        snprintf(fmt, sizeof(fmt), "<%%%s%s%s%s%c>", flags, widths[w], precs[p], lens[l], *c);
        for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
            ok &= sweep_one(fmt, lens[l], *c, values[v]);
            n++;
        }
    }
    CHECK(ok);
    CHECK(n > 100000);
}

TEST(string_pointer_sweep)
{
    static const char *const widths[] = { "", "1", "3", "9", "25" };
    static const char *const precs[] = { "", ".", ".0", ".2", ".6", ".30" };
    void *ptrs[] = { (void *)(uintptr_t)1, (void *)(uintptr_t)0xdeadbeefu, (void *)UINTPTR_MAX };
    bool ok = true;
    for (unsigned f = 0; f < 32; f++)
    for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++)
    for (size_t p = 0; p < sizeof(precs) / sizeof(precs[0]); p++) {
        char flags[8], fmt[64];
        flag_string(f, flags);
        snprintf(fmt, sizeof(fmt), "<%%%s%s%ss>", flags, widths[w], precs[p]);
        ok &= cmp(fmt, "hello, world");
        ok &= cmp(fmt, "");
        snprintf(fmt, sizeof(fmt), "<%%%s%sc>", flags, widths[w]);
        ok &= cmp(fmt, 'Z');
        snprintf(fmt, sizeof(fmt), "<%%%s%s%sp>", flags, widths[w], precs[p]);
        for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++)
            ok &= cmp(fmt, ptrs[i]);
        ok &= cmp(fmt, (void *)NULL);
    }
    CHECK(ok);
}

TEST(mixed)
{
    CHECK(cmp("cpu%u: %s at %#018lx (%3d%%) [%-6s|%6.2s] %c%c", 3u, "fault",
              0xffffffff80001000ul, 99, "ab", "cdef", 'o', 'k'));
    CHECK(cmp("%d%d%d%d%d%d%d%d%d%d", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
    CHECK(cmp("%lld|%llx|%s|%llu", 1ll << 40, 1ll << 40, "x", 1ull << 63));
}

TEST_MAIN()
