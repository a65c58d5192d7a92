#!/usr/bin/env node
// Benchmark of the iptables-save parser (dist/, so run `npm run build` first):
//   node bench/iptables-parse.js [RULES]        (default 100000)
//   node bench/iptables-parse.js --cold [N] [PARSER.js ...]   (N first parses of small corpus dumps, see coldRuns)
// Generates a kube-proxy style dump (bench/gen-kube-proxy.ts, deterministic) into a temp file and measures, each in
// a fresh node process: reading the file only (the baseline), then reading and parsing it (first parse: wall and
// CPU time, peak RSS, heap kept by the model; then the best of 5 warm parses). The same for the largest corpus dump,
// tum-net-2013. As root, it also times the real `iptables-nft-restore --test` on the generated file inside a fresh
// network namespace (ldi-bench-<pid>), for comparison.
//
// Figures (node 20.20, 2 shared cores at load ~5.8 while other engineers ran builds: CPU is the steadier column;
// two runs each, before = parser of 8905878, after = the rewrite of 5789fb5..3a25814):
//   kube-proxy 100k  first parse  1259/1069 ms wall, 604/583 ms CPU  ->  849/889 ms wall, 423/459 ms CPU
//                    warm parse   414/368 ms                        ->  287/217 ms
//                    parse adds   82/84 MB RSS                      ->  69/68 MB
//                    model kept   42.0 MB (420 B/rule)              ->  31.9 MB (319 B/rule)
//   tum-net-2013     first parse  50/52 ms wall, 49/43 ms CPU       ->  180/66 ms wall, 72/62 ms CPU (worse: see below)
//                    warm parse   14/22 ms (best of 5)              ->  30/33 ms (fully optimised, 8th parse: 6-12 ms vs 12-26)
//                    model kept   1.9 MB                            ->  1.7-1.9 MB
// Where the kube-proxy parse goes now (first parse): ~60 ms the 34k chain declarations (mostly JIT warm-up), ~100 ms
// the first ~10k rules before TurboFan has compiled parseRule, ~1.7 us a rule after, GC ~15%. On a small dump the
// rewrite's extra small functions cost more TurboFan compile time (CPU on the compiler thread) than they save before
// the parse ends: tum-net's single cold parse is ~15-20 ms slower, while every later parse is ~2x faster.
//
// First parse of small dumps (--cold 21, medians, load ~4.5; pre-rewrite 900d1fe / 3a25814 / 6dfa85c):
//   tum-net-2013   33.3 / 43.1 / 40.6 ms wall, 43.8 / 65.2 / 57.5 ms CPU
//   medium-company 10.6 / 11.8 / 12.8 ms wall, 10.3 / 13.8 / 12.7 ms CPU
//   home-user       5.7 /  9.3 /  6.0 ms wall,  6.6 /  9.6 /  6.9 ms CPU
//   sargon          4.0 /  4.7 /  4.0 ms wall,  4.9 /  5.7 /  4.8 ms CPU
// What a first parse of tum-net spends (node --trace-opt, --log-function-events): lazy compilation of the parser's
// functions (parse + bytecode) ~3-4 ms in all, not the ~15 ms a sampling profile blames on moduleOption (samples
// of a main thread that a loaded machine preempts). The rest of the gap is TurboFan on the compiler thread:
// parseRule and command are marked part-way through and finish compiling after the parse has ended (pure cost
// for a dump this size); split and addrMatch are compiled and used. Helpers of 81 bytecodes or less are optimised
// at their first budget tick (--max-bytecode-size-for-early-opt): turning that off saved ~3 ms CPU, within noise.
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const PARSER = join(ROOT, 'dist', 'snapshot', 'parsers', 'iptables-save.js')
const TUM = join(ROOT, '..', 'shared', 'corpus', 'iptables-save', 'tum-net-2013.iptables-save')
const CORPUS = join(ROOT, '..', 'shared', 'corpus', 'iptables-save')
const cold = process.argv[2] === '--cold'
const rules = cold ? 0 : Number(process.argv[2] ?? 100_000)

if (!existsSync(PARSER)) {
  console.error(`bench/iptables-parse.js: ${PARSER} is missing; run \`npm run build\` first`)
  process.exit(2)
}

/** Loads bench/gen-kube-proxy.ts and the bench/kube-common.ts it imports by transpiling them with the project's TypeScript. */
async function loadGenerator() {
  const ts = (await import('typescript')).default
  const dir = mkdtempSync(join(tmpdir(), 'ldi-bench-gen-'))
  try {
    for (const name of ['gen-kube-proxy', 'kube-common']) {
      const src = readFileSync(join(ROOT, 'bench', `${name}.ts`), 'utf8')
      const js = ts.transpileModule(src, {compilerOptions: {module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022}}).outputText
      writeFileSync(join(dir, `${name}.js`), js)
    }
    writeFileSync(join(dir, 'package.json'), '{"type": "module"}')
    return await import(pathToFileURL(join(dir, 'gen-kube-proxy.js')).href)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/** Runs `code` in a fresh node process and returns the JSON it prints. */
function child(code, file) {
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', code, file], {encoding: 'utf8', maxBuffer: 1 << 20})
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`)
  return JSON.parse(r.stdout)
}

const BASELINE = `
import {readFileSync} from 'node:fs'
const text = readFileSync(process.argv[1], 'utf8')
console.log(JSON.stringify({chars: text.length, maxRssMB: process.resourceUsage().maxRSS / 1024}))
`
const PARSE = `
import {readFileSync} from 'node:fs'
const {parseIptablesSave} = await import(${JSON.stringify(pathToFileURL(PARSER).href)})
const text = readFileSync(process.argv[1], 'utf8')
gc()
const heap0 = process.memoryUsage().heapUsed
const cpu0 = process.cpuUsage()
const t0 = performance.now()
let rs = parseIptablesSave(text, 'bench.iptables-save', 4)
const wall = performance.now() - t0
const cpu = process.cpuUsage(cpu0)
const maxRssMB = process.resourceUsage().maxRSS / 1024
gc()
const keptMB = (process.memoryUsage().heapUsed - heap0) / 1e6
let chains = 0
for (const t of rs.tables.values()) chains += t.chains.size
const ruleCount = rs.ruleCount
rs = undefined
const warm = []
for (let i = 0; i < 5; i++) {
  const t = performance.now()
  rs = parseIptablesSave(text, 'bench.iptables-save', 4)
  warm.push(performance.now() - t)
  rs = undefined
}
console.log(JSON.stringify({ruleCount, chains, wallMs: wall, cpuMs: (cpu.user + cpu.system) / 1000, maxRssMB, keptMB, warmBestMs: Math.min(...warm)}))
`

// --cold: the first parse of small corpus dumps, where compiling the parser costs more than running it
const COLD = `
import {readFileSync} from 'node:fs'
import {pathToFileURL} from 'node:url'
const text = readFileSync(process.argv[1], 'utf8')
const {parseIptablesSave} = await import(pathToFileURL(process.argv[2]).href)
const cpu0 = process.cpuUsage()
const t0 = performance.now()
parseIptablesSave(text, 'bench.iptables-save', 4)
const wallMs = performance.now() - t0
const cpu = process.cpuUsage(cpu0)
console.log(JSON.stringify({wallMs, cpuMs: (cpu.user + cpu.system) / 1000}))
`

/** N first parses of each dump in a fresh process per parse, the builds taking turns; medians. */
function coldRuns(n, parsers) {
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
  for (const name of ['tum-net-2013', 'medium-company', 'home-user', 'sargon']) {
    const file = join(CORPUS, `${name}.iptables-save`)
    if (!existsSync(file)) continue
    const runs = parsers.map(() => [])
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < parsers.length; k++) {
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', COLD, file, parsers[k]], {encoding: 'utf8'})
        if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`)
        runs[k].push(JSON.parse(r.stdout))
      }
    }
    for (let k = 0; k < parsers.length; k++) {
      const wall = median(runs[k].map((r) => r.wallMs))
      const cpu = median(runs[k].map((r) => r.cpuMs))
      console.log(`${name.padEnd(16)} first parse ${wall.toFixed(1).padStart(6)} ms wall, ${cpu.toFixed(1).padStart(6)} ms CPU (median of ${n})  ${parsers[k]}`)
    }
  }
}

if (cold) {
  // node bench/iptables-parse.js --cold [N] [PARSER.js ...]: other builds of the parser (e.g. an older commit's
  // dist/snapshot/parsers/iptables-save.js, next to a copy of its dist/model) to compare with, in alternation
  const n = Number(process.argv[3] ?? 21)
  const parsers = process.argv.slice(4)
  console.log(`node ${process.version}, ${new Date().toISOString()}, load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  coldRuns(n, parsers.length > 0 ? parsers : [PARSER])
  process.exit(0)
}

function measure(label, file) {
  const base = child(BASELINE, file)
  const p = child(PARSE, file)
  console.log(`${label}: ${p.ruleCount} rules, ${p.chains} chains, ${(base.chars / 1e6).toFixed(1)} MB of text`)
  console.log(`  first parse   ${p.wallMs.toFixed(0)} ms wall, ${p.cpuMs.toFixed(0)} ms CPU (all threads, GC included)`)
  console.log(`  warm parse    ${p.warmBestMs.toFixed(0)} ms (best of 5)`)
  console.log(`  peak RSS      ${p.maxRssMB.toFixed(0)} MB (node reading the file alone: ${base.maxRssMB.toFixed(0)} MB; parse adds ${(p.maxRssMB - base.maxRssMB).toFixed(0)} MB)`)
  console.log(`  model kept    ${p.keptMB.toFixed(1)} MB of heap (${((p.keptMB * 1e6) / p.ruleCount).toFixed(0)} bytes per rule)`)
  return p
}

function nftRestoreTest(file) {
  if (process.getuid?.() !== 0) return 'skipped: not root'
  for (const bin of ['ip', 'iptables-nft-restore', '/usr/bin/time']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `skipped: ${bin} is not installed`
  }
  const ns = `ldi-bench-${process.pid}`
  execFileSync('ip', ['netns', 'add', ns])
  try {
    const r = spawnSync('/usr/bin/time', ['-f', '%e %M', 'ip', 'netns', 'exec', ns, 'iptables-nft-restore', '--test', file], {encoding: 'utf8'})
    const last = r.stderr.trim().split('\n').at(-1) ?? ''
    const [secs, kb] = last.split(' ').map(Number)
    if (r.status !== 0 || !Number.isFinite(secs)) return `failed (exit ${r.status}): ${r.stderr.trim().slice(0, 300)}`
    return `${(secs * 1000).toFixed(0)} ms wall, peak RSS ${(kb / 1024).toFixed(0)} MB`
  } finally {
    spawnSync('ip', ['netns', 'del', ns])
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ldi-bench-'))
try {
  const {generateKubeProxyDump} = await loadGenerator()
  const file = join(dir, `kube-proxy-${rules}.iptables-save`)
  writeFileSync(file, generateKubeProxyDump(rules))
  console.log(`node ${process.version}, ${new Date().toISOString()}, load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  measure(`generated kube-proxy dump (${file})`, file)
  console.log(`  iptables-nft-restore --test on the same file: ${nftRestoreTest(file)}`)
  if (existsSync(TUM)) measure('tum-net-2013.iptables-save (shared corpus)', TUM)
} finally {
  rmSync(dir, {recursive: true, force: true})
}
