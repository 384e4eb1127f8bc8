#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the README's two commands on a freshly bootstrapped Debian 12 (minbase,
# nothing but what scripts/deps.sh installs) in a chroot on this machine, from a
# clean clone of HEAD: the check that no install step is missing. Root; needs
# debootstrap (installed if missing) and Debian's mirror. About 25 minutes.
#   scripts/fresh-debian.sh [DIR]     (default: a new directory under /var/tmp)
# The logs are copied to /tmp/pf-fresh-debian-{demo,ci}.log; KEEP=1 keeps DIR.
# Exit status 0 only when both commands succeeded.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-$(mktemp -d /var/tmp/pf-debian12.XXXXXX)}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
cleanup() {
  for l in demo ci; do cp "$root/root/$l.log" "/tmp/pf-fresh-debian-$l.log" 2>/dev/null || true; done
  # Every mount first: nothing may be deleted through a bind of /dev or /sys.
  umount -R "$root" 2>/dev/null || true
  if ! mount | grep -q " $root"; then
    [ "${KEEP:-0}" = 1 ] || rm -rf "$root"
  fi
}
trap cleanup EXIT

[ -x "$root/bin/bash" ] || debootstrap --variant=minbase bookworm "$root" "$mirror"
rm -rf "$root/root/podfence"
git clone -q "$top" "$root/root/podfence"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# "/" must be a mount point for `ip netns exec` (mount --make-rslave /).
mount --bind "$root" "$root"
for m in proc sys dev; do
  mount --rbind "/$m" "$root/$m"
  mount --make-rslave "$root/$m"
done
mount -t tmpfs tmpfs "$root/run"

chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c '
  cd /root/podfence
  scripts/demo.sh > /root/demo.log 2>&1; echo "demo exit $?" >> /root/demo.log
  CI=true bash .ci/run > /root/ci.log 2>&1; echo "test exit $?" >> /root/ci.log
  tail -n1 /root/demo.log; tail -n1 /root/ci.log
  grep -q "demo exit 0" /root/demo.log && grep -q "test exit 0" /root/ci.log'
