/*
 * A growable byte buffer that replies are formatted into. The connection
 * layer hands the bytes to TCP (or UDP frames) and resets it. Growth
 * failure is sticky (failed = true) so that formatting code need not check
 * every append; the connection answers SERVER_ERROR out of memory or
 * closes instead.
 */
#ifndef MC_OUTBUF_H
#define MC_OUTBUF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mc_out {
    uint8_t *buf;
    size_t len, cap;
    bool failed;
};

void mc_out_init(struct mc_out *o);
void mc_out_free(struct mc_out *o);
/* Room for n more bytes; NULL (and failed set) when memory runs out. Commit with mc_out_advance. */
uint8_t *mc_out_reserve(struct mc_out *o, size_t n);
static inline void mc_out_advance(struct mc_out *o, size_t n) { o->len += n; }
void mc_out_append(struct mc_out *o, const void *data, size_t n);
void mc_out_str(struct mc_out *o, const char *s);
void mc_out_u64(struct mc_out *o, uint64_t v);        /* decimal */
void mc_out_i64(struct mc_out *o, int64_t v);         /* decimal, with '-' */
/* Drops the first n bytes (after they were sent). */
void mc_out_consume(struct mc_out *o, size_t n);
#endif
