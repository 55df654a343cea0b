#!/usr/bin/env bash
# System packages the build and tests need, installed from Debian's archive.
# Idempotent; run by `make` before anything else.
set -euo pipefail
need=()
dpkg -s libgtest-dev >/dev/null 2>&1 || need+=(libgtest-dev)
# Checkpoint images: xxHash for content addressing, nlohmann/json for manifests.
dpkg -s libxxhash-dev >/dev/null 2>&1 || need+=(libxxhash-dev)
dpkg -s nlohmann-json3-dev >/dev/null 2>&1 || need+=(nlohmann-json3-dev)
# clang for the libFuzzer target of the proxy's request decoder.
dpkg -s clang-14 >/dev/null 2>&1 || need+=(clang-14)
dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
# etcd for the replicated scheduler's tests (docs/control-plane.md); the tests start their own.
dpkg -s etcd-server >/dev/null 2>&1 || need+=(etcd-server)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y -q "${need[@]}" || { $SUDO apt-get update -q && $SUDO apt-get install -y -q "${need[@]}"; }
fi
