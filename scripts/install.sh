#!/usr/bin/env bash
# Installs what lvsdoctor needs on Debian/Ubuntu, from nothing: system tools, then the npm packages.
#   scripts/install.sh          the tool (and the tools it reads from: iptables, nft, ip, ipvsadm, conntrack, ipset)
#   scripts/install.sh --test   also what the test suite needs (tcpdump, qemu and a Debian kernel for the IPVS lab)
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs=(iptables nftables iproute2 ipvsadm conntrack ipset tcpdump libpcap-dev python3 make g++ ca-certificates)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(qemu-system-x86 busybox-static cpio kmod procps)
fi
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "lvsdoctor needs Node.js 20 or newer; this machine has $(node --version)." >&2
  exit 2
fi
npm ci --no-audit --no-fund
npm run build
