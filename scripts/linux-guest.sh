#!/bin/sh
# Build a minimal Linux guest for the virtio benchmark (tests/bench/virtio.py).
#
#     scripts/linux-guest.sh [OUTDIR]        (default build/linux-guest)
#
# From Debian packages fetched with `apt-get download` (nothing is installed
# on the host): the kernel of the linux-image-amd64 dependency and the
# virtio modules it builds as modules, busybox-static, and the workload
# programs compiled here (gcc -static): tests/bench/guest/l2reflect.c,
# blkread.c and tcp_echo.c. Produces OUTDIR/vmlinuz and OUTDIR/initrd.gz
# (cpio newc, gzip). Its /init loads the modules, brings eth0 up and runs the workload
# named on the kernel command line, then powers off:
#     bench=l2reflect    reflect every frame on eth0 (stops on l2echo:exit)
#     bench=blkread      4 KiB random and 1 MiB sequential reads of /dev/vda
#     bench=tcp_echo     TCP echo on port 7 of eth0's address shoal_ip=A/N
#                        (stops on a tcp_echo:exit datagram, or after
#                        tcp_echo_seconds=S, default 300)
#     bench=memcached    Debian's memcached on eth0's address, port 11211, with
#                        memcached_args=A,B (comma-separated), for
#                        memcached_seconds=S (default 300); needs memcached
#                        installed on the host (scripts/install-deps.sh), whose
#                        binary and shared libraries are copied in
#     bench=shoal_memcached  apps/memcached built for Linux (runtime/linux,
#                        `make linux APP=memcached`, linked statically here)
#                        with SHOAL_SHARDS=<online CPUs>, `-p 11211 -m 64` or
#                        shoal_memcached_args=A,B (comma-separated), for
#                        memcached_seconds=S (default 300); left out, with a
#                        warning, when apps/memcached does not build
#     bench=shell        nothing (an interactive shell on the console)
#     blkread_args=A,B   extra arguments for blkread, comma-separated (seconds=2,depth=16)
# Downloads only what OUTDIR/dl lacks; everything else is rebuilt each time.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build/linux-guest}
mkdir -p "$OUT/dl"
OUT=$(cd "$OUT" && pwd)
cd "$OUT"

# --- packages -------------------------------------------------------------
KPKG=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
if [ -z "$KPKG" ]; then
    echo "linux-guest.sh: no linux-image-*-amd64 behind linux-image-amd64 (run apt-get update)" >&2
    exit 1
fi
cd dl
ls "${KPKG}"_*.deb >/dev/null 2>&1 || apt-get download "$KPKG"
ls busybox-static_*.deb >/dev/null 2>&1 || apt-get download busybox-static
cd ..

rm -rf pkg
mkdir -p pkg/kernel pkg/busybox
dpkg-deb -x "$(ls dl/"${KPKG}"_*.deb | head -n1)" pkg/kernel
dpkg-deb -x "$(ls dl/busybox-static_*.deb | head -n1)" pkg/busybox
KVER=$(ls pkg/kernel/lib/modules | head -n1)
CONFIG=pkg/kernel/boot/config-$KVER
cp "pkg/kernel/boot/vmlinuz-$KVER" vmlinuz
BUSYBOX=pkg/busybox/bin/busybox

# --- initramfs tree -------------------------------------------------------
rm -rf root
mkdir -p root/bin root/sbin root/dev root/proc root/sys root/lib/modules root/tmp
cp "$BUSYBOX" root/bin/busybox
for app in sh mount insmod ip sleep poweroff cat echo ls mkdir dmesg sed; do
    ln -s busybox "root/bin/$app"
done

# Modules, in load order (each after what it depends on), only those the
# kernel does not build in. Dependencies come from each module's .modinfo.
MODDIR=pkg/kernel/lib/modules/$KVER/kernel
: > root/lib/modules/order
for spec in VIRTIO:drivers/virtio/virtio_ring VIRTIO:drivers/virtio/virtio \
            VIRTIO_PCI_LIB:drivers/virtio/virtio_pci_modern_dev \
            VIRTIO_PCI_LIB_LEGACY:drivers/virtio/virtio_pci_legacy_dev \
            VIRTIO_PCI:drivers/virtio/virtio_pci VIRTIO_MMIO:drivers/virtio/virtio_mmio \
            FAILOVER:net/core/failover NET_FAILOVER:drivers/net/net_failover \
            VIRTIO_NET:drivers/net/virtio_net VIRTIO_BLK:drivers/block/virtio_blk; do
    opt=${spec%%:*}
    path=${spec#*:}
    case $(grep "^CONFIG_$opt=" "$CONFIG" || true) in
        *=y) ;;                                   # built in
        *=m)
            f=$MODDIR/$path.ko
            if [ ! -f "$f" ]; then
                for z in xz zst gz; do
                    [ -f "$f.$z" ] && { echo "linux-guest.sh: $f.$z is compressed; unsupported" >&2; exit 1; }
                done
                echo "linux-guest.sh: $f missing" >&2
                exit 1
            fi
            name=$(basename "$path")
            cp "$f" "root/lib/modules/$name.ko"
            echo "$name" >> root/lib/modules/order
            ;;
        *) echo "linux-guest.sh: CONFIG_$opt is neither built in nor a module" >&2; exit 1 ;;
    esac
done
grep -q '^CONFIG_PACKET=y' "$CONFIG" || { echo "linux-guest.sh: kernel lacks CONFIG_PACKET=y" >&2; exit 1; }

# Workload programs.
for prog in l2reflect blkread tcp_echo; do
    gcc -static -O2 -Wall -Wextra -o "root/bin/$prog" "$ROOT/tests/bench/guest/$prog.c" -lpthread
done

# apps/memcached as a Linux program, through the Makefile's `linux` rule with
# -static added (so it needs no libraries here); its own build directory, so
# build/linux/memcached (dynamic) is left alone.
if make -s -C "$ROOT" linux APP=memcached BUILD="$OUT/shoal-linux" CC="gcc -static" >&2; then
    cp "$OUT/shoal-linux/linux/memcached" root/bin/shoal_memcached
else
    echo "linux-guest.sh: WARNING: make linux APP=memcached failed; bench=shoal_memcached is unavailable" >&2
fi

# Debian's memcached, as installed on the host, with the shared libraries it loads.
if [ -x /usr/bin/memcached ]; then
    cp /usr/bin/memcached root/bin/memcached
    for lib in $(ldd /usr/bin/memcached | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'); do
        mkdir -p "root$(dirname "$lib")"
        cp -L "$lib" "root$lib"
    done
    # memcached refuses to run as root without -u, and -u needs the user to exist
    mkdir -p root/etc
    echo 'root:x:0:0:root:/:/bin/sh' > root/etc/passwd
    echo 'root:x:0:' > root/etc/group
fi

cat > root/init <<'EOF'
#!/bin/sh
# Minimal init for the Shoal virtio benchmark's Linux guest.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null
while read m; do
    insmod /lib/modules/$m.ko || echo "init: insmod $m failed"
done < /lib/modules/order
bench=
blkread_args=
shoal_ip=
tcp_echo_seconds=300
memcached_args=
memcached_seconds=300
shoal_memcached_args="-p 11211 -m 64"
for a in $(cat /proc/cmdline); do
    case $a in
        bench=*) bench=${a#bench=} ;;
        blkread_args=*) blkread_args=$(echo "${a#blkread_args=}" | sed 's/,/ /g') ;;
        shoal_ip=*) shoal_ip=${a#shoal_ip=} ;;
        tcp_echo_seconds=*) tcp_echo_seconds=${a#tcp_echo_seconds=} ;;
        memcached_args=*) memcached_args=$(echo "${a#memcached_args=}" | sed 's/,/ /g') ;;
        memcached_seconds=*) memcached_seconds=${a#memcached_seconds=} ;;
        shoal_memcached_args=*) shoal_memcached_args=$(echo "${a#shoal_memcached_args=}" | sed 's/,/ /g') ;;
    esac
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ ! -e /dev/vda ] && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ -e /sys/class/net/eth0 ]; then
    [ -n "$shoal_ip" ] && ip addr add "$shoal_ip" dev eth0
    ip link set eth0 up
fi
echo "init: up, bench=$bench, $(cat /sys/devices/system/cpu/online) cpus online"
case $bench in
    l2reflect) /bin/l2reflect eth0; echo "init: l2reflect exited $?" ;;
    blkread) /bin/blkread /dev/vda $blkread_args; echo "init: blkread exited $?" ;;
    tcp_echo) /bin/tcp_echo 7 "$tcp_echo_seconds"; echo "init: tcp_echo exited $?" ;;
    memcached)
        echo "memcached: ready"
        timeout "$memcached_seconds" /bin/memcached -u root -p 11211 -U 0 $memcached_args
        echo "init: memcached exited $?" ;;
    shoal_memcached)
        # it prints "memcached: ready, ..." itself once every shard listens
        if [ -x /bin/shoal_memcached ]; then
            ncpu=$(grep -c ^processor /proc/cpuinfo)
            SHOAL_SHARDS=$ncpu timeout "$memcached_seconds" /bin/shoal_memcached $shoal_memcached_args
            echo "init: shoal_memcached exited $?"
        else
            echo "init: shoal_memcached is not in this initramfs (apps/memcached did not build)"
        fi ;;
    shell) sh ;;
    *) echo "init: unknown bench '$bench'" ;;
esac
poweroff -f
EOF
chmod +x root/init

(cd root && find . | sort | "$OUT/$BUSYBOX" cpio -o -H newc 2>/dev/null) | gzip -9 > initrd.gz.new
mv initrd.gz.new initrd.gz
echo "linux-guest.sh: $OUT/vmlinuz ($KVER), $OUT/initrd.gz ($(wc -c < initrd.gz) bytes), modules: $(tr '\n' ' ' < root/lib/modules/order)"
