/*
 * Kernel command-line parser. See cmdline.h for the syntax.
 *
 * Every word is copied, without its quotes and NUL-terminated, into c->buf;
 * options and argv point into that copy. A word is committed to the buffer
 * only once it has been accepted, so a rejected word costs no space.
 */
#include "cmdline.h"

#include <stddef.h>
#include "string.h"

#define VIRTIO_MMIO_PREFIX "virtio_mmio."

/* Enough of a word's start to classify it even when it did not fit. */
#define WORD_HEAD 16

struct word {
    size_t len;     /* length without quotes, even if it did not fit */
    char head[WORD_HEAD];   /* first WORD_HEAD - 1 characters, NUL-terminated */
    bool quoted;    /* contained a '"': a quoted "--" is not the separator */
    bool fits;      /* copied whole, with its NUL */
};

struct parser {
    struct cmdline *c;
    size_t used;        /* bytes of c->buf committed */
    bool in_app;        /* past the "--" separator */
    bool args_closed;   /* an app argument was dropped: drop the rest too */
};

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static const char *skip_blanks(const char *p)
{
    while (is_blank(*p))
        p++;
    return p;
}

static bool str_eq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static bool starts_with(const char *s, const char *prefix)
{
    while (*prefix && *s == *prefix) {
        s++;
        prefix++;
    }
    return *prefix == '\0';
}

/* Scans the next word from *pos, copying it without quotes into dst as far
 * as room (bytes, NUL included) allows. False when the line is exhausted. */
static bool next_word(const char **pos, char *dst, size_t room, struct word *w)
{
    const char *p = skip_blanks(*pos);
    if (*p == '\0') {
        *pos = p;
        return false;
    }
    bool in_quote = false;
    w->len = 0;
    w->quoted = false;
    for (; *p && (in_quote || !is_blank(*p)); p++) {
        if (*p == '"') {
            in_quote = !in_quote;
            w->quoted = true;
            continue;
        }
        if (w->len + 1 < room)
            dst[w->len] = *p;
        if (w->len + 1 < WORD_HEAD)
            w->head[w->len] = *p;
        w->len++;
    }
    w->head[w->len < WORD_HEAD ? w->len : WORD_HEAD - 1] = '\0';
    w->fits = w->len < room;
    if (w->fits)
        dst[w->len] = '\0';
    *pos = p;
    return true;
}

static char *cursor(const struct parser *p)
{
    return p->c->buf + p->used;
}

static void add_option(struct parser *p, const struct word *w)
{
    struct cmdline *c = p->c;
    if (!w->fits || c->nopts == CMDLINE_MAX_OPTS) {
        c->truncated = true;
        return;
    }
    char *key = cursor(p);
    const char *value = key + w->len;   /* the NUL: "" when there is no '=' */
    for (size_t i = 0; i < w->len; i++) {
        if (key[i] == '=') {
            key[i] = '\0';
            value = key + i + 1;
            break;
        }
    }
    c->key[c->nopts] = key;
    c->value[c->nopts] = value;
    c->nopts++;
    p->used += w->len + 1;
}

static void add_arg(struct parser *p, const struct word *w)
{
    struct cmdline *c = p->c;
    if (p->args_closed || !w->fits || c->argc == CMDLINE_MAX_ARGS) {
        c->truncated = true;
        p->args_closed = true;
        return;
    }
    c->argv[c->argc++] = cursor(p);
    p->used += w->len + 1;
}

static void handle_word(struct parser *p, const struct word *w)
{
    /* Classify by the word's head, which is whole even when the word did
     * not fit: a dropped virtio_mmio word must not close the app args. */
    if (!p->in_app && !w->quoted && str_eq(w->head, "--")) {
        p->in_app = true;
        return;
    }
    if (!p->in_app || starts_with(w->head, VIRTIO_MMIO_PREFIX)) {
        add_option(p, w);
        return;
    }
    add_arg(p, w);
}

/* argv[0]: a copy of the app name, cut short if it cannot fit. */
static void set_app_name(struct parser *p, const char *app_name)
{
    struct cmdline *c = p->c;
    size_t len = 0;
    if (!app_name)
        app_name = "";
    for (; app_name[len] && len + 1 < CMDLINE_MAX; len++)
        c->buf[len] = app_name[len];
    if (app_name[len])
        c->truncated = true;
    c->buf[len] = '\0';
    c->argv[0] = c->buf;
    c->argc = 1;
    p->used = len + 1;
}

int cmdline_parse(struct cmdline *c, const char *line, const char *app_name)
{
    struct parser p = { .c = c, .used = 0, .in_app = false, .args_closed = false };
    struct word w;
    c->nopts = 0;
    c->truncated = false;
    set_app_name(&p, app_name);
    if (!line)
        line = "";
    while (next_word(&line, cursor(&p), CMDLINE_MAX - p.used, &w))
        handle_word(&p, &w);
    c->argv[c->argc] = NULL;
    return c->truncated ? -1 : 0;
}

const char *cmdline_get(const struct cmdline *c, const char *key)
{
    for (int i = c->nopts - 1; i >= 0; i--) {
        if (str_eq(c->key[i], key))
            return c->value[i];
    }
    return NULL;
}

int cmdline_get_all(const struct cmdline *c, const char *key, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < c->nopts && n < max; i++) {
        if (str_eq(c->key[i], key))
            out[n++] = c->value[i];
    }
    return n;
}

static int digit_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return 99;
}

bool cmdline_parse_number(const char *s, const char **end, uint64_t *out)
{
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && digit_value(s[2]) < 16) {
        base = 16;
        s += 2;
    }
    if ((unsigned)digit_value(*s) >= base)
        return false;
    uint64_t v = 0;
    for (; (unsigned)digit_value(*s) < base; s++) {
        unsigned d = (unsigned)digit_value(*s);
        if (v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    *end = s;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    const char *end;
    uint64_t v;
    if (!cmdline_parse_number(s, &end, &v) || *end != '\0')
        return false;
    *out = v;
    return true;
}

bool cmdline_get_u64(const struct cmdline *c, const char *key, uint64_t *out)
{
    const char *value = cmdline_get(c, key);
    return value && parse_u64(value, out);
}

const char *cmdline_select(const char *bootloader_line, bool skip_first_word,
                           const char *default_line)
{
    if (!bootloader_line)
        return default_line;
    const char *p = skip_blanks(bootloader_line);
    if (skip_first_word) {
        while (*p && !is_blank(*p))
            p++;
        p = skip_blanks(p);
    }
    return *p ? p : default_line;
}

static bool is_device_word(const char *w) { return strncmp(w, VIRTIO_MMIO_PREFIX, sizeof VIRTIO_MMIO_PREFIX - 1) == 0; }

static size_t word_len(const char *w)
{
    size_t n = 0;
    while (w[n] && !is_blank(w[n]))
        n++;
    return n;
}

/* Does the line hold a word other than the machine's device words? */
static bool has_own_words(const char *line)
{
    for (const char *p = skip_blanks(line); *p; p = skip_blanks(p + word_len(p)))
        if (!is_device_word(p))
            return true;
    return false;
}

static bool contains_word(const char *line, const char *w, size_t n)
{
    for (const char *p = skip_blanks(line); *p; p = skip_blanks(p + word_len(p)))
        if (word_len(p) == n && strncmp(p, w, n) == 0)
            return true;
    return false;
}

/* Appends src's device words that out lacks; false if out is full. */
static bool append_device_words(char *out, size_t size, const char *src)
{
    size_t len = strlen(out);
    for (const char *p = skip_blanks(src); *p; p = skip_blanks(p + word_len(p))) {
        size_t n = word_len(p);
        if (!is_device_word(p) || contains_word(out, p, n))
            continue;
        if (len + 1 + n + 1 > size)
            return false;
        out[len++] = ' ';
        memcpy(out + len, p, n);
        len += n;
        out[len] = '\0';
    }
    return true;
}

bool cmdline_compose(char *out, size_t size, const char *bootloader_line, bool skip_first_word,
                     const char *machine_line, const char *default_line)
{
    if (size == 0)
        return false;
    const char *given = cmdline_select(bootloader_line, skip_first_word, "");
    const char *base = has_own_words(given) ? given : default_line;
    size_t n = strlen(base);
    bool fits = n < size;
    if (!fits)
        n = size - 1;
    memcpy(out, base, n);
    out[n] = '\0';
    fits = append_device_words(out, size, given) && fits;
    if (machine_line)
        fits = append_device_words(out, size, machine_line) && fits;
    return fits;
}
