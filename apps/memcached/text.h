/*
 * The memcached text protocol: classic commands (get, set, ..., stats) and
 * meta commands (mg, ms, md, ma, mn, me), as memcached 1.6 speaks them
 * (/usr/share/doc/memcached/protocol.txt). Parsing turns bytes into
 * struct mc_cmd; formatting turns a struct mc_result into the reply bytes.
 * Host-buildable (no runtime calls beyond malloc/string functions).
 */
#ifndef MC_TEXT_H
#define MC_TEXT_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "command.h"
#include "outbuf.h"

/* Longest get/gets line accepted (memcached takes any length; a few hundred keys is what
   clients send); longer ones get "CLIENT_ERROR line too long" and the connection is closed
   after the reply. Other lines end at 2048 bytes, as in memcached. */
#define MC_TEXT_LINE_MAX 65536

/*
 * Parses the request at the start of buf (len bytes, the connection's input).
 * Returns 0 when more bytes are needed; otherwise the number of bytes the
 * request occupies (command line and data block) and fills cmd. cmd's
 * pointers point into buf. On a malformed request cmd->op is MC_OP_ERROR
 * and the return value says how much input to drop (e.g. a storage command
 * with a bad data chunk: the line and the bytes memcached would swallow).
 * item_size_max is -I: a storage command whose value exceeds it becomes
 * MC_OP_ERROR with MC_ERR_TOO_LARGE and its data block is skipped (which
 * may need more input first: the return value is 0 until it has arrived).
 *
 * A get/gets/gat/gats line with several keys is one cmd with the first key;
 * mc_text_next_key() walks the rest. `keys_cursor` and `keys_end` are set
 * for that purpose.
 */
struct mc_text_keys { const uint8_t *cursor, *end; };
size_t mc_text_parse(const uint8_t *buf, size_t len, uint32_t item_size_max, struct mc_cmd *cmd,
                     struct mc_text_keys *keys);
/* Next key of a multi-key get line into cmd->key/keylen; false when none is left.
   A key longer than MC_KEY_MAX sets cmd->op = MC_OP_ERROR (bad command line format) and returns true. */
bool mc_text_next_key(struct mc_text_keys *keys, struct mc_cmd *cmd);

/* Reply to one keyed command (for a get line: one key's VALUE block or nothing). */
void mc_text_reply(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res);
/* End of a classic get line ("END\r\n"). */
void mc_text_get_end(struct mc_out *o);
/* Reply to MC_OP_ERROR, to the unkeyed commands that need no data (version, verbosity,
   flush_all, mn), and SERVER_ERROR out of memory. Nothing when cmd->noreply allows it. */
void mc_text_error(struct mc_out *o, const struct mc_cmd *cmd);
void mc_text_simple(struct mc_out *o, const struct mc_cmd *cmd, const char *version);
void mc_text_out_of_memory(struct mc_out *o);
/* stats: one "STAT name value" line each, then "END". */
void mc_text_stat(struct mc_out *o, const char *name, const char *value);
void mc_text_stats_end(struct mc_out *o);
#endif
