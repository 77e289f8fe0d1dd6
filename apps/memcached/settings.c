/* memcached-compatible flags (see settings.h). */
#include "settings.h"
#include "../../runtime/shoal.h"

static bool flag_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* "1m", "512k", "2097152": memcached's -I accepts k and m suffixes. */
static bool flag_size(const char *s, uint64_t *out)
{
    char num[24];
    size_t n = strlen(s);
    uint64_t mult = 1;
    if (n && (s[n - 1] == 'k' || s[n - 1] == 'K'))
        mult = 1024, n--;
    else if (n && (s[n - 1] == 'm' || s[n - 1] == 'M'))
        mult = 1024 * 1024, n--;
    if (n == 0 || n >= sizeof num)
        return false;
    memcpy(num, s, n);
    num[n] = 0;
    return flag_u64(num, out) && *out <= UINT32_MAX / mult && (*out *= mult, true);
}

/* "1.25": the growth factor, a small positive decimal. */
static bool flag_factor(const char *s, double *out)
{
    double v = 0, scale = 0;
    bool digits = false;
    for (; *s; s++) {
        if (*s == '.' && scale == 0) {
            scale = 1;
            continue;
        }
        if (*s < '0' || *s > '9')
            return false;
        digits = true;
        if (scale != 0)
            scale /= 10, v += (*s - '0') * scale;
        else
            v = v * 10 + (*s - '0');
    }
    *out = v;
    return digits;
}

static void defaults(struct mc_settings *s)
{
    *s = (struct mc_settings){
        .tcp_port = 11211, .mem_limit = 64ull << 20, .max_conns = 1024, .item_size_max = 1u << 20,
        .threads = 4, .chunk_min = 48, .factor = 1.25, .cas_enabled = true, .evict = true,
    };
}

/* Flags that take a value: the value is the rest of the word (-p11211) or the next word. */
static const char *value_of(int argc, char **argv, int *i)
{
    if (argv[*i][2])
        return argv[*i] + 2;
    return *i + 1 < argc ? argv[++*i] : 0;
}

static bool apply(struct mc_settings *s, char flag, const char *val, char *err, unsigned errlen)
{
    uint64_t v = 0;
    switch (flag) {
    case 'p':
    case 'U':
        if (!flag_u64(val, &v) || v > 65535)
            break;
        *(flag == 'p' ? &s->tcp_port : &s->udp_port) = (uint16_t)v;
        return true;
    case 'm':
        if (!flag_u64(val, &v) || v == 0 || v > (1ull << 44))
            break;
        s->mem_limit = v << 20;
        return true;
    case 'c':
        if (!flag_u64(val, &v) || v == 0 || v > UINT32_MAX)
            break;
        s->max_conns = (uint32_t)v;
        return true;
    case 'I':
        /* memcached's bounds: at least 1 KiB, at most 1 GiB. */
        if (!flag_size(val, &v) || v < 1024 || v > (1u << 30))
            break;
        s->item_size_max = (uint32_t)v;
        return true;
    case 't':
        if (!flag_u64(val, &v) || v == 0 || v > 1024)
            break;
        s->threads = (uint32_t)v;
        return true;
    case 'n':
        if (!flag_u64(val, &v) || v == 0 || v > 1u << 20)
            break;
        s->chunk_min = (uint32_t)v;
        return true;
    case 'f':
        if (!flag_factor(val, &s->factor) || s->factor <= 1.0)
            break;
        return true;
    case 'l': case 'u': case 'P': case 'R': case 'B': case 'o': case 'b': case 'a': case 'D':
        return true;   /* accepted for compatibility; one address, no users, no pid file here */
    default:
        snprintf(err, errlen, "invalid option -- '%c'", flag);
        return false;
    }
    snprintf(err, errlen, "bad value '%s' for -%c", val, flag);
    return false;
}

static bool takes_value(char c) { return c && strchr("pUmcItnfluPRBobaD", c); }

bool mc_settings_parse(struct mc_settings *s, int argc, char **argv, char *err, unsigned errlen)
{
    defaults(s);
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i];
        if (w[0] != '-' || !w[1]) {
            snprintf(err, errlen, "unexpected argument '%s'", w);
            return false;
        }
        char flag = w[1];
        if (flag == 'v') {              /* -v, -vv, -vvv */
            for (const char *p = w + 1; *p == 'v'; p++)
                s->verbose++;
            continue;
        }
        if (flag == 'C' || flag == 'M' || flag == 'd' || flag == 'r' || flag == 'k' || flag == 'L' || flag == 'S') {
            if (flag == 'C')
                s->cas_enabled = false;
            if (flag == 'M')
                s->evict = false;
            continue;
        }
        if (!takes_value(flag)) {
            snprintf(err, errlen, "invalid option -- '%c'", flag);
            return false;
        }
        const char *val = value_of(argc, argv, &i);
        if (!val) {
            snprintf(err, errlen, "option requires an argument -- '%c'", flag);
            return false;
        }
        if (!apply(s, flag, val, err, errlen))
            return false;
    }
    return true;
}
