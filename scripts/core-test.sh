#!/usr/bin/env bash
# Test the collection under one ansible-core minor release: `ansible-test sanity` and the unit
# tests, on a copy of the collection laid out as ansible_collections/lbha/cluster, in a venv of
# that release only (nothing it installs touches the project venv).
#
# Usage: scripts/core-test.sh MINOR [sanity|units|all]        e.g. scripts/core-test.sh 2.16
#
#   2.16 - 2.19  the host's Python (3.11 on Debian 12); venv in .cache/core/MINOR
#   2.20 and up  need Python 3.12 or newer on the controller: they run in a Debian 13 root
#                (scripts/build-chroot.sh trixie, Python 3.13), as users on Debian 13 run them
#
# ansible-test fetches a pip bootstrap script from its own file host, which is not reachable
# from every machine; an offline stand-in with the same contract (run as __main__ with pip's
# install arguments) is put in its cache first.
# The unit tests write JUnit XML to build/reports/units-MINOR.xml (read by scripts/test-summary.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MINOR=${1:?usage: $0 MINOR [sanity|units|all]}
WHAT=${2:-all}
PYTEST_PIN=$(grep -E '^pytest==' requirements.txt)
HYPOTHESIS_PIN=$(grep -E '^hypothesis==' requirements.txt || true)
WORK=$ROOT/build/core-$MINOR
DEST=$WORK/ansible_collections/lbha/cluster
REPORTS=$ROOT/build/reports

log() { printf 'core-test %s: %s\n' "$MINOR" "$*" >&2; }

needs_new_python() {  # ansible-core 2.20 and later want Python >= 3.12 on the controller
  local major=${MINOR%%.*} minor=${MINOR#*.}
  [ "$major" -gt 2 ] || [ "$minor" -ge 20 ]
}

if needs_new_python; then
  CHROOT=$(scripts/build-chroot.sh trixie | tail -n 1)
  VENV=/opt/core-$MINOR
  INNER_WORK=/work
  mounts=()
  cleanup() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
  }
  trap cleanup EXIT
  bind() {  # bind SRC at DEST inside the chroot
    mkdir -p "$CHROOT$2"
    mount --bind "$1" "$CHROOT$2"
    mounts+=("$CHROOT$2")
  }
  # The host's CA bundle: package registries may sit behind a TLS proxy with a local CA.
  # pip.conf, not only the environment: ansible-test runs pip with an environment of its own.
  cp /etc/ssl/certs/ca-certificates.crt "$CHROOT/etc/ssl/certs/host-ca.crt"
  printf '[global]\ncert = /etc/ssl/certs/host-ca.crt\ndisable-pip-version-check = true\n' > "$CHROOT/etc/pip.conf"
  cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
  run() {
    chroot "$CHROOT" /usr/bin/env -i HOME=/root PATH="$VENV/bin:/usr/sbin:/usr/bin:/sbin:/bin" LANG=C.UTF-8 \
      PIP_CERT=/etc/ssl/certs/host-ca.crt SSL_CERT_FILE=/etc/ssl/certs/host-ca.crt \
      PIP_DISABLE_PIP_VERSION_CHECK=1 "$@"
  }
  in_work() { run /bin/sh -c "cd '$INNER_WORK/ansible_collections/lbha/cluster' && $*"; }
else
  CHROOT=""
  VENV=$ROOT/.cache/core/$MINOR
  INNER_WORK=$WORK
  run() { env PATH="$VENV/bin:/usr/sbin:/sbin:$PATH" "$@"; }
  in_work() { (cd "$DEST" && run /bin/sh -c "$*"); }
fi

# 1. the copy: tracked files plus new, not-ignored ones, exactly what a commit would hold
rm -rf "$WORK"
mkdir -p "$DEST" "$REPORTS"
git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -c 2>/dev/null | tar -x -C "$DEST"
(cd "$DEST" && git init -q . && git add -A >/dev/null 2>&1)   # ansible-test lists files through git
[ -n "$CHROOT" ] && bind "$WORK" "$INNER_WORK" && bind /proc /proc && bind /dev /dev

# 2. the venv of this release (latest patch of MINOR), rebuilt only when the release is missing
if ! run "$VENV/bin/ansible-test" --version 2>/dev/null | grep -q "ansible-test version $MINOR\."; then
  log "creating $VENV (ansible-core $MINOR.*)"
  run rm -rf "$VENV"
  run python3 -m venv "$VENV"
  run "$VENV/bin/pip" install -q "ansible-core==$MINOR.*" "$PYTEST_PIN" ${HYPOTHESIS_PIN:+"$HYPOTHESIS_PIN"}
fi
PYV=$(run "$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
log "$(run "$VENV/bin/ansible-test" --version) on Python $PYV${CHROOT:+ (Debian 13 root $CHROOT)}"

# 3. the offline stand-in for pip's bootstrap script, in the cache ansible-test looks in
REQ_PY=$(run "$VENV/bin/python" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py"))')
PIP_VERSION=$(run sed -n "s/.*pip='\([0-9.]*\)'.*/\1/p" "$REQ_PY" | head -n 1)
if [ -n "$CHROOT" ]; then STUB_HOME=$CHROOT/root; else STUB_HOME=$HOME; fi
STUB_PATH=$STUB_HOME/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py
if [ ! -s "$STUB_PATH" ]; then
  mkdir -p "$(dirname "$STUB_PATH")"
  cat > "$STUB_PATH" <<'PY'
# Offline stand-in for pip's get-pip.py: bootstrap pip from the interpreter's bundled
# wheel, then install what ansible-test asked for from the configured index.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if args and args[0] == "install":
    args = args[1:]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
PY
fi

# 4. the tests
if [ "$WHAT" = sanity ] || [ "$WHAT" = all ]; then
  log "ansible-test sanity"
  in_work "ansible-test sanity --local --python $PYV --requirements --color no"
fi
if [ "$WHAT" = units ] || [ "$WHAT" = all ]; then
  log "unit tests"
  in_work "ANSIBLE_COLLECTIONS_PATH='$INNER_WORK' python -m pytest -q -rs -p no:cacheprovider \
    --junitxml='$INNER_WORK/units.xml' tests/unit"
  cp "$WORK/units.xml" "$REPORTS/units-$MINOR.xml"
fi
log "passed"
