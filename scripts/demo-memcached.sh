#!/bin/sh
# Boot the memcached image on 2 vCPUs behind a tap device in a network
# namespace made for the purpose, and let real clients talk to it: a
# pymemcache set/get, libmemcached's memcstat, then 3 s of memcaslap load.
# Everything is torn down at the end. Needs root (or password-less sudo).
#
#     scripts/demo-memcached.sh [SMP]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMP=${1:-2}
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
NS=shoal-demo-$$
LOG=$(mktemp)
IP=10.0.2.15

make -s -C "$ROOT" APP=memcached
cleanup() {
    set +e                      # tear everything down even when a step fails
    if [ -n "${GUEST:-}" ]; then
        kill "$GUEST" 2>/dev/null
        wait "$GUEST" 2>/dev/null
    fi
    $SUDO ip netns delete "$NS" 2>/dev/null
    rm -f "$LOG"
}
trap cleanup EXIT INT TERM
$SUDO ip netns add "$NS"
in_ns() { $SUDO ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns ip tuntap add dev tap0 mode tap multi_queue
in_ns ip addr add 10.0.2.1/24 dev tap0
in_ns ip link set tap0 up

in_ns /usr/bin/python3 "$ROOT/scripts/run.py" "$ROOT/build/memcached.elf" --smp "$SMP" \
    --net "tap:tap0,queues=$SMP" --timeout 300 -- "ip=$IP/24" gw=10.0.2.1 -- -U 11211 >"$LOG" 2>&1 &
GUEST=$!
i=0
until grep -q "memcached: ready" "$LOG"; do
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 "$GUEST" 2>/dev/null; then
        cat "$LOG"; echo "demo: the image did not come up" >&2; exit 1
    fi
    sleep 0.1
done
grep "memcached: ready" "$LOG"

echo "--- pymemcache: set, get, incr"
in_ns /usr/bin/python3 -c "
from pymemcache.client.base import Client
c = Client(('$IP', 11211), default_noreply=False)
print('set greeting:', c.set('greeting', b'hello from a Shoal shard'))
print('get greeting:', c.get('greeting'))
c.set('visits', b'41'); print('incr visits:', c.incr('visits', 1))
print('version:', c.version())"
echo "--- memcstat (libmemcached)"
in_ns memcstat --servers="$IP:11211" | grep -E 'curr_items|get_hits|threads|version'
echo "--- memcaslap, 32 connections, 3 s"
in_ns memcaslap -s "$IP:11211" -c 32 -T 1 -t 3s | tail -n 1
