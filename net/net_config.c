/* The IPv4 configuration on the kernel command line (see net_config.h). */
#include "net_config.h"
#include "../kernel/cmdline.h"
#include "../kernel/console.h"

static bool parse_ipv4(const char *s, const char **end, uint32_t *out)
{
    uint32_t ip = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t v;
        if (!cmdline_parse_number(s, &s, &v) || v > 255 || (i < 3 && *s++ != '.'))
            return false;
        ip = ip << 8 | (uint32_t)v;
    }
    *end = s;
    *out = ip;
    return true;
}

/* ip=A.B.C.D/N, gw=A.B.C.D, mtu=N; false (and a message) when ip= is there but malformed. */
bool net_config_parse(const struct cmdline *cmd, struct net_config *cfg)
{
    const char *ip = cmdline_get(cmd, "ip"), *gw = cmdline_get(cmd, "gw"), *end;
    uint64_t v;
    cfg->mtu = cmdline_get_u64(cmd, "mtu", &v) && v >= 576 && v <= 9000 ? (uint16_t)v : 0;
    if (!ip)
        return true;
    uint64_t prefix = 24;
    if (!parse_ipv4(ip, &end, &cfg->ip) || (*end == '/' && (!cmdline_parse_number(end + 1, &end, &prefix) || prefix > 32)) ||
        *end) {
        klog("net: cannot parse ip=%s (want A.B.C.D/N); no address configured", ip);
        return false;
    }
    cfg->netmask = prefix ? ~0u << (32 - prefix) : 0;
    if (gw && (!parse_ipv4(gw, &end, &cfg->gateway) || *end)) {
        klog("net: cannot parse gw=%s; no gateway", gw);
        cfg->gateway = 0;
    }
    cfg->configured = true;
    return true;
}
