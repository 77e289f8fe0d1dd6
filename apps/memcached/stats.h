/*
 * stats [group]: every shard reports its figures by message, the
 * connection's shard sums them and formats the reply (text or binary).
 */
#ifndef MC_STATS_H
#define MC_STATS_H
#include "command.h"

struct mc_conn;
/* Answers cmd (MC_OP_STATS) on c, in order, once every shard has reported. */
void mc_stats_request(struct mc_conn *c, const struct mc_cmd *cmd);
/* flush_all [delay] on every shard (this one at once, the others by message, in order);
   false when a shard could not be told for lack of memory. */
bool mc_flush_all(int64_t delay);
#endif
