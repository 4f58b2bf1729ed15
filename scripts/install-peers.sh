#!/bin/sh
# Installs the Debian packages the tests' real peers need. Each peer lists its
# packages in scripts/peers/<peer>.packages (one per line, # comments), so a
# plugin adds its peer without touching this script.
# Idempotent: installs only what is missing, runs `apt-get update` at most once.
# As root it installs; as another user it prints what is missing and exits 0.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PACKAGES=$(cat "$HERE"/peers/*.packages | sed 's/#.*//' | tr -s ' \n' ' ')
PACKAGES=$(echo $PACKAGES)

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done
missing="${missing# }"

if [ -z "$missing" ]; then
    echo "install-peers: all present ($PACKAGES)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-peers: missing: $missing"
    echo "install-peers: run as root to install them: sudo $0"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-peers: missing: $missing (no apt-get here: install them by hand)" >&2
    exit 1
fi

echo "install-peers: installing: $missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
# sshd refuses to start without its privilege-separation directory.
mkdir -p /run/sshd
echo "install-peers: installed: $missing"
