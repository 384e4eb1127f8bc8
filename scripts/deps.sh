#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs everything podfence needs to build, test and run its demo on Debian 12.
# Idempotent: does nothing when every package is already there.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  libnftnl-dev libmnl-dev libjansson-dev libcurl4-openssl-dev libyaml-dev libmicrohttpd-dev check
  nftables iproute2 iptables conntrack procps
  containernetworking-plugins
  python3 python3-yaml openssl
  clang libclang-rt-14-dev valgrind strace
  buildah podman runc
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}; run as root (or install them) first" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
