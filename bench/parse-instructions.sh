#!/usr/bin/env bash
# Instructions executed by one iptables-save parse (bench/parse-phase.mjs) under valgrind's callgrind: a figure that
# the load of this shared 2-core machine does not change (wall and CPU time do, by +-20% at load 20), by category
# (JIT-compiled JavaScript, GC, TurboFan, builtins) and by parser function (from V8's --perf-basic-prof map).
#
#   npm run build && bash bench/parse-instructions.sh [FILE] [ROOT]      (~3.5 min for kube-proxy 100k)
#
# ROOT is the package whose dist/ is parsed with (default: this one). Startup alone is ~0.71 G instructions (an empty
# dump). The scavenges are deterministic, the concurrent marking of a mark-compact is not (it runs while the main
# thread does): compare the jit, builtins, turbofan lines and the scavenger's functions, not the gc total.
# Needs valgrind and python3.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
file=${1:-/tmp/kp100k.iptables-save}
root=${2:-$here/..}
out=$(mktemp /tmp/parse-instructions-XXXXXX)
trap 'rm -f "$out" "$out.jit"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out" node --perf-basic-prof --logfile=/dev/null --no-logfile-per-isolate --expose-gc "$here/parse-phase.mjs" "$file" "$root" 2>&1 | grep -E '^\{|refs'
pid=$(grep -m1 -oE '\(PID [0-9]+' "$out" | grep -oE '[0-9]+$' || true)
[ -z "$pid" ] && pid=$(grep -m1 -oE '^pid: [0-9]+' "$out" | grep -oE '[0-9]+$')
trap 'rm -f "$out" "$out.jit" "/tmp/perf-$pid.map"' EXIT
callgrind_annotate --threshold=100 "$out" 2>/dev/null | grep -v 'PROGRAM TOTALS' | grep -E '^ *[0-9,]+ \(' |
  sed -E 's/^ *([0-9,]+) \([^)]*\) +/\1\t/' | awk -F'\t' '{gsub(",", "", $1); n = $1; f = $2; c = "other"
    if (f ~ /^\?\?\?:0x/) c = "jit"
    else if (f ~ /compiler::|Pipeline|InstructionSelector|RegisterAllocat|LiveRange|GraphReducer|CodeGenerator|Assembler/) c = "turbofan"
    else if (f ~ /Scaveng|Marking|MarkCompact|Sweep|Evacuat|Heap::|heap::|RememberedSet|SlotSet|Pretenur|BodyDescriptor|SizeFromMap|NewSpace|PagedSpace/) c = "gc"
    else if (f ~ /Builtins_/) c = "builtins"
    s[c] += n; t += n} END {for (k in s) printf "%-9s %7.0f M  %4.1f%%\n", k, s[k] / 1e6, 100 * s[k] / t}' | sort -k2 -rn
callgrind_annotate --threshold=100 "$out" 2>/dev/null | grep -E '^ *[0-9,]+ \(.*\?\?\?:0x' |
  sed -E 's/^ *([0-9,]+) .*\?\?\?:(0x[0-9a-f]+).*/\1 \2/' | tr -d , > "$out.jit" || true
python3 - "$out.jit" "/tmp/perf-$pid.map" <<'PY'
import bisect, re, sys
m = []
for line in open(sys.argv[2]):
    a, size, name = line.rstrip('\n').split(' ', 2)
    m.append((int(a, 16), int(size, 16), name))
m.sort()
starts = [x[0] for x in m]
by = {}
for line in open(sys.argv[1]):
    n, a = line.split()
    n, a = int(n), int(a, 16)
    i = bisect.bisect_right(starts, a) - 1
    name = re.sub(r'file://\S*/dist/', '', m[i][2]) if i >= 0 and m[i][0] <= a < m[i][0] + m[i][1] else '?'
    by[name] = by.get(name, 0) + n
for k, v in sorted(by.items(), key=lambda x: -x[1])[:15]:
    print(f'{v / 1e6:8.1f} M  {k[:100]}')
PY
