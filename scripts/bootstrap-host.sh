#!/usr/bin/env bash
# Prepare a Debian host for lbha.cluster's tests and demo: Debian packages, a running Docker
# engine, the test images. Idempotent; when everything is in place it takes a second or two.
#
# The steps run in order and each looks only for what an earlier step provided: the engine's
# binaries are looked up after the packages that ship them are installed, never before (a fresh
# machine has none of them).
#
# Environment:
#   LBHA_SKIP_IMAGES=1        do not build the test images
#   LBHA_IMAGE_SUITES         the Debian releases of the test images (default: bookworm trixie)
#   LBHA_DOCKERD_TIMEOUT=60   seconds to wait for a freshly started Docker daemon
#   LBHA_HOST_ROOT            prefix of every host path the script reads or writes (default: /);
#                             tests point it at a tree of stubs to prove the cold path
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${LBHA_HOST_ROOT:-}
DOCKER=$ROOT/usr/bin/docker       # from docker.io; /usr/local/bin/docker may be a bare client
DOCKERD_LOG=$ROOT/var/log/lbha-dockerd.log
DOCKERD_TIMEOUT=${LBHA_DOCKERD_TIMEOUT:-60}
LBHA_IMAGE_SUITES=${LBHA_IMAGE_SUITES:-bookworm trixie}

# What the host itself needs: the engine and image build, the tools the tests call on the host
# (iptables for the DOCKER-USER rule, nft/ipvsadm/keepalived for the integration tests, shellcheck
# for ansible-test sanity).
HOST_PACKAGES=(python3-venv docker.io debootstrap iptables keepalived nftables ipvsadm curl iproute2 ca-certificates shellcheck)

log() { printf 'bootstrap-host: %s\n' "$*"; }
die() { printf 'bootstrap-host: error: %s\n' "$*" >&2; exit 1; }

preflight() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, starts dockerd); try: sudo $0"
  [ -r "$ROOT/etc/debian_version" ] || die "this script supports Debian hosts only"
}

# 1. Debian packages: only the missing ones, `apt-get update` once and only if something is missing.
install_packages() {
  local pkg status missing=()
  for pkg in "${HOST_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "host packages present"
    return 0
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# The daemon binary, looked up once the packages are in place (docker.io ships /usr/sbin/dockerd).
find_dockerd() {
  local c
  for c in "$ROOT/usr/sbin/dockerd" "$ROOT/usr/bin/dockerd"; do
    [ -x "$c" ] && { printf '%s\n' "$c"; return 0; }
  done
  return 1
}

# 2. Docker engine: use the running daemon, else start one.
start_engine() {
  local dockerd deadline
  [ -x "$DOCKER" ] || die "docker client $DOCKER not found after installing docker.io"
  if "$DOCKER" info >/dev/null 2>&1; then
    log "Docker daemon answers"
    return 0
  fi
  if [ -d "$ROOT/run/systemd/system" ] && systemctl cat docker.service >/dev/null 2>&1; then
    log "starting docker.service"
    systemctl start docker.service || die "systemctl start docker.service failed (journalctl -u docker)"
  else
    dockerd=$(find_dockerd) || die "dockerd not found in $ROOT/usr/sbin or $ROOT/usr/bin after installing docker.io"
    log "starting $dockerd in the background (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid: the daemon outlives this script and the shell that ran it.
    setsid "$dockerd" >>"$DOCKERD_LOG" 2>&1 < /dev/null &
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
}

# 3. Test images (skipped inside the build script when the recipe has not changed).
build_images() {
  [ "${LBHA_SKIP_IMAGES:-0}" = 1 ] && { log "LBHA_SKIP_IMAGES=1: test images not built"; return 0; }
  local suite
  for suite in $LBHA_IMAGE_SUITES; do
    DOCKER=$DOCKER "$HERE/build-images.sh" "$suite"
  done
}

main() {
  trap 'die "step failed at line $LINENO: $BASH_COMMAND"' ERR
  preflight
  install_packages
  start_engine
  build_images
  log "host ready"
}

# Sourced (by a test), the steps are only defined; run, they run in order.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
