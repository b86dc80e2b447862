#!/usr/bin/env bash
# Prepare a Debian 12 host for lbha.cluster's tests and demo: Debian packages, a running Docker
# engine, the test images. Idempotent; when everything is in place it takes a second or two.
#
# Environment:
#   LBHA_SKIP_IMAGES=1        do not build the test images
#   LBHA_DOCKERD_TIMEOUT=60   seconds to wait for a freshly started Docker daemon
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOCKER=/usr/bin/docker            # from docker.io; /usr/local/bin/docker may be a bare client
DOCKERD=""                        # docker.io ships /usr/sbin/dockerd
for c in /usr/sbin/dockerd /usr/bin/dockerd; do [ -x "$c" ] && { DOCKERD=$c; break; }; done
DOCKERD_LOG=/var/log/lbha-dockerd.log
DOCKERD_TIMEOUT=${LBHA_DOCKERD_TIMEOUT:-60}

# What the host itself needs: the engine and image build, the tools the tests call on the host
# (iptables for the DOCKER-USER rule, nft/ipvsadm/keepalived for the integration tests).
HOST_PACKAGES=(python3-venv docker.io debootstrap iptables keepalived nftables ipvsadm curl iproute2 ca-certificates)

log() { printf 'bootstrap-host: %s\n' "$*"; }
die() { printf 'bootstrap-host: error: %s\n' "$*" >&2; exit 1; }
trap 'die "step failed at line $LINENO: $BASH_COMMAND"' ERR

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, starts dockerd); try: sudo $0"
[ -r /etc/debian_version ] || die "this script supports Debian (12) hosts only"

# 1. Debian packages: only the missing ones, `apt-get update` once and only if something is missing.
missing=()
for pkg in "${HOST_PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
else
  log "host packages present"
fi

# 2. Docker engine: use the running daemon, else start one.
if "$DOCKER" info >/dev/null 2>&1; then
  log "Docker daemon answers"
else
  if [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
    log "starting docker.service"
    systemctl start docker.service || die "systemctl start docker.service failed (journalctl -u docker)"
  else
    [ -n "$DOCKERD" ] || die "dockerd not found in /usr/sbin or /usr/bin (is docker.io installed?)"
    log "starting $DOCKERD in the background (log: $DOCKERD_LOG)"
    # setsid: the daemon outlives this script and the shell that ran it.
    setsid "$DOCKERD" >>"$DOCKERD_LOG" 2>&1 < /dev/null &
  fi
  deadline=$((SECONDS + DOCKERD_TIMEOUT))
  until "$DOCKER" info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
      die "the Docker daemon did not answer within ${DOCKERD_TIMEOUT} s (see $DOCKERD_LOG)"
    fi
    sleep 0.5
  done
  log "Docker daemon up after $((SECONDS - deadline + DOCKERD_TIMEOUT)) s"
fi

# 3. Test images (skipped inside the build script when the recipe has not changed).
if [ "${LBHA_SKIP_IMAGES:-0}" != 1 ]; then
  DOCKER=$DOCKER "$HERE/build-images.sh"
fi
log "host ready"
