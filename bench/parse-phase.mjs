#!/usr/bin/env node
// The iptables-save parse as `check` runs it (same V8 flags as bin/run.js, one parse in a fresh process), in figures:
//   node --expose-gc bench/parse-phase.mjs [FILE] [ROOT]
// prints: parse wall ms, parse CPU ms (user+sys of the process during the parse), of which on the main thread
// (`main`) and on V8's other threads (`bg`: TurboFan, parallel GC; Linux /proc schedstat, 0 elsewhere), GC ms during
// the parse (scavenges and mark-compacts, from perf_hooks), heap the model keeps (MB, after a full GC), peak RSS
// (MB). ROOT is the package whose dist/ is loaded (default: this one), so that two builds can be compared run by run.
//
// Figures (2026-11-22 01:49, load ~11, medians of 11 alternating runs; base = cca10e4, after = branch perf-parser):
//   kube-proxy 100k  cpu 333 -> 277 ms (main thread 188 -> 153, V8's other threads 137 -> 124), GC pauses (wall)
//                    258 -> 179 ms, scavenges 71 -> 62, model kept 31.8 -> 28.8 MB, peak RSS 101.8 -> 96.0 MB
//   tum-net-2013     cpu 62 -> 55 ms, model kept 1.39 -> 1.36 MB, peak RSS 54 MB both
// Under callgrind (bench/parse-instructions.sh, the same parse, instructions that do not depend on the load):
//   kube-proxy 100k  3.88 -> 3.56 G in all (startup 0.71 G), JIT-compiled code 1232 -> 982 M (split 310 -> 271,
//                    Tokens.is 135 -> <6, ChainIndex add+put 116 -> 12), TurboFan 440 -> 433 M; tum-net-2013
//                    1.134 -> 1.109 G.
// Where a first parse of kube-proxy 100k goes (of ~2.8 G): ~35% the parser's compiled code and ~14% the builtins it
// calls (indexOf, Sparkplug's property loads before TurboFan is done), ~30% GC (every object of the model is
// copied twice, semi-space then old space; ~600 k objects), ~15% TurboFan compiling the parser's hot functions.
import {readFileSync, readdirSync} from 'node:fs'
import {PerformanceObserver, performance} from 'node:perf_hooks'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import v8 from 'node:v8'

v8.setFlagsFromString('--semi-space-growth-factor=1 --max-inlined-bytecode-size-cumulative=300')
const file = process.argv[2] ?? '/tmp/kp100k.iptables-save'
const root = process.argv[3] ?? join(dirname(fileURLToPath(import.meta.url)), '..')
const {parseIptablesSave} = await import(pathToFileURL(join(root, 'dist/snapshot/parsers/iptables-save.js')).href)
let gcMs = 0
let gcN = 0
const obs = new PerformanceObserver((l) => {
  for (const e of l.getEntries()) {
    gcMs += e.duration
    gcN++
  }
})
obs.observe({entryTypes: ['gc']})
const text = readFileSync(file, 'utf8')
/** CPU ns per thread of this process (schedstat's first field), by thread id */
function threads() {
  const out = new Map()
  try {
    for (const t of readdirSync('/proc/self/task')) out.set(t, Number(readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0]))
  } catch {
    // not Linux
  }
  return out
}
global.gc?.()
const h0 = process.memoryUsage().heapUsed
const th0 = threads()
const c0 = process.cpuUsage()
const t0 = performance.now()
const rs = parseIptablesSave(text, file, 4)
const t1 = performance.now()
const c1 = process.cpuUsage(c0)
const th1 = threads()
let main = 0
let bg = 0
for (const [t, ns] of th1) {
  const d = (ns - (th0.get(t) ?? 0)) / 1e6
  if (t === String(process.pid)) main += d
  else bg += d
}
await new Promise((r) => setTimeout(r, 0))
const gcParse = gcMs
global.gc?.()
const h1 = process.memoryUsage().heapUsed
console.log(JSON.stringify({
  wall: +(t1 - t0).toFixed(1), cpu: +((c1.user + c1.system) / 1000).toFixed(1), main: +main.toFixed(1), bg: +bg.toFixed(1), gc: +gcParse.toFixed(1), gcN,
  modelMB: +((h1 - h0) / 1e6).toFixed(2), rssMB: +(process.resourceUsage().maxRSS / 1024).toFixed(1), rules: rs.ruleCount,
}))
