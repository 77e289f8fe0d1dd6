/*
 * The memcached binary protocol (magic 0x80 requests, 0x81 responses),
 * including the quiet variants used for multi-get and GAT/TOUCH.
 * Host-buildable.
 */
#ifndef MC_BINARY_H
#define MC_BINARY_H
#include <stddef.h>
#include <stdint.h>
#include "command.h"
#include "outbuf.h"

#define MC_BIN_REQ_MAGIC 0x80
#define MC_BIN_RES_MAGIC 0x81
#define MC_BIN_HEADER 24

/* Request opcodes (cmd->bin_opcode), as memcached 1.6 numbers them. */
enum {
    MC_BIN_GET = 0x00, MC_BIN_SET = 0x01, MC_BIN_ADD = 0x02, MC_BIN_REPLACE = 0x03,
    MC_BIN_DELETE = 0x04, MC_BIN_INCREMENT = 0x05, MC_BIN_DECREMENT = 0x06, MC_BIN_QUIT = 0x07,
    MC_BIN_FLUSH = 0x08, MC_BIN_GETQ = 0x09, MC_BIN_NOOP = 0x0a, MC_BIN_VERSION = 0x0b,
    MC_BIN_GETK = 0x0c, MC_BIN_GETKQ = 0x0d, MC_BIN_APPEND = 0x0e, MC_BIN_PREPEND = 0x0f,
    MC_BIN_STAT = 0x10, MC_BIN_SETQ = 0x11, MC_BIN_ADDQ = 0x12, MC_BIN_REPLACEQ = 0x13,
    MC_BIN_DELETEQ = 0x14, MC_BIN_INCREMENTQ = 0x15, MC_BIN_DECREMENTQ = 0x16, MC_BIN_QUITQ = 0x17,
    MC_BIN_FLUSHQ = 0x18, MC_BIN_APPENDQ = 0x19, MC_BIN_PREPENDQ = 0x1a,
    MC_BIN_VERBOSITY = 0x1b,          /* not implemented by memcached 1.6: "Unknown command" */
    MC_BIN_TOUCH = 0x1c, MC_BIN_GAT = 0x1d, MC_BIN_GATQ = 0x1e,
    MC_BIN_SASL_LIST_MECHS = 0x20, MC_BIN_SASL_AUTH = 0x21, MC_BIN_SASL_STEP = 0x22,
    MC_BIN_GATK = 0x23, MC_BIN_GATKQ = 0x24,
};

/* Response status codes. */
enum {
    MC_BIN_SUCCESS = 0x0000, MC_BIN_KEY_ENOENT = 0x0001, MC_BIN_KEY_EEXISTS = 0x0002,
    MC_BIN_E2BIG = 0x0003, MC_BIN_EINVAL = 0x0004, MC_BIN_NOT_STORED = 0x0005,
    MC_BIN_DELTA_BADVAL = 0x0006, MC_BIN_UNKNOWN_COMMAND = 0x0081, MC_BIN_ENOMEM = 0x0082,
    MC_BIN_AUTH_ERROR = 0x0020,       /* "Auth failure.": FLUSH/FLUSHQ when flush_all is disabled (-F) */
};

/*
 * Parses the request at the start of buf. Returns 0 when more bytes are
 * needed, else the request's length (header + body) and fills cmd
 * (cmd->binary = true, opcode and opaque kept for the reply). A malformed
 * request becomes MC_OP_ERROR (the reply carries the right status: unknown
 * command, invalid arguments, too large). A header whose magic is wrong or
 * whose lengths contradict each other cannot be resynchronised: *fatal is
 * set, and the connection is closed after the error reply.
 * item_size_max: as for the text protocol.
 *
 * Details (all as memcached 1.6.18 does them):
 * - Nothing is decided before header + extras + key have arrived (0 until then);
 *   storage commands, SASL and unknown opcodes also wait for the rest of their body.
 * - Bad magic: MC_OP_ERROR, error MC_ERR_NONE, bin_status 0, *fatal: close with no reply.
 * - Lengths that contradict each other: "Unknown command", *fatal. Key over 250 bytes or
 *   wrong extras/key/body lengths for the opcode: "Invalid arguments", *fatal.
 * - Unknown opcode (VERBOSITY included): "Unknown command"; the return value skips
 *   24 + extlen + keylen + bodylen bytes (memcached's accounting; not fatal).
 * - Value over the limit: MC_ERR_TOO_LARGE ("Too large."), body skipped, not fatal; cmd->key
 *   is set (memcached also unlinks the old item for SET/SETQ, not for ADD/REPLACE/APPEND).
 * - STAT with a group memcached's binary STAT does not know: MC_OP_ERROR, bin_status
 *   KEY_ENOENT ("Not found"), not fatal. Known groups set cmd->stats_group to "",
 *   "reset", "settings", "detail dump", "detail on", "detail off", "items", "slabs",
 *   "sizes", "sizes_enable" or "sizes_disable".
 * - TOUCH, GAT* and STAT consume header + extras + key only; extra body bytes are the
 *   next request.
 * - SET/ADD/REPLACE with a nonzero cas become store_mode MC_CAS; APPEND/PREPEND, DELETE
 *   and INCR/DECR keep cmd->cas for the store to compare (memcached does).
 * mc_binary_error() answers any MC_OP_ERROR from cmd->bin_status (nothing when 0).
 */
size_t mc_binary_parse(const uint8_t *buf, size_t len, uint32_t item_size_max, struct mc_cmd *cmd, bool *fatal);
/*
 * The same, except for requests whose body is only skipped (a value over the limit, an unknown
 * opcode, SASL): those are answered as soon as header, extras and key are in, the return value
 * covers only what buf holds of them, and *swallow says how many more input bytes to discard as
 * they arrive (0 for every other request). Lets the connection skip a huge body without holding
 * it; memcached swallows such bodies the same way (and sends its reply once they are gone).
 */
size_t mc_binary_parse_early(const uint8_t *buf, size_t len, uint32_t item_size_max, struct mc_cmd *cmd, bool *fatal,
                             uint64_t *swallow);

/* Reply to a keyed command (nothing for quiet variants that succeed/miss as memcached does). */
void mc_binary_reply(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res);
/* Replies to MC_OP_ERROR, version, verbosity, flush, noop, quit (QUIT answers, QUITQ does not). */
void mc_binary_error(struct mc_out *o, const struct mc_cmd *cmd);
void mc_binary_simple(struct mc_out *o, const struct mc_cmd *cmd, const char *version);
void mc_binary_out_of_memory(struct mc_out *o, const struct mc_cmd *cmd);
/* stats: one response packet per stat, then an empty one. */
void mc_binary_stat(struct mc_out *o, const struct mc_cmd *cmd, const char *name, const char *value);
void mc_binary_stats_end(struct mc_out *o, const struct mc_cmd *cmd);
#endif
