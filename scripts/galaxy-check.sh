#!/usr/bin/env bash
# What users install is what we test: build the Galaxy tarball, install it into an empty
# collections path, and use the installed copy only.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
OUT=$PWD/build/galaxy
rm -rf "$OUT"
mkdir -p "$OUT/dist" "$OUT/collections"
"$VENV/bin/ansible-galaxy" collection build --force --output-path "$OUT/dist" . >/dev/null
TARBALL=$(ls "$OUT"/dist/lbha-cluster-*.tar.gz)
echo "built $(basename "$TARBALL") ($(du -h "$TARBALL" | cut -f1))"

# Development files must not ship.
if tar -tzf "$TARBALL" | grep -E '^(\.venv|\.cache|\.ci|build|tests/output|molecule|scripts)/' ; then
  echo "FAIL: development files in the tarball" >&2; exit 1
fi

# --no-deps: the dependencies (ansible.posix …) come from the `ansible` package in the venv,
# Galaxy itself may be unreachable here.
export ANSIBLE_COLLECTIONS_PATH=$OUT/collections
"$VENV/bin/ansible-galaxy" collection install --force --no-deps -p "$OUT/collections" "$TARBALL" >/dev/null
INSTALLED=$OUT/collections/ansible_collections/lbha/cluster
test -f "$INSTALLED/MANIFEST.json"

# Only the installed copy, plus the venv's bundled collections, may be found.
cd "$OUT"

modules=$("$OLDPWD/$VENV/bin/ansible-doc" -l lbha.cluster -t module --json | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin))))')
expected=$(find "$INSTALLED/plugins/modules" -maxdepth 1 -name '*.py' ! -name '__init__.py' -printf 'lbha.cluster.%f\n' | sed 's/\.py$//' | sort | tr '\n' ' ' | sed 's/ $//')
echo "ansible-doc -l lbha.cluster: $modules"
if [ "$modules" != "$expected" ]; then
  echo "FAIL: ansible-doc lists '$modules', the tarball has '$expected'" >&2; exit 1
fi
for m in $modules; do
  "$OLDPWD/$VENV/bin/ansible-doc" -t module "$m" >/dev/null
done
for r in "$INSTALLED"/roles/*/; do
  r=$(basename "$r")
  "$OLDPWD/$VENV/bin/ansible-doc" -t role "lbha.cluster.$r" >/dev/null
  echo "ansible-doc ok: role lbha.cluster.$r"
done
for p in "$INSTALLED"/playbooks/*.yml; do
  p=$(basename "$p" .yml)
  "$OLDPWD/$VENV/bin/ansible-playbook" -i localhost, --syntax-check "lbha.cluster.$p" >/dev/null
  echo "syntax ok: lbha.cluster.$p"
done
echo "galaxy check: OK"
