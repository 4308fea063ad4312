#!/usr/bin/env bash
# `make mutation`: mutmut over chain/'s consensus and market modules ([tool.mutmut] in
# pyproject.toml), each mutant against the tests of tests/unit/chain that reach the mutated
# function, then the score per module with the equivalent mutants set aside (score.py).
#
# mutmut writes its mutants beside the source, so it runs in a copy of the working tree (tracked
# and untracked files, as they are now) under a temp dir: the tree being edited is never touched.
#   MODULES="pow encoding"  only these modules of chain/ (default: all of only_mutate)
#   JOBS=2                  mutants tested at once
#   KEEP=1                  keep the copy, to `mutmut show NAME` or `mutmut browse` there
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
work=$(mktemp -d "${TMPDIR:-/tmp}/neuro-mutation.XXXXXX")
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "copy kept in $work"; fi

cd "$root"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$work"

patterns=()
for module in ${MODULES:-}; do patterns+=("chain.${module}.*"); done

cd "$work"
# Workers forked from mutmut's main process, which ran the whole suite for its stats, inherit
# LevelDB's "background thread started" flag without the thread: a store test then waits forever
# on a compaction and the mutant is counted a timeout (detected) ten minutes later. A fork server
# that never ran a test keeps the workers clean.
grep -q '^process_isolation' pyproject.toml \
  || sed -i 's/^\[tool\.mutmut\]$/&\nprocess_isolation = "forkserver"/' pyproject.toml
start=$(date +%s)
# mutmut's exit status is not the verdict (it exits 0 with survivors): score.py reads the results
if ! "$py" -m mutmut run --max-children "${JOBS:-2}" ${patterns[@]+"${patterns[@]}"} > mutmut.log 2>&1; then
  tail -c 3000 mutmut.log; echo; echo "mutmut failed (log: $work/mutmut.log)"; exit 2
fi
echo "mutation run: $(( $(date +%s) - start )) s"
"$py" -m mutmut results --all true > results.txt
"$py" "$root/tests/mutation/score.py" results.txt "$root/tests/mutation/equivalents.txt" ${MODULES:-}
