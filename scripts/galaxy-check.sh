#!/usr/bin/env bash
# What users install is what we test: build the Galaxy tarball, run Galaxy's own import check on
# it (galaxy-importer, the code Galaxy runs on every upload, with ansible-lint on), lint the
# collection's docs as docs.ansible.com renders them (antsibull-docs), install the tarball into
# an empty collections path and use the installed copy only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
OUT=$ROOT/build/galaxy
rm -rf "$OUT"
mkdir -p "$OUT/dist" "$OUT/collections" "$OUT/importer"
export PATH=$VENV/bin:$PATH
ansible-galaxy collection build --force --output-path "$OUT/dist" . >/dev/null
TARBALL=$(ls "$OUT"/dist/lbha-cluster-*.tar.gz)
echo "built $(basename "$TARBALL") ($(du -h "$TARBALL" | cut -f1))"

# Development files must not ship.
if tar -tzf "$TARBALL" | grep -E '^(\.venv|\.cache|\.ci|build|tests/output|molecule|scripts)/' ; then
  echo "FAIL: development files in the tarball" >&2; exit 1
fi

# 1. Galaxy's import check. ansible-test is off (it runs in `make sanity` on several
#    ansible-core releases); any line that says ERROR fails, warnings are shown.
cat > "$OUT/importer/galaxy-importer.cfg" <<'CFG'
[galaxy-importer]
RUN_ANSIBLE_TEST = False
RUN_ANSIBLE_LINT = True
RUN_FLAKE8 = False
LOG_LEVEL_MAIN = INFO
CFG
( cd "$OUT/importer" && GALAXY_IMPORTER_CONFIG=$OUT/importer/galaxy-importer.cfg \
    python -m galaxy_importer.main "$TARBALL" ) > "$OUT/importer/import.log" 2>&1 || true
grep -vE '^Loading ' "$OUT/importer/import.log" | sed 's/^/galaxy-importer: /'
if grep -q 'ERROR' "$OUT/importer/import.log" || ! grep -q 'Importer processing completed successfully' "$OUT/importer/import.log"; then
  echo "FAIL: galaxy-importer refused the tarball or reported an ERROR (log: $OUT/importer/import.log)" >&2
  exit 1
fi
echo "galaxy-importer: 0 errors"

# 2. The docs as docs.ansible.com would render them: every plugin's DOCUMENTATION, EXAMPLES and
#    RETURN, the role argument specs, links and markup.
LINT=$OUT/lint/ansible_collections/lbha
mkdir -p "$LINT"
ln -sfn "$ROOT" "$LINT/cluster"
( cd "$LINT/cluster" && ANSIBLE_COLLECTIONS_PATH=$OUT/lint antsibull-docs lint-collection-docs --plugin-docs . )
echo "antsibull-docs lint-collection-docs --plugin-docs: clean"

# 3. The installed tarball. --no-deps: the collection has no dependencies; the test tools come from the `ansible`
#    package in the venv, Galaxy itself may be unreachable here.
export ANSIBLE_COLLECTIONS_PATH=$OUT/collections
ansible-galaxy collection install --force --no-deps -p "$OUT/collections" "$TARBALL" >/dev/null
INSTALLED=$OUT/collections/ansible_collections/lbha/cluster
test -f "$INSTALLED/MANIFEST.json"

# Only the installed copy, plus the venv's bundled collections, may be found.
cd "$OUT"

modules=$(ansible-doc -l lbha.cluster -t module --json | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin))))')
expected=$(find "$INSTALLED/plugins/modules" -maxdepth 1 -name '*.py' ! -name '__init__.py' -printf 'lbha.cluster.%f\n' | sed 's/\.py$//' | sort | tr '\n' ' ' | sed 's/ $//')
echo "ansible-doc -l lbha.cluster: $modules"
if [ "$modules" != "$expected" ]; then
  echo "FAIL: ansible-doc lists '$modules', the tarball has '$expected'" >&2; exit 1
fi
for m in $modules; do
  ansible-doc -t module "$m" >/dev/null
done
filters=$(ansible-doc -l lbha.cluster -t filter --json | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin))))')
echo "ansible-doc -l -t filter lbha.cluster: $filters"
for f in $filters; do
  ansible-doc -t filter "$f" >/dev/null
done
for r in "$INSTALLED"/roles/*/; do
  r=$(basename "$r")
  ansible-doc -t role "lbha.cluster.$r" >/dev/null
  test -s "$INSTALLED/roles/$r/README.md" || { echo "FAIL: role $r has no README.md" >&2; exit 1; }
  echo "ansible-doc ok: role lbha.cluster.$r"
done
for p in "$INSTALLED"/playbooks/*.yml; do
  p=$(basename "$p" .yml)
  ansible-playbook -i localhost, --syntax-check "lbha.cluster.$p" >/dev/null
  echo "syntax ok: lbha.cluster.$p"
done
echo "galaxy check: OK"
