#!/usr/bin/env bash
# Golden outputs for performance work: runs the built CLI's `check --json` (and `trace --json` on the trace
# fixtures) over every rule fixture, every corpus dump and generated kube-proxy dumps, and writes one file per
# input into DIR. Run it before and after an optimisation and `diff -r` the two directories: a speed-up must
# not change a byte of what check prints.
#
#   npm run build && bash bench/golden.sh /tmp/golden-before
set -u
out=${1:?usage: golden.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
cli="node $root/bin/run.js"
mkdir -p "$out"
for d in "$root"/fixtures/rules/*/; do
  n=$(basename "$d")
  hosts=()
  for h in "$d"*/; do [ -d "$h" ] && hosts+=("$h"); done
  [ ${#hosts[@]} -eq 0 ] && continue
  $cli check --json --fail-on none "${hosts[@]}" > "$out/rules-$n.json" 2> "$out/rules-$n.err"
done
for f in "$root"/../shared/corpus/iptables-save/*save "$root"/fixtures/check-capture/*/ ; do
  [ -e "$f" ] || continue
  n=$(basename "$f")
  $cli check --json --fail-on none "$f" > "$out/corpus-$n.json" 2> "$out/corpus-$n.err"
done
gen=${GOLDEN_KUBE:-/tmp/golden-kube}
mkdir -p "$gen"
for r in 2000 10000 100000; do
  [ -f "$gen/k$r.iptables-save" ] || (cd "$root" && npx tsx -e "import {generateKubeProxyDump} from './bench/gen-kube-proxy.ts'; process.stdout.write(generateKubeProxyDump($r))" > "$gen/k$r.iptables-save")
  [ -f "$gen/kc$r.iptables-save" ] || (cd "$root" && npx tsx -e "import {generateKubeProxyDump} from './bench/gen-kube-proxy.ts'; process.stdout.write(generateKubeProxyDump($r, {comments: true, seed: 7}))" > "$gen/kc$r.iptables-save")
  $cli check --json --fail-on none "$gen/k$r.iptables-save" | sed "s#$gen#GEN#g" > "$out/kube-$r.json"
  $cli check --json --fail-on none "$gen/kc$r.iptables-save" | sed "s#$gen#GEN#g" > "$out/kubec-$r.json"
done
for d in "$root"/fixtures/nft/*/; do
  n=$(basename "$d")
  $cli check --json --fail-on none "$d" > "$out/nft-$n.json" 2> "$out/nft-$n.err"
done
for d in "$root"/fixtures/trace/*/; do
  n=$(basename "$d")
  vip=$(node -e "process.stdout.write(JSON.parse(require('fs').readFileSync('$d/expected.json','utf8')).vip||'')" 2>/dev/null)
  [ -n "$vip" ] || continue
  hosts=()
  for h in "$d"*/; do [ -d "$h" ] && hosts+=("$h"); done
  $cli trace --json --vip "$vip" "${hosts[@]}" > "$out/trace-$n.json" 2> "$out/trace-$n.err"
  $cli trace --json --fix --vip "$vip" "${hosts[@]}" > "$out/tracefix-$n.json" 2> "$out/tracefix-$n.err"
done
ls "$out" | wc -l
