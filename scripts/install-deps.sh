#!/bin/sh
# Install what building, booting and testing Shoal needs, from Debian's packages.
set -eu
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
    build-essential binutils make python3 qemu-system-x86 qemu-utils \
    linux-libc-dev iproute2 procps iputils-ping dnsmasq-base iptables nftables clang libclang-rt-14-dev \
    memcached libmemcached-tools python3-pymemcache python3-matplotlib
