/*
 * l2echo: reflects every Ethernet frame it receives, source and
 * destination MAC swapped, and counts frames per shard.
 *
 *   -- [steer]   steer: each IPv4 frame is handled by the shard owning its
 *                flow (Toeplitz hash) and leaves through that shard's queue,
 *                or its queue owner's; default: reflected on the queue it
 *                arrived on, by the shard that polled it.
 *
 * A frame of EtherType 0x88B5 (IEEE local experimental) whose payload
 * starts with "l2echo:exit" is not reflected: the shard that gets it
 * prints every shard's count and powers off with status 0.
 */
#include "../../runtime/shoal.h"

#define ETHERTYPE_CONTROL 0x88B5
#define MAX_SHARDS 64

static uint64_t reflected[MAX_SHARDS];   /* each written only by its own shard */

static bool is_control(const uint8_t *f, uint32_t len)
{
    return len >= 14 + 11 && (f[12] << 8 | f[13]) == ETHERTYPE_CONTROL && memcmp(f + 14, "l2echo:exit", 11) == 0;
}

static void report_and_exit(void)
{
    uint64_t total = 0;
    for (unsigned s = 0; s < shard_count(); s++) {
        struct shoal_l2_stats st;
        shoal_l2_stats(s, &st);
        shoal_print("l2echo: shard %u reflected %lu frames (rx %lu, steered in %lu out %lu, tx %lu, forwarded %lu, dropped %lu)\n",
                    s, (unsigned long)reflected[s], (unsigned long)st.rx_frames, (unsigned long)st.steered_in,
                    (unsigned long)st.steered_out, (unsigned long)st.tx_frames, (unsigned long)st.tx_forwarded,
                    (unsigned long)st.tx_dropped);
        total += reflected[s];
    }
    shoal_print("l2echo: %lu frames reflected in total\n", (unsigned long)total);
    shoal_exit(0);
}

static void on_frame(struct netbuf *frame, void *arg)
{
    (void)arg;
    uint8_t *f = shoal_frame_data(frame);
    uint32_t len = shoal_frame_len(frame);
    if (len < 14) {
        shoal_frame_free(frame);
        return;
    }
    if (is_control(f, len)) {
        shoal_frame_free(frame);
        report_and_exit();
    }
    uint8_t tmp[6];
    memcpy(tmp, f, 6);
    memcpy(f, f + 6, 6);
    memcpy(f + 6, tmp, 6);
    reflected[shard_id()]++;
    shoal_l2_send(frame);
}

void app_main(int argc, char **argv)
{
    struct shoal_l2_info info;
    if (!shoal_l2_info(&info)) {
        if (shard_id() == 0) {
            shoal_print("l2echo: no network device (boot with --net tap:IFNAME)\n");
            shoal_exit(1);
        }
        return;
    }
    bool steer = argc > 1 && strcmp(argv[1], "steer") == 0;
    shoal_l2_set_steering(steer);
    shoal_l2_set_handler(on_frame, 0);
    if (shard_id() == 0)
        shoal_print("l2echo: ready on %u shards, %u queue pair%s, mac %02x:%02x:%02x:%02x:%02x:%02x, %s\n",
                    shard_count(), info.queues, info.queues == 1 ? "" : "s", info.mac[0], info.mac[1],
                    info.mac[2], info.mac[3], info.mac[4], info.mac[5],
                    steer ? "frames steered to their flow's shard" : "frames reflected where they arrive");
}
