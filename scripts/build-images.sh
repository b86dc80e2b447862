#!/usr/bin/env bash
# Build the test image lbha/debian:SUITE-systemd (bookworm: Debian 12, trixie: Debian 13) without
# any container registry.
#
# The root filesystem comes from debootstrap (the Debian mirror of /etc/apt), is imported with
# `docker import`, and a local `docker build` (FROM the imported image, nothing is pulled) adds
# ENV/STOPSIGNAL/CMD and a label holding the hash of this recipe. When an image carrying that
# label exists the build is skipped, so a second run takes about a second.
#
# Everything the roles and tests install is baked in: the test containers sit on an internal
# network and cannot reach a mirror.
#
# Environment:
#   LBHA_SUITE      Debian suite              (default bookworm; or the first argument)
#   LBHA_IMAGE      image tag                 (default lbha/debian:SUITE-systemd)
#   LBHA_MIRROR     Debian mirror URI         (default: the suite's URI from /etc/apt, else the
#                                              host's Debian archive: every release is in it)
#   LBHA_FORCE=1    rebuild even when an image with the same recipe exists
#   DOCKER          docker client             (default /usr/bin/docker)
set -euo pipefail

SUITE=${1:-${LBHA_SUITE:-bookworm}}
IMAGE=${LBHA_IMAGE:-lbha/debian:$SUITE-systemd}
DOCKER=${DOCKER:-/usr/bin/docker}
LABEL_KEY=org.lbha.image.recipe

# Packages baked into the image, one group per purpose.
PACKAGES=(
  # init and the basics Ansible needs (python3-apt: ansible.builtin.apt must not try to fetch it)
  systemd systemd-sysv dbus libpam-systemd python3 python3-apt netbase ca-certificates
  procps kmod iproute2 iputils-ping iputils-arping curl tcpdump less
  # directors: keepalived, both forwarding planes, firewalld (netbase is required by firewalld)
  keepalived ipvsadm nftables python3-nftables firewalld iptables ipset
  # real servers
  nginx-light
  # client: SMTP receiver for keepalived's notification e-mails
  python3-aiosmtpd
)
# Units Debian would start on its default configuration: the roles enable what they configure.
DISABLED_UNITS=(keepalived.service nginx.service firewalld.service e2scrub_reap.service)

log() { printf 'build-images: %s\n' "$*"; }
die() { printf 'build-images: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (run scripts/bootstrap-host.sh)"
[ -x "$DOCKER" ] || die "docker client $DOCKER not found (apt-get install docker.io)"
"$DOCKER" info >/dev/null 2>&1 || die "no Docker daemon answers (run scripts/bootstrap-host.sh)"

# The recipe hash: this script's content plus the package list (the list is in the script, it is
# added explicitly so that a list passed in some other way later still changes the hash).
RECIPE=$( { cat "${BASH_SOURCE[0]}"; printf '%s\n' "$SUITE" "${PACKAGES[@]}"; } | sha256sum | cut -c1-16)

if [ "${LBHA_FORCE:-0}" != 1 ] && \
   [ -n "$("$DOCKER" images -q --filter "label=$LABEL_KEY=$RECIPE" "$IMAGE" 2>/dev/null)" ]; then
  log "$IMAGE is up to date (recipe $RECIPE), nothing to build"
  exit 0
fi

mirror_from_apt() {
  # deb822 sources first (Debian 12 default), then the one-line format.
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk -v suite="$SUITE" '
      BEGIN { RS = ""; FS = "\n" }
      {
        uris = ""; suites = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)   { uris = $i;   sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) { suites = " " $i " "; sub(/^ Suites:/, "", suites) }
        }
        if (uris != "" && suites ~ ("[ \t]" suite "[ \t]")) { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    uri=$(awk -v suite="$SUITE" '$1 == "deb" {
        n = 2; if ($2 ~ /^\[/) { while ($n !~ /\]$/) n++; n++ }
        if ($(n + 1) == suite) { print $n; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  return 1
}

# Every Debian release is in the same archive: a suite the host's sources do not name (Debian 13
# on a Debian 12 host) comes from the host's archive.
host_archive() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$f")
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  [ -r /etc/apt/sources.list ] || return 1
  uri=$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  [ -n "$uri" ] && echo "$uri"
}

MIRROR=${LBHA_MIRROR:-$(mirror_from_apt || host_archive || true)}
[ -n "$MIRROR" ] || die "no Debian mirror for '$SUITE' found in /etc/apt (set LBHA_MIRROR)"

WORK=$(mktemp -d /var/tmp/lbha-image.XXXXXX)
ROOTFS_TAG="${IMAGE}-rootfs"
cleanup() {
  # debootstrap may leave /proc and /sys mounted in the chroot when it fails.
  local m
  for m in proc sys dev/pts dev; do
    if mountpoint -q "$WORK/rootfs/$m" 2>/dev/null; then umount -l "$WORK/rootfs/$m" || true; fi
  done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

start=$(date +%s)
log "building $IMAGE (recipe $RECIPE) from $MIRROR, log in $WORK/debootstrap.log"
include=$(IFS=,; echo "${PACKAGES[*]}")
if ! debootstrap --variant=minbase --include="$include" "$SUITE" "$WORK/rootfs" "$MIRROR" \
     >"$WORK/debootstrap.log" 2>&1; then
  tail -n 30 "$WORK/debootstrap.log" >&2
  die "debootstrap failed (log above)"
fi
t_boot=$(date +%s)
log "debootstrap done in $((t_boot - start)) s"

chroot "$WORK/rootfs" systemctl disable "${DISABLED_UNITS[@]}" >/dev/null 2>&1 || true
for unit in "${DISABLED_UNITS[@]}"; do
  # systemctl disable in a chroot succeeds without an install section; check the outcome.
  if chroot "$WORK/rootfs" systemctl is-enabled --quiet "$unit" 2>/dev/null; then
    die "$unit is still enabled in the image"
  fi
done
# A container without CAP_SYS_ADMIN cannot give a service that runs as another user seccomp
# filters: systemd 257 (Debian 13) then fails polkitd at step USER, and firewalld 2.x, which asks
# polkit about every D-Bus call, hangs until it times out. The test image alone drops those
# filters from polkit's unit; on a real host (and the QEMU guests) polkit keeps its sandbox.
if [ -f "$WORK/rootfs/usr/lib/systemd/system/polkit.service" ]; then
  mkdir -p "$WORK/rootfs/etc/systemd/system/polkit.service.d"
  cat > "$WORK/rootfs/etc/systemd/system/polkit.service.d/lbha-container.conf" <<'DROPIN'
# lbha test image: no seccomp-based sandboxing (needs CAP_SYS_ADMIN in a container)
[Service]
SystemCallFilter=
SystemCallArchitectures=
RestrictAddressFamilies=
MemoryDenyWriteExecute=no
RestrictNamespaces=no
LockPersonality=no
RestrictRealtime=no
RestrictSUIDSGID=no
ProtectClock=no
ProtectHostname=no
ProtectKernelLogs=no
ProtectKernelModules=no
ProtectKernelTunables=no
PrivateDevices=no
DROPIN
fi
chroot "$WORK/rootfs" apt-get clean
rm -rf "$WORK/rootfs/var/lib/apt/lists/"* "$WORK/rootfs/var/log/"*.log
: > "$WORK/rootfs/etc/machine-id"   # systemd gives every container its own id

tar --numeric-owner -C "$WORK/rootfs" -c . | "$DOCKER" import - "$ROOTFS_TAG" >/dev/null

mkdir -p "$WORK/build"
cat > "$WORK/build/Dockerfile" <<DOCKERFILE
FROM $ROOTFS_TAG
LABEL $LABEL_KEY="$RECIPE" org.lbha.image.suite="$SUITE"
ENV container=docker
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
DOCKERFILE
DOCKER_BUILDKIT=0 "$DOCKER" build -q -t "$IMAGE" "$WORK/build" >/dev/null
"$DOCKER" rmi "$ROOTFS_TAG" >/dev/null   # untag only: the final image keeps the layer
# earlier builds of this recipe family that no tag and no container uses any more
"$DOCKER" image prune -f --filter "label=$LABEL_KEY" >/dev/null

end=$(date +%s)
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
log "built $IMAGE in $((end - start)) s ($((size / 1048576)) MiB, recipe $RECIPE)"
