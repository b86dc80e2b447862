#!/usr/bin/env bash
# Build the QEMU guest image of the molecule `ipvs` scenario: a stock Debian kernel (which has
# IPVS, unlike some CI kernels) booted under QEMU, with a rootfs that already holds everything the
# collection's roles install on a director and on a real server. Debian 12 by default;
# LBHA_GUEST_SUITE=trixie builds Debian 13 with its own kernel (6.12, zstd-compressed image,
# xz-compressed modules under /usr/lib/modules).
#
# Output, in $LBHA_GUEST_CACHE/<recipe hash>/ (the directory is printed as the last line of stdout):
#   vmlinux          the kernel, decompressed: QEMU boots it through its PVH entry point, which
#                    skips the in-guest decompression (about 3 s per boot under TCG)
#   initrd.gz        busybox + the virtio/ext4 modules; mounts /dev/vda and switches to systemd
#   base.qcow2       ext4 rootfs (debootstrap minbase + packages); guests boot copy-on-write
#                    overlays of it, so one image serves every guest
#   kernel-release   the kernel's release string (6.1.0-NN-amd64 on Debian 12)
#   manifest.json    what was built, from which packages, and how long it took
#
# The hash covers this file and the settings below, so an unchanged recipe is a cache hit and the
# script returns at once. Host packages are installed only when a tool is missing.
#
# Usage: scripts/build-guest-image.sh [--force] [--print-dir]
#   --force       rebuild even when the cache holds this recipe
#   --print-dir   print the cache directory the recipe would use and exit (builds nothing)
# Environment:
#   LBHA_GUEST_CACHE   cache root (default /var/cache/lbha/guest)
#   LBHA_GUEST_MIRROR  Debian mirror (default: the host's first configured Debian mirror)
#   LBHA_GUEST_SUITE   Debian suite (default bookworm)
#   LBHA_GUEST_KERNEL  kernel package to boot (default: what linux-image-amd64 depends on)
#   LBHA_GUEST_EXTRA   extra guest packages, comma-separated (e.g. firewalld)
set -euo pipefail

CACHE_ROOT=${LBHA_GUEST_CACHE:-/var/cache/lbha/guest}
SUITE=${LBHA_GUEST_SUITE:-bookworm}
EXTRA=${LBHA_GUEST_EXTRA:-}
FORCE=0
PRINT_DIR=0
for arg in "$@"; do
  case $arg in
    --force) FORCE=1 ;;
    --print-dir) PRINT_DIR=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-guest-image: unknown argument $arg" >&2; exit 2 ;;
  esac
done

# What the guests need: systemd as PID 1 (the roles manage services with systemd), SSH for Ansible,
# python3 + python3-apt for Ansible's modules, and the packages the director, real_server and nginx
# roles install (package tasks then find them present: the guests have no route to a mirror).
GUEST_PACKAGES=systemd,systemd-sysv,openssh-server,python3,python3-apt
GUEST_PACKAGES+=,keepalived,ipvsadm,nginx,iproute2,iputils-ping,iputils-arping,curl,kmod,procps
GUEST_PACKAGES+=,netbase,tcpdump,ca-certificates
# firewalld runs on directors and real servers as in the seed (with its D-Bus and nftables backend)
GUEST_PACKAGES+=,firewalld,python3-firewall,nftables,dbus,libpam-systemd
[ -n "$EXTRA" ] && GUEST_PACKAGES="$GUEST_PACKAGES,$EXTRA"

# Kernel modules copied into the rootfs (with their dependencies): IPVS and its schedulers, virtio,
# the netfilter pieces the roles (both planes: the nftables plane forwards with fwd and jhash) or
# an operator may touch, and the usual virtual links.
GUEST_MODULES="virtio_net virtio_pci virtio_blk virtio_rng ext4 ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc
 ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh
 ip_vs_ftp nf_conntrack nf_tables nft_chain_nat nft_ct nft_nat nft_fib_inet nft_reject_inet
 nft_compat nft_masq nft_redir nft_limit nft_log nft_fib_ipv4 nft_fib_ipv6 nft_reject_ipv4
 nft_reject_ipv6 nft_fwd_netdev nft_dup_netdev nft_hash nft_numgen nft_quota nft_connlimit x_tables xt_conntrack iptable_filter iptable_nat ip_set dummy bridge veth macvlan
 8021q ipip tun"
# Modules the initrd loads to reach the root filesystem.
INITRD_MODULES="virtio_pci virtio_blk ext4"

log() { printf 'build-guest-image: [%ss] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'build-guest-image: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mounts, apt-get); try: sudo $0"
[ -r /etc/debian_version ] || die "this script supports Debian hosts only (apt-get, debootstrap)"

host_mirror() {
  local uri=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${LBHA_GUEST_MIRROR:-$(host_mirror)}

# The recipe: this file plus every setting that changes the result. The kernel is resolved at
# build time (Debian bumps its ABI with security updates), so a cached image keeps its kernel
# until the recipe changes or --force is given.
RECIPE_HASH=$({ cat "$0"; printf '%s\n' "$SUITE" "$MIRROR" "$EXTRA" "${LBHA_GUEST_KERNEL:-}"; } \
  | sha256sum | cut -c1-16)
OUT=$CACHE_ROOT/$RECIPE_HASH
if [ "$PRINT_DIR" -eq 1 ]; then
  printf '%s\n' "$OUT"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
# One build at a time per cache (two scenarios started together share the result).
exec 9>"$CACHE_ROOT/.lock"
flock 9

if [ "$FORCE" -eq 0 ] && [ -f "$OUT/manifest.json" ]; then
  log "cache hit: $OUT"
  printf '%s\n' "$OUT"
  exit 0
fi

# 1. Host tools, installed only when missing.
declare -A TOOL_PACKAGE=(
  [qemu-system-x86_64]=qemu-system-x86 [qemu-img]=qemu-utils [debootstrap]=debootstrap
  [mkfs.ext4]=e2fsprogs [cpio]=cpio [python3]=python3 [flock]=util-linux [nc]=netcat-openbsd
  [ssh]=openssh-client [ssh-keygen]=openssh-client [curl]=curl [ip]=iproute2
  [arping]=iputils-arping [zstd]=zstd [xz]=xz-utils
)
missing=()
for tool in "${!TOOL_PACKAGE[@]}"; do
  PATH=/usr/sbin:/sbin:$PATH command -v "$tool" >/dev/null 2>&1 || missing+=("${TOOL_PACKAGE[$tool]}")
done
# the initrd needs the static busybox (no libc in it)
[ "$(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null || true)" = installed ] \
  || missing+=(busybox-static)
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi
export PATH=/usr/sbin:/sbin:$PATH

WORK=$CACHE_ROOT/.build-$RECIPE_HASH
ROOTFS=$WORK/rootfs
cleanup() {
  local rc=$?
  if mountpoint -q "$ROOTFS/mnt/kernel" 2>/dev/null; then umount "$ROOTFS/mnt/kernel"; fi
  for m in proc sys dev; do
    if mountpoint -q "$ROOTFS/$m" 2>/dev/null; then umount -l "$ROOTFS/$m"; fi
  done
  [ "$rc" -eq 0 ] || log "failed (rc=$rc); the work tree is kept for inspection: $WORK"
  return "$rc"
}
trap cleanup EXIT
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

# 2. Kernel: the .deb of the suite's linux-image-amd64, unpacked; vmlinuz decompressed to vmlinux
# for PVH boot. The host's apt knows its own release: a guest of another release (Debian 13 on a
# Debian 12 host) gets its kernel through the new root filesystem's apt, after debootstrap.
# shellcheck source=/dev/null
HOST_SUITE=$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}")
in_root() {  # in_root ROOT COMMAND...: COMMAND in the chroot ROOT, or on the host when ROOT is empty
  local root=$1
  shift
  if [ -n "$root" ]; then chroot "$root" "$@"; else "$@"; fi
}
resolve_kernel() {  # resolve_kernel ROOT: the kernel package behind linux-image-amd64
  in_root "$1" apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'
}
fetch_kernel() {  # fetch_kernel [ROOT]: from the host's apt, or from ROOT's
  local root=${1:-}
  KPKG=${LBHA_GUEST_KERNEL:-$(resolve_kernel "$root")}
  if [ -z "$KPKG" ]; then
    in_root "$root" apt-get update -q >/dev/null || die "apt-get update failed"
    KPKG=$(resolve_kernel "$root")
  fi
  [ -n "$KPKG" ] || die "cannot resolve the kernel package behind linux-image-amd64"
  KREL=${KPKG#linux-image-}
  log "kernel $KPKG"
  mkdir -p kdeb kernel
  chmod 0777 kdeb    # apt-get download drops to the _apt user
  if [ -n "$root" ]; then
    mkdir -p "$root/tmp/kdeb" && chmod 0777 "$root/tmp/kdeb"
    chroot "$root" sh -c "cd /tmp/kdeb && apt-get download -q '$KPKG'" >/dev/null \
      || die "apt-get download $KPKG failed (in the $SUITE root)"
    mv "$root"/tmp/kdeb/*.deb kdeb/
    rm -rf "$root/tmp/kdeb" "$root"/var/lib/apt/lists/*_dists_*
  else
    (cd kdeb && apt-get download -q "$KPKG" >/dev/null) || die "apt-get download $KPKG failed"
  fi
  dpkg-deb -x kdeb/*.deb kernel
  # Debian 13's kernel ships its modules under /usr/lib/modules (merged /usr)
  if [ ! -d kernel/lib/modules ] && [ -d kernel/usr/lib/modules ]; then
    mkdir -p kernel/lib && mv kernel/usr/lib/modules kernel/lib/modules
  fi
  KVERSION=$(dpkg-deb -f kdeb/*.deb Version)
  python3 - "kernel/boot/vmlinuz-$KREL" vmlinux <<'EOF'
import lzma, subprocess, sys
data = open(sys.argv[1], 'rb').read()
xz, zstd = data.find(b'\xfd7zXZ\x00'), data.find(b'\x28\xb5\x2f\xfd')
if xz >= 0:                                  # Debian 12's x86 kernels are xz-compressed
    elf = lzma.LZMADecompressor().decompress(data[xz:])
elif zstd >= 0:                              # Debian 13's zstd (the frame is followed by other data)
    elf = subprocess.run(['zstd', '-dc'], input=data[zstd:], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=False).stdout
else:
    sys.exit('no xz or zstd stream in ' + sys.argv[1])
if not elf.startswith(b'\x7fELF'):
    sys.exit('the kernel in %s did not decompress to an ELF image' % sys.argv[1])
with open(sys.argv[2], 'wb') as out:
    out.write(elf)
EOF
}
if [ "$SUITE" = "$HOST_SUITE" ]; then fetch_kernel; fi

# 3. Root filesystem.
log "debootstrap $SUITE from $MIRROR (packages: $GUEST_PACKAGES)"
debootstrap --variant=minbase --include="$GUEST_PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
  >debootstrap.log 2>&1 || { tail -n 30 debootstrap.log >&2; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
if [ "$SUITE" != "$HOST_SUITE" ]; then fetch_kernel "$ROOTFS"; fi

# 4. Kernel modules: the closure of GUEST_MODULES, resolved inside the chroot (the host needs no kmod).
log "kernel modules"
mkdir -p "$ROOTFS/mnt/kernel"
mount --bind kernel "$ROOTFS/mnt/kernel"
chroot "$ROOTFS" depmod -b /mnt/kernel "$KREL"
modclosure() {
  local m
  for m in "$@"; do
    chroot "$ROOTFS" modprobe -d /mnt/kernel -S "$KREL" --show-depends "$m" \
      || die "module $m is not in $KPKG"
  done | awk '/^insmod/{print $2}' | sed 's#^/mnt/kernel/##' | awk '!seen[$0]++'
}
# shellcheck disable=SC2086
modclosure $GUEST_MODULES >modules.txt
# shellcheck disable=SC2086
modclosure $INITRD_MODULES >initrd-modules.txt
umount "$ROOTFS/mnt/kernel"
rmdir "$ROOTFS/mnt/kernel"
mkdir -p "$ROOTFS/lib/modules/$KREL"
(cd kernel && xargs -a ../modules.txt cp --parents -t "$ROOTFS/")
cp kernel/lib/modules/"$KREL"/modules.{builtin,builtin.modinfo,order} "$ROOTFS/lib/modules/$KREL/"
chroot "$ROOTFS" depmod "$KREL"

# 5. Guest configuration.
log "guest configuration"
G=$ROOTFS
: >"$G/etc/machine-id"                       # systemd creates one per boot (transient)
rm -f "$G"/etc/ssh/ssh_host_*                 # each guest makes its own at first boot
printf '# the root filesystem is mounted read-write by the initrd\n' >"$G/etc/fstab"
printf 'lbha-guest\n' >"$G/etc/hostname"
printf '127.0.0.1 localhost\n' >"$G/etc/hosts"
printf 'virtio_net\nvirtio_rng\n' >"$G/etc/modules-load.d/lbha-guest.conf"

cat >"$G/usr/local/sbin/lbha-guest-setup" <<'EOF'
#!/bin/bash
# Configures a test guest from its kernel command line, before sshd starts:
#   lbha.ip=ADDR/PREFIX   address of eth0 (no default route: the test network is isolated)
#   lbha.key=BASE64       root's authorized_keys line, base64-encoded
set -eu
ip= key=
for arg in $(cat /proc/cmdline); do
  case $arg in
    lbha.ip=*) ip=${arg#*=} ;;
    lbha.key=*) key=${arg#*=} ;;
  esac
done
for _ in $(seq 100); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
ip link set lo up
if [ -n "$ip" ]; then
  ip link set eth0 up
  ip addr replace "$ip" dev eth0
fi
if [ -n "$key" ]; then
  install -d -m 0700 /root/.ssh
  printf '%s\n' "$key" | base64 -d >/root/.ssh/authorized_keys
  chmod 0600 /root/.ssh/authorized_keys
fi
[ -s /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
echo "LBHA-GUEST-READY $(hostname) ${ip%/*} uptime=$(cut -d' ' -f1 /proc/uptime)" >/dev/console
EOF
chmod 0755 "$G/usr/local/sbin/lbha-guest-setup"

cat >"$G/etc/systemd/system/lbha-guest-setup.service" <<'EOF'
[Unit]
Description=Test guest address and SSH keys from the kernel command line
After=systemd-modules-load.service local-fs.target
Before=network.target ssh.service
Wants=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/lbha-guest-setup

[Install]
WantedBy=multi-user.target
EOF

cat >"$G/etc/ssh/sshd_config.d/lbha-guest.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
GSSAPIAuthentication no
EOF

# journald in memory only, and quiet on the serial console.
mkdir -p "$G/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\nForwardToConsole=no\n' \
  >"$G/etc/systemd/journald.conf.d/lbha-guest.conf"

chroot "$G" systemctl enable lbha-guest-setup.service ssh.service >/dev/null 2>&1
# The roles enable and start these on a configuration they have written; timers and gettys are
# only boot time under emulation.
chroot "$G" systemctl disable nginx.service keepalived.service firewalld.service >/dev/null 2>&1 || true
chroot "$G" systemctl mask e2scrub_reap.service e2scrub_all.timer apt-daily.timer \
  apt-daily-upgrade.timer fstrim.timer getty@tty1.service serial-getty@ttyS0.service \
  systemd-timesyncd.service >/dev/null 2>&1 || true
chroot "$G" systemctl set-default multi-user.target >/dev/null

# Size: caches, docs and locales are not needed on a test guest.
chroot "$G" apt-get clean
rm -rf "$G"/var/lib/apt/lists/* "$G"/usr/share/doc/* "$G"/usr/share/man/* "$G"/usr/share/info/* \
  "$G"/usr/share/locale/* "$G"/var/log/*.log "$G"/var/cache/debconf/*-old

# 6. initrd: busybox + the modules to reach /dev/vda; hands over to systemd.
log "initrd"
mkdir -p initrd/{bin,proc,dev,newroot,modules}
cp /bin/busybox initrd/bin/
# busybox's insmod takes plain .ko files: Debian 13 ships its modules xz-compressed
while read -r mod; do
  base=${mod##*/}
  case $base in
    *.ko.xz) xz -dc "kernel/$mod" >"initrd/modules/${base%.xz}" ;;
    *.ko.zst) zstd -qdc "kernel/$mod" >"initrd/modules/${base%.zst}" ;;
    *) cp "kernel/$mod" initrd/modules/ ;;
  esac
done <initrd-modules.txt
# shellcheck disable=SC2016  # the initrd's shell expands these, not this one
{
  echo '#!/bin/busybox sh'
  echo '/bin/busybox mount -t proc proc /proc'
  echo '/bin/busybox mount -t devtmpfs dev /dev'
  echo "for m in $(xargs -n1 basename <initrd-modules.txt | sed 's/\.ko\(\.xz\|\.zst\)\{0,1\}$//' | xargs); do"
  echo '  /bin/busybox insmod /modules/$m.ko 2>/dev/null'
  echo 'done'
  echo 'for i in $(/bin/busybox seq 100); do [ -b /dev/vda ] && break; /bin/busybox sleep 0.1; done'
  echo '/bin/busybox mount -t ext4 -o rw /dev/vda /newroot || exec /bin/busybox sh'
  echo '/bin/busybox umount /proc'
  echo '/bin/busybox umount /dev'
  echo 'exec /bin/busybox switch_root /newroot /sbin/init'
} >initrd/init
chmod 0755 initrd/init
(cd initrd && find . | cpio -o -H newc --quiet | gzip -1 >../initrd.gz)

# 7. Disk image.
log "base.qcow2"
ROOT_MB=$(du -sm "$ROOTFS" | cut -f1)
mkfs.ext4 -q -F -L lbha-guest -d "$ROOTFS" base.img "$((ROOT_MB + 512))M" >&2
qemu-img convert -O qcow2 base.img base.qcow2
rm -f base.img
printf '%s\n' "$KREL" >kernel-release

rm -rf "$OUT.new"
mkdir -p "$OUT.new"
mv vmlinux initrd.gz base.qcow2 kernel-release "$OUT.new/"
python3 - "$OUT.new/manifest.json" <<EOF
import json, sys
json.dump({
    "recipe": "$RECIPE_HASH",
    "suite": "$SUITE",
    "mirror": "$MIRROR",
    "kernel_package": "$KPKG",
    "kernel_version": "$KVERSION",
    "kernel_release": "$KREL",
    "packages": "$GUEST_PACKAGES".split(","),
    "modules": len(open("$WORK/modules.txt").read().split()),
    "rootfs_mb": $ROOT_MB,
    "build_seconds": $SECONDS,
}, open(sys.argv[1], "w"), indent=2)
EOF
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
cd /
rm -rf "$WORK"
log "done in ${SECONDS}s: $OUT ($(du -sh "$OUT" | cut -f1))"
printf '%s\n' "$OUT"
