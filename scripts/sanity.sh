#!/usr/bin/env bash
# Run `ansible-test sanity` on a copy of the collection laid out as
# ansible_collections/lbha/cluster, in a venv of its own so that the requirements
# ansible-test installs never touch the project venv.
#
# ansible-test fetches a pip bootstrap script from its own file host, which is not
# reachable from every machine; an offline stand-in with the same contract (run as
# __main__ with pip's install arguments) is put in its cache first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
CORE_VERSION=$(sed -n 's/^ansible-core==//p' requirements.txt)
SVENV=$ROOT/.cache/sanity-venv
WORK=$ROOT/build/sanity
DEST=$WORK/ansible_collections/lbha/cluster

if [ ! -x "$SVENV/bin/ansible-test" ] || ! "$SVENV/bin/ansible-test" --version 2>/dev/null | grep -q "$CORE_VERSION"; then
  rm -rf "$SVENV"
  "$PYTHON" -m venv "$SVENV"
  "$SVENV/bin/pip" install -q --disable-pip-version-check "ansible-core==$CORE_VERSION"
fi

REQ_PY=$("$SVENV/bin/python" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py"))')
PIP_VERSION=$(sed -n "s/.*pip='\([0-9.]*\)'.*/\1/p" "$REQ_PY" | head -n 1)
CACHE="$HOME/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py"
if [ ! -s "$CACHE" ]; then
  mkdir -p "$(dirname "$CACHE")"
  cat > "$CACHE" <<'PY'
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

rm -rf "$WORK"
mkdir -p "$DEST"
# Tracked files plus new, not-ignored ones: exactly what a commit would hold.
git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -c 2>/dev/null | tar -x -C "$DEST"
cd "$DEST"
git init -q . && git add -A >/dev/null 2>&1   # ansible-test lists files through git when present
"$SVENV/bin/ansible-test" sanity --local --python 3.11 --requirements --color no "$@"
