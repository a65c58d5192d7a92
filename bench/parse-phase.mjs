#!/usr/bin/env node
// The iptables-save parse as `check` runs it (same V8 flags as bin/run.js, one parse in a fresh process), in figures:
//   node --expose-gc bench/parse-phase.mjs [FILE] [ROOT]
// prints: parse wall ms, parse CPU ms (user+sys of the process during the parse), of which on the main thread
// (`main`) and on V8's other threads (`bg`: TurboFan, parallel GC; Linux /proc schedstat, 0 elsewhere), GC ms during
// the parse (scavenges and mark-compacts, from perf_hooks), heap the model keeps (MB, after a full GC), peak RSS
// (MB). ROOT is the package whose dist/ is loaded (default: this one), so that two builds can be compared run by run.
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
