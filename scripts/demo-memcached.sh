#!/bin/sh
# Boot the memcached image on 2 vCPUs behind a tap device in a network
# namespace made for the purpose, and let real clients talk to it: a
# pymemcache set/get, libmemcached's memcstat, then 3 s of memcaslap load.
# Needs root (or sudo).
#
#     scripts/demo-memcached.sh [SMP]
#
# Every client step is bounded (timeout, $DEMO_STEP_SECONDS each, default 30): a step that
# fails or hangs stops the demo with a message saying which, and the demo
# exits non-zero. On every way out (the end, a failed step, SIGINT, SIGTERM,
# SIGHUP) everything in the namespace (run.py, QEMU, the clients) is killed
# and the namespace deleted.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMP=${1:-2}
STEP_SECONDS=${DEMO_STEP_SECONDS:-30}
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
NS=shoal-demo-$$
IP=10.0.2.15
TMP=$(mktemp -d)
LOG=$TMP/console          # run.py's output (the guest's console)
OUT=$TMP/step             # the current step's output
GUEST_RC=$TMP/guest-rc    # written when the guest's run.py has ended

make -s -C "$ROOT" APP=memcached
cleanup() {
    set +e                      # tear everything down even when a step fails
    trap '' INT TERM HUP        # and do not stop half-way
    # QEMU, run.py and any client run inside the namespace: kill them all (again, until none is
    # left and the guest's job has ended: a process entering the namespace late is caught too).
    i=0
    while :; do
        pids=$($SUDO ip netns pids "$NS" 2>/dev/null)
        # shellcheck disable=SC2086  # one pid a word
        [ -n "$pids" ] && $SUDO kill -9 $pids 2>/dev/null
        if [ -z "$pids" ] && { [ -z "${GUEST:-}" ] || [ -s "$GUEST_RC" ]; }; then break; fi
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            echo "demo: still running in $NS after 10 s: ${pids:-the guest job}" >&2
            break
        fi
        sleep 0.1
    done
    $SUDO ip netns delete "$NS" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT
trap 'echo "demo: terminated" >&2; exit 143' TERM
trap 'echo "demo: hung up" >&2; exit 129' HUP

$SUDO ip netns add "$NS"
in_ns() { $SUDO ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns ip tuntap add dev tap0 mode tap multi_queue
in_ns ip addr add 10.0.2.1/24 dev tap0
in_ns ip link set tap0 up

# The guest, in the background; when its job ends it writes run.py's exit status to GUEST_RC.
: >"$LOG"
{
    rc=0
    in_ns /usr/bin/python3 "$ROOT/scripts/run.py" "$ROOT/build/memcached.elf" --smp "$SMP" \
        --net "tap:tap0,queues=$SMP" --timeout 240 -- "ip=$IP/24" gw=10.0.2.1 -- -U 11211 >"$LOG" 2>&1 || rc=$?
    echo "$rc" >"$GUEST_RC"
} &
GUEST=$!
i=0
until grep -q "memcached: ready" "$LOG"; do
    i=$((i + 1))
    if [ -s "$GUEST_RC" ]; then
        cat "$LOG"; echo "demo: the image stopped before it was ready (run.py exit status $(cat "$GUEST_RC"))" >&2; exit 1
    fi
    if [ $i -gt 600 ]; then
        cat "$LOG"; echo "demo: the image did not come up in 60 s" >&2; exit 1
    fi
    sleep 0.1
done
grep "memcached: ready" "$LOG"

# step NAME CMD...: CMD in the namespace, at most STEP_SECONDS; its output is in $OUT. In the
# background with `wait`, so that a signal to the demo is handled at once, not when the step ends.
step() {
    name=$1; shift
    in_ns timeout -k 5 "$STEP_SECONDS" "$@" >"$OUT" 2>&1 &
    rc=0
    wait $! || rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        cat "$OUT"; echo "demo: $name did not finish in $STEP_SECONDS s (stopped); console tail:" >&2
        tail -n 15 "$LOG" >&2; exit 1
    elif [ $rc -ne 0 ]; then
        cat "$OUT"; echo "demo: $name failed (exit status $rc); console tail:" >&2
        tail -n 15 "$LOG" >&2; exit 1
    fi
}
# expect NAME PATTERN: the step's output must match (grep -E), else the demo fails.
expect() {
    if ! grep -Eq "$2" "$OUT"; then
        cat "$OUT"; echo "demo: $1 printed nothing matching '$2'" >&2; exit 1
    fi
}

echo "--- pymemcache: set, get, incr"
step pymemcache /usr/bin/python3 -c "
from pymemcache.client.base import Client
c = Client(('$IP', 11211), default_noreply=False, connect_timeout=5, timeout=10)
ok = c.set('greeting', b'hello from a Shoal shard'); print('set greeting:', ok); assert ok
v = c.get('greeting'); print('get greeting:', v); assert v == b'hello from a Shoal shard', v
c.set('visits', b'41'); n = c.incr('visits', 1); print('incr visits:', n); assert n == 42, n
print('version:', c.version())"
cat "$OUT"
echo "--- memcstat (libmemcached)"
step memcstat memcstat --servers="$IP:11211"
expect memcstat 'curr_items'
grep -E 'curr_items|get_hits|threads|version' "$OUT"
echo "--- memcaslap, 32 connections, 3 s"
step memcaslap memcaslap -s "$IP:11211" -c 32 -T 1 -t 3s
expect memcaslap 'TPS: [0-9]+'
tail -n 1 "$OUT"
