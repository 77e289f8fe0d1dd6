/*
 * Freestanding snprintf. See format.h for what is supported.
 *
 * Output goes through a sink that stores what fits and counts everything,
 * which gives the C return value for free. Each conversion is first parsed
 * into a struct spec, then emitted as a number or as a string.
 */
#include "format.h"

#include <stdbool.h>
#include <stdint.h>

enum {
    F_LEFT = 1,     /* '-' */
    F_ZERO = 2,     /* '0' */
    F_PLUS = 4,     /* '+' */
    F_SPACE = 8,    /* ' ' */
    F_ALT = 16,     /* '#' */
};

enum length { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_Z, LEN_T, LEN_J };

struct spec {
    unsigned flags;
    int width;
    int prec;           /* -1: none */
    enum length len;
    char conv;
};

struct sink {
    char *buf;
    size_t size;
    size_t len;         /* length of the full output so far */
};

static void put(struct sink *s, char ch)
{
    if (s->len + 1 < s->size)
        s->buf[s->len] = ch;
    s->len++;
}

static void put_n(struct sink *s, char ch, int n)
{
    for (; n > 0; n--)
        put(s, ch);
}

static void put_str(struct sink *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(s, p[i]);
}

/* Bounded strlen: never reads past max, as %.Ns may get an unterminated
 * buffer. */
static size_t str_len(const char *p, size_t max)
{
    size_t n = 0;
    while (n < max && p[n])
        n++;
    return n;
}

/* Decimal field; saturates rather than overflowing int. */
static int parse_int(const char **fmt)
{
    int v = 0;
    for (; **fmt >= '0' && **fmt <= '9'; (*fmt)++) {
        int d = **fmt - '0';
        v = v > (INT32_MAX - d) / 10 ? INT32_MAX : v * 10 + d;
    }
    return v;
}

static unsigned parse_flags(const char **fmt)
{
    unsigned flags = 0;
    for (;; (*fmt)++) {
        switch (**fmt) {
        case '-': flags |= F_LEFT; break;
        case '0': flags |= F_ZERO; break;
        case '+': flags |= F_PLUS; break;
        case ' ': flags |= F_SPACE; break;
        case '#': flags |= F_ALT; break;
        default: return flags;
        }
    }
}

static void parse_width(const char **fmt, struct spec *sp, va_list *ap)
{
    if (**fmt != '*') {
        sp->width = parse_int(fmt);
        return;
    }
    (*fmt)++;
    int w = va_arg(*ap, int);
    /* A negative '*' width means '-' with its magnitude. */
    if (w < 0) {
        sp->flags |= F_LEFT;
        w = w == INT32_MIN ? INT32_MAX : -w;
    }
    sp->width = w;
}

static void parse_prec(const char **fmt, struct spec *sp, va_list *ap)
{
    sp->prec = -1;
    if (**fmt != '.')
        return;
    (*fmt)++;
    if (**fmt != '*') {
        sp->prec = parse_int(fmt);
        return;
    }
    (*fmt)++;
    int p = va_arg(*ap, int);
    sp->prec = p < 0 ? -1 : p;  /* negative: as if omitted */
}

static enum length parse_length(const char **fmt)
{
    const char *f = *fmt;
    enum length len = LEN_NONE;
    switch (*f) {
    case 'h': len = f[1] == 'h' ? LEN_HH : LEN_H; break;
    case 'l': len = f[1] == 'l' ? LEN_LL : LEN_L; break;
    case 'z': len = LEN_Z; break;
    case 't': len = LEN_T; break;
    case 'j': len = LEN_J; break;
    default: return LEN_NONE;
    }
    *fmt += (len == LEN_HH || len == LEN_LL) ? 2 : 1;
    return len;
}

/* Parses what follows a '%'; *fmt ends after the conversion character. */
static void parse_spec(const char **fmt, struct spec *sp, va_list *ap)
{
    sp->flags = parse_flags(fmt);
    parse_width(fmt, sp, ap);
    parse_prec(fmt, sp, ap);
    sp->len = parse_length(fmt);
    sp->conv = **fmt;
    if (**fmt)
        (*fmt)++;
}

static uint64_t fetch_unsigned(va_list *ap, enum length len)
{
    switch (len) {
    case LEN_HH: return (unsigned char)va_arg(*ap, unsigned int);
    case LEN_H: return (unsigned short)va_arg(*ap, unsigned int);
    case LEN_L: return va_arg(*ap, unsigned long);
    case LEN_LL: return va_arg(*ap, unsigned long long);
    case LEN_Z: return va_arg(*ap, size_t);
    case LEN_T: return (size_t)va_arg(*ap, ptrdiff_t);
    case LEN_J: return va_arg(*ap, uintmax_t);
    default: return va_arg(*ap, unsigned int);
    }
}

static int64_t fetch_signed(va_list *ap, enum length len)
{
    switch (len) {
    case LEN_HH: return (signed char)va_arg(*ap, int);
    case LEN_H: return (short)va_arg(*ap, int);
    case LEN_L: return va_arg(*ap, long);
    case LEN_LL: return va_arg(*ap, long long);
    case LEN_Z: return (ptrdiff_t)va_arg(*ap, size_t);  /* signed size_t */
    case LEN_T: return va_arg(*ap, ptrdiff_t);
    case LEN_J: return va_arg(*ap, intmax_t);
    default: return va_arg(*ap, int);
    }
}

struct number {
    uint64_t mag;
    bool neg;
    bool sign_flags;    /* '+' and ' ' apply (signed conversions, %p) */
    unsigned base;
    bool upper;
};

/* Digits of n->mag, least significant first; none for a zero value with
 * precision 0, as C requires. */
static int to_digits(const struct number *n, const struct spec *sp, char *digits)
{
    const char *set = n->upper ? "0123456789ABCDEF" : "0123456789abcdef";
    uint64_t v = n->mag;
    int nd = 0;
    if (v == 0 && sp->prec == 0)
        return 0;
    do {
        digits[nd++] = set[v % n->base];
        v /= n->base;
    } while (v);
    return nd;
}

static char sign_char(const struct number *n, unsigned flags)
{
    if (n->neg)
        return '-';
    if (!n->sign_flags)
        return 0;
    if (flags & F_PLUS)
        return '+';
    return (flags & F_SPACE) ? ' ' : 0;
}

/* Layout: [pad][sign][0x][zeros][digits][pad for '-']. */
static void emit_number(struct sink *s, const struct spec *sp, const struct number *n)
{
    char digits[24];
    int nd = to_digits(n, sp, digits);
    char sign = sign_char(n, sp->flags);
    const char *prefix = "";
    if ((sp->flags & F_ALT) && n->base == 16 && n->mag != 0)
        prefix = n->upper ? "0X" : "0x";
    int zeros = sp->prec > nd ? sp->prec - nd : 0;
    /* '#' with %o: make sure the first digit printed is a 0. */
    if ((sp->flags & F_ALT) && n->base == 8 && zeros == 0 &&
        (nd == 0 || digits[nd - 1] != '0'))
        zeros = 1;
    int body = (sign != 0) + (int)str_len(prefix, 2) + zeros + nd;
    int pad = sp->width > body ? sp->width - body : 0;
    /* '0' pads with zeros after the sign, unless '-' or a precision. */
    if ((sp->flags & F_ZERO) && !(sp->flags & F_LEFT) && sp->prec < 0) {
        zeros += pad;
        pad = 0;
    }
    if (!(sp->flags & F_LEFT))
        put_n(s, ' ', pad);
    if (sign)
        put(s, sign);
    put_str(s, prefix, str_len(prefix, 2));
    put_n(s, '0', zeros);
    while (nd > 0)
        put(s, digits[--nd]);
    if (sp->flags & F_LEFT)
        put_n(s, ' ', pad);
}

/* Strings and characters pad with spaces only; '0' does not apply. */
static void emit_padded(struct sink *s, const struct spec *sp, const char *p, size_t n)
{
    int pad = (size_t)sp->width > n ? sp->width - (int)n : 0;
    if (!(sp->flags & F_LEFT))
        put_n(s, ' ', pad);
    put_str(s, p, n);
    if (sp->flags & F_LEFT)
        put_n(s, ' ', pad);
}

static void emit_string(struct sink *s, const struct spec *sp, const char *p)
{
    size_t max = sp->prec < 0 ? SIZE_MAX : (size_t)sp->prec;
    if (!p) {
        /* glibc prints "(null)" only when it fits in the precision. */
        p = max >= 6 ? "(null)" : "";
    }
    emit_padded(s, sp, p, str_len(p, max));
}

static void emit_pointer(struct sink *s, const struct spec *sp, void *ptr)
{
    if (!ptr) {
        emit_padded(s, sp, "(nil)", 5);
        return;
    }
    struct spec hex = *sp;
    hex.flags |= F_ALT;
    struct number n = { (uintptr_t)ptr, false, true, 16, false };
    emit_number(s, &hex, &n);
}

static void emit_integer(struct sink *s, const struct spec *sp, va_list *ap)
{
    struct number n = { 0, false, false, 10, sp->conv == 'X' };
    if (sp->conv == 'd' || sp->conv == 'i') {
        int64_t v = fetch_signed(ap, sp->len);
        n.neg = v < 0;
        n.mag = n.neg ? 0 - (uint64_t)v : (uint64_t)v;
        n.sign_flags = true;
    } else {
        n.mag = fetch_unsigned(ap, sp->len);
        n.base = sp->conv == 'o' ? 8 : sp->conv == 'u' ? 10 : 16;
    }
    emit_number(s, sp, &n);
}

/* Emits one conversion; an unknown one is copied out as written. */
static void emit_conversion(struct sink *s, const struct spec *sp, va_list *ap,
                            const char *start, const char *end)
{
    switch (sp->conv) {
    case 'd': case 'i': case 'u': case 'x': case 'X': case 'o':
        emit_integer(s, sp, ap);
        return;
    case 'p':
        emit_pointer(s, sp, va_arg(*ap, void *));
        return;
    case 's':
        emit_string(s, sp, va_arg(*ap, const char *));
        return;
    case 'c': {
        char ch = (char)va_arg(*ap, int);
        emit_padded(s, sp, &ch, 1);
        return;
    }
    case '%':
        put(s, '%');
        return;
    default:
        put_str(s, start, (size_t)(end - start));
        return;
    }
}

int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink s = { buf, size, 0 };
    va_list args;
    /* va_list may be an array type; a copy can be passed by address. */
    va_copy(args, ap);
    while (*fmt) {
        if (*fmt != '%') {
            put(&s, *fmt++);
            continue;
        }
        const char *start = fmt++;
        struct spec sp;
        parse_spec(&fmt, &sp, &args);
        emit_conversion(&s, &sp, &args, start, fmt);
    }
    va_end(args);
    if (size > 0)
        buf[s.len < size ? s.len : size - 1] = '\0';
    return s.len > INT32_MAX ? INT32_MAX : (int)s.len;
}

int fmt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
