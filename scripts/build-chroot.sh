#!/usr/bin/env bash
# Build (once, cached by recipe) a minimal Debian root filesystem for running a controller-side
# test under that release's Python, e.g. Debian 13's Python 3.13 for the newest ansible-core.
# The directory is printed as the last line of stdout.
#
# Usage: scripts/build-chroot.sh SUITE            (e.g. trixie)
# Environment:
#   LBHA_CHROOT_CACHE   cache root (default /var/cache/lbha/chroot)
#   LBHA_MIRROR         Debian mirror URI (default: the host's Debian archive from /etc/apt)
set -euo pipefail

SUITE=${1:?usage: $0 SUITE}
CACHE_ROOT=${LBHA_CHROOT_CACHE:-/var/cache/lbha/chroot}
# Python for the controller; keepalived, ipvsadm, nftables and iproute2 so that the unit tests that
# use them as oracles (keepalived -t, ipvsadm) run against this release's versions too; shellcheck for
# the sanity test of that name.
PACKAGES=python3,python3-venv,ca-certificates,git,keepalived,ipvsadm,nftables,iproute2,shellcheck
export PATH=/usr/sbin:/sbin:$PATH

log() { printf 'build-chroot: %s\n' "$*" >&2; }
die() { printf 'build-chroot: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (run scripts/bootstrap-host.sh)"

# Every Debian release is in the same archive: take the host's archive URI, whatever its suite.
host_archive() {
  local f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${LBHA_MIRROR:-$(host_archive)}

RECIPE=$({ cat "$0"; printf '%s\n' "$SUITE" "$PACKAGES" "$MIRROR"; } | sha256sum | cut -c1-16)
OUT=$CACHE_ROOT/$SUITE-$RECIPE
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
flock 9
if [ -x "$OUT/usr/bin/python3" ] && [ -f "$OUT/.lbha-complete" ]; then
  log "cache hit: $OUT"
  printf '%s\n' "$OUT"
  exit 0
fi

WORK=$CACHE_ROOT/.build-$SUITE-$RECIPE
rm -rf "$WORK"
start=$SECONDS
log "debootstrap $SUITE from $MIRROR into $WORK"
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$WORK" "$MIRROR" >"$CACHE_ROOT/$SUITE.log" 2>&1; then
  tail -n 30 "$CACHE_ROOT/$SUITE.log" >&2
  die "debootstrap failed (log above)"
fi
rm -rf "$WORK/var/cache/apt/archives/"*.deb "$WORK/var/lib/apt/lists/"*
touch "$WORK/.lbha-complete"
# earlier recipes of this suite
find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 -name "$SUITE-*" ! -name "$SUITE-$RECIPE" -exec rm -rf {} +
mv "$WORK" "$OUT"
log "built $OUT in $((SECONDS - start)) s"
printf '%s\n' "$OUT"
