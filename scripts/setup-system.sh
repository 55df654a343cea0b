#!/usr/bin/env bash
# System packages the build and tests need, installed from Debian's archive.
# Idempotent; run by `make` before anything else.
set -euo pipefail
need=()
dpkg -s libgtest-dev >/dev/null 2>&1 || need+=(libgtest-dev)
# clang for the libFuzzer target of the proxy's request decoder.
dpkg -s clang-14 >/dev/null 2>&1 || need+=(clang-14)
dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y -q "${need[@]}" || { $SUDO apt-get update -q && $SUDO apt-get install -y -q "${need[@]}"; }
fi
