#!/bin/sh
# Fetch lwIP's Debian source package (apt-get source lwip) into build/lwip-src/,
# for the lwIP baseline image (make lwip-images). Enables deb-src for the
# Debian archive first when apt knows no source for lwip. Idempotent: does
# nothing when the sources are already unpacked. lwIP's sources are never
# committed: build/ is ignored.
#     scripts/fetch-lwip.sh [DEST]       (default build/lwip-src)
set -eu
DEST=${1:-build/lwip-src}
if [ -f "$DEST/src/core/tcp.c" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

# A deb-src entry for the machine's Debian suites (deb822, as Debian 12 uses).
enable_deb_src() {
    . /etc/os-release
    codename=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
    list=/etc/apt/sources.list.d/shoal-deb-src.sources
    echo "fetch-lwip: enabling deb-src for Debian $codename in $list"
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$codename" "$codename" | $SUDO tee "$list" >/dev/null
    $SUDO apt-get update -qq
}

if ! apt-cache showsrc lwip 2>/dev/null | grep -q '^Package: lwip'; then
    enable_deb_src
fi
command -v dpkg-source >/dev/null || { echo "fetch-lwip: dpkg-source missing (apt-get install dpkg-dev)" >&2; exit 1; }

# Unpack in a scratch folder, then move the tree into place, so a failed
# download leaves no half-made DEST behind.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lwip-src.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get source -qq lwip >/dev/null)
tree=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'lwip-*' | head -n 1)
[ -n "$tree" ] && [ -f "$tree/src/core/tcp.c" ] || { echo "fetch-lwip: apt-get source lwip gave no lwIP tree" >&2; exit 1; }
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST"
mv "$tree" "$DEST"
echo "fetch-lwip: $(basename "$(ls "$tmp"/lwip_*.dsc)" .dsc) unpacked in $DEST"
