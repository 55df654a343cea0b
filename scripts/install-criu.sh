#!/usr/bin/env bash
# Installs CRIU >= 4.0 as /usr/local/sbin/criu (or $CRIU_PREFIX/criu).
#
# CRIU 3.17 (Debian 12's package) fails on kernels >= 6.13 ("Unexpected rt
# vDSO area bounds").  Where the distribution's package is new enough
# (Debian 13), that is used; otherwise CRIU is built from Debian trixie's
# source tarball with its build dependencies from the machine's own archive.
# The machine's package sources are not changed: the trixie source list
# lives in a temporary directory for the one download.
set -euo pipefail
PREFIX=${CRIU_PREFIX:-/usr/local/sbin}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

criu_ok() {
    local bin=$1 v
    [ -x "$bin" ] || return 1
    v=$("$bin" --version 2>/dev/null | sed -n 's/^Version: \([0-9]*\).*/\1/p')
    [ -n "$v" ] && [ "$v" -ge 4 ]
}

for c in "$PREFIX/criu" "$(command -v criu || true)"; do
    if [ -n "$c" ] && criu_ok "$c"; then echo "criu: $("$c" --version | head -1) at $c"; exit 0; fi
done

if apt-cache policy criu 2>/dev/null | grep -q 'Candidate: [4-9]'; then
    $SUDO apt-get install -y -q criu
    criu_ok "$(command -v criu)" && exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The mirror the machine already uses, with the trixie suite's sources.
mirror=$(grep -rhoE 'https?://[^ ]*/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
         | grep -v -e security -e snapshot | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
echo "deb-src ${mirror%/} trixie main" > "$work/sources.list"
mkdir -p "$work/lists/partial"
aptopts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o "Dir::State::Lists=$work/lists")
apt-get -q "${aptopts[@]}" update >/dev/null
# Only the .orig tarball is served; the .dsc fetch fails and that is fine.
(cd "$work" && apt-get -q "${aptopts[@]}" source --download-only criu >/dev/null 2>&1 || true)
tarball=$(ls "$work"/criu_4*.orig.tar.* 2>/dev/null | head -1)
if [ -z "$tarball" ]; then
    echo "install-criu: could not download CRIU 4.x sources from $mirror (trixie)" >&2
    exit 1
fi
$SUDO apt-get install -y -q --no-install-recommends build-essential pkg-config \
    libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3-protobuf \
    libnl-3-dev libnet1-dev libcap-dev libaio-dev libgnutls28-dev libbsd-dev uuid-dev libnftables-dev >/dev/null
tar -C "$work" -xf "$tarball"
make -C "$work"/criu-4* -j"$(nproc)" criu >/dev/null 2>&1
$SUDO install -D -m 0755 "$work"/criu-4*/criu/criu "$PREFIX/criu"
criu_ok "$PREFIX/criu"
echo "criu: $("$PREFIX/criu" --version | head -1) at $PREFIX/criu"
