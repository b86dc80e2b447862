#!/usr/bin/env bash
# Can the molecule `ipvs` scenario (QEMU guests with a stock Debian kernel) run on this host?
# Exits 0 when it can. Otherwise prints why on stderr, prefixed "SKIP molecule ipvs:", and exits 1.
# Changes nothing on the host except a network namespace that it creates and deletes at once.
#
# Environment:
#   LBHA_SKIP_IPVS=1          skip on purpose (the reason says so)
#   LBHA_GUEST_CACHE          where the guest image is cached (default /var/cache/lbha/guest)
set -uo pipefail

CACHE_ROOT=${LBHA_GUEST_CACHE:-/var/cache/lbha/guest}
NEED_MEM_MB=1536       # 4 guests x 256 MB, plus qemu's own ~30 MB each and TCG's code cache
NEED_DISK_MB=2048      # debootstrap tree + image while building
export PATH=/usr/sbin:/sbin:$PATH

skip() {
  printf 'SKIP molecule ipvs: %s\n' "$*" >&2
  exit 1
}

[ "${LBHA_SKIP_IPVS:-0}" = 1 ] && skip "LBHA_SKIP_IPVS=1 is set"
[ "$(uname -m)" = x86_64 ] || skip "the guests are x86_64 and the host is $(uname -m)"
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, taps, debootstrap); running as uid $(id -u)"

installable() {  # the configured Debian archive offers package $1
  local candidate
  command -v apt-cache >/dev/null 2>&1 || return 1
  candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/{print $2; exit}')
  [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}
# the tools the image build needs: present, or installable (scripts/build-guest-image.sh installs them)
if ! command -v qemu-system-x86_64 >/dev/null 2>&1 && ! installable qemu-system-x86; then
  skip "qemu-system-x86_64 is missing and apt offers no qemu-system-x86 (not a Debian host, or apt-get update needed)"
fi
if ! command -v debootstrap >/dev/null 2>&1 && ! installable debootstrap; then
  skip "debootstrap is missing and apt offers no debootstrap package"
fi

[ -c /dev/net/tun ] || skip "/dev/net/tun is missing (the guests' NICs are taps)"

command -v ip >/dev/null 2>&1 || skip "iproute2 (ip) is missing"
# An existing lbhaq-ns is no reason to skip: `molecule test` starts with the scenario's destroy,
# which removes what an earlier run of it left, and create stops loudly on a foreign one.
probe=lbhaq-probe-$$
if ! ip netns add "$probe" 2>/dev/null; then
  skip "cannot create a network namespace (ip netns add failed)"
fi
if ! ip netns exec "$probe" ip tuntap add lbhaq-probe mode tap 2>/dev/null; then
  ip netns del "$probe" 2>/dev/null
  skip "cannot create a tap device inside a network namespace"
fi
ip netns del "$probe" 2>/dev/null

avail_mb=$(awk '/^MemAvailable:/{print int($2 / 1024)}' /proc/meminfo)
[ "${avail_mb:-0}" -ge "$NEED_MEM_MB" ] \
  || skip "needs ${NEED_MEM_MB} MB of available memory for 4 guests, has ${avail_mb:-?} MB"

dir=$CACHE_ROOT
while [ ! -d "$dir" ]; do dir=$(dirname "$dir"); done
free_mb=$(df -Pm "$dir" | awk 'NR == 2 {print $4}')
if [ -z "$(ls -A "$CACHE_ROOT" 2>/dev/null)" ] && [ "${free_mb:-0}" -lt "$NEED_DISK_MB" ]; then
  skip "needs ${NEED_DISK_MB} MB free under $dir to build the guest image, has ${free_mb:-?} MB"
fi

exit 0
