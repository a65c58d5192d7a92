#!/usr/bin/env bash
# Differential check of a performance change: the current build against REV (default: the last commit before
# this session's optimisations, 616214d), on inputs neither was tuned for. Builds REV in a temporary worktree,
# then compares, byte for byte:
#   - the parsed model (or error) of every iptables-save fixture and corpus dump and of mutations of them;
#   - check's report on mutated copies of every fixtures/rules case (rules deleted, duplicated, borrowed from
#     other fixtures, addresses, ports and verdicts changed), SEEDS seeds;
#   - check's report on generated kube-proxy dumps with rules inserted that split the backends into classes.
#   npm run build && bash bench/diff-check/run.sh [REV]      (needs python3; prints the number of differing files)
set -eu
rev=${1:-616214d}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/ldi-diff-XXXX)
trap 'git -C "$root" worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$root" worktree add -f "$work/base" "$rev" >/dev/null 2>&1
ln -s "$root/node_modules" "$work/base/node_modules"
(cd "$work/base" && npx tsc -p tsconfig.build.json >/dev/null)
mkdir -p "$work/pin"
for f in $(find "$root/fixtures" -name 'iptables-save*' -o -name '*.iptables-save' -o -name 'ip6tables-save*' | grep -v '\.json$') "$root"/../shared/corpus/iptables-save/*save; do
  cp "$f" "$work/pin/$(echo "$f" | sed "s#^$root/##; s#/#_#g")"
done
node "$here/parse-dump.mjs" "$work/base/dist" "$work/parse-base" "$work/pin"/*
node "$here/parse-dump.mjs" "$root/dist" "$work/parse-now" "$work/pin"/*
echo "parsed models: $(ls "$work/parse-base" | wc -l) inputs, $(diff -rq "$work/parse-base" "$work/parse-now" | wc -l) differ"
for s in $(seq 1 "${SEEDS:-4}"); do
  OUT="$work/fx" SEED=$s PER=6 python3 "$here/mutate-fixtures.py" >/dev/null
  node "$here/run-checks.mjs" "$work/base/dist" "$work/fx" "$work/fx-base-$s"
  node "$here/run-checks.mjs" "$root/dist" "$work/fx" "$work/fx-now-$s"
  echo "mutated fixtures, seed $s: $(ls "$work/fx-base-$s" | wc -l) cases, $(diff -rq "$work/fx-base-$s" "$work/fx-now-$s" | wc -l) differ"
  (cd "$root" && OUT="$work/kx" SEED=$s N=10 npx tsx "$here/mutate-kube.mts" 2>/dev/null)
  node "$here/run-checks.mjs" "$work/base/dist" "$work/kx" "$work/kx-base-$s"
  node "$here/run-checks.mjs" "$root/dist" "$work/kx" "$work/kx-now-$s"
  echo "mutated kube dumps, seed $s: $(ls "$work/kx-base-$s" | wc -l) cases, $(diff -rq "$work/kx-base-$s" "$work/kx-now-$s" | wc -l) differ"
done
