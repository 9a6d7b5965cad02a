#!/usr/bin/env bash
# Installs the Debian 12 packages kumo needs to build, test and benchmark.
# Idempotent: installs only what is missing. Run as root.
set -euo pipefail

PACKAGES=(
    build-essential autoconf automake pkg-config
    libtokyocabinet-dev tokyocabinet-bin libmsgpack-dev libev-dev libxxhash-dev liblz4-dev
    libsodium-dev
    libcmocka-dev libmemcached-dev libmemcached-tools libncurses-dev tmux
    memcached nutcracker netcat-openbsd python3 procps iproute2 faketime clang
    groff-base python3-pymemcache python3-pylibmc libcache-memcached-perl
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
