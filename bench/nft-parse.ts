// Benchmark: parsing `nft -j list ruleset` of a kube-proxy nftables-mode host (~68k rules, ~30 MB of JSON) against a
// bare JSON.parse of the same file. Targets (issue 7): parse time within 1.5x JSON.parse, peak RSS under 4x the
// file size.
//
//   npx tsx bench/nft-parse.ts [--rules 68000] [--runs 5]
//
// Each measurement runs in a fresh `node` process (no tsx in it: the parser is transpiled with the project's
// TypeScript into a temporary directory) that reads the file, collects garbage, resets the kernel's peak-RSS
// counter (/proc/self/clear_refs), then times one JSON.parse or one parseNftJson (cold: a CLI parses once) and
// reports VmHWM: the peak resident memory of the process while parsing, with the input text in memory, node itself
// included. Runs alternate JSON.parse / parseNftJson; the time ratio is taken per pair, on wall-clock time and on
// CPU time (user + system, all threads): on a shared machine the wall clock mostly measures the neighbours.
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import ts from 'typescript'
import {generateKubeProxyNft} from './nft-kube-gen.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SOURCES = ['src/model/ip.ts', 'src/model/source.ts', 'src/model/nft.ts', 'src/snapshot/parsers/json-items.ts', 'src/snapshot/parsers/nft-json.ts']

const CHILD = `
import {readFileSync, writeFileSync} from 'node:fs'
const [mode, file, parser] = process.argv.slice(2)
const {parseNftJson} = await import(parser)
let text = readFileSync(file, 'utf8')
globalThis.gc()
let reset = true
try { writeFileSync('/proc/self/clear_refs', '5') } catch { reset = false }
const rssBefore = process.memoryUsage().rss
const c0 = process.cpuUsage()
const t0 = performance.now()
const out = mode === 'json' ? JSON.parse(text) : parseNftJson(text, 'nft-ruleset.json')
const ms = performance.now() - t0
const cu = process.cpuUsage(c0)
const cpu = (cu.user + cu.system) / 1000
const hwm = Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
const size = mode === 'json' ? out.nftables.length : out.ruleCount
console.log(JSON.stringify({ms, cpu, hwm, rssBefore, reset, size}))
`

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const MB = (n: number): string => (n / 1048576).toFixed(1) + ' MB'

function main(): void {
  const rules = arg('--rules', 68000)
  const runs = arg('--runs', 7)
  const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-nft-bench-'))
  try {
    for (const src of SOURCES) {
      const out = ts.transpileModule(readFileSync(join(ROOT, src), 'utf8'), {
        compilerOptions: {module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022},
      }).outputText
      const dest = join(dir, src.replace(/\.ts$/, '.js'))
      mkdirSync(dirname(dest), {recursive: true})
      writeFileSync(dest, out)
    }
    writeFileSync(join(dir, 'package.json'), '{"type": "module"}')
    writeFileSync(join(dir, 'child.mjs'), CHILD)
    const parser = join(dir, 'src/snapshot/parsers/nft-json.js')

    const g0 = performance.now()
    const gen = generateKubeProxyNft(rules)
    const genMs = performance.now() - g0
    const file = join(dir, 'nft-ruleset.json')
    writeFileSync(file, gen.json)
    const size = Buffer.byteLength(gen.json)
    console.log(`kube-proxy nftables-mode ruleset: ${gen.rules} rules, ${gen.services} services, ${gen.endpoints} endpoints, ${MB(size)} of JSON (generated in ${genMs.toFixed(0)} ms)`)

    type Run = {ms: number; cpu: number; hwm: number; rssBefore: number; reset: boolean; size: number}
    const results: Record<'json' | 'parse', Run[]> = {json: [], parse: []}
    for (let r = 0; r < runs; r++) {
      for (const mode of ['json', 'parse'] as const) {
        const p = spawnSync(process.execPath, ['--expose-gc', join(dir, 'child.mjs'), mode, file, parser], {encoding: 'utf8'})
        if (p.status !== 0) throw new Error(`${mode} run failed: ${p.stderr}`)
        results[mode].push(JSON.parse(p.stdout.trim().split('\n').at(-1)!) as Run)
      }
    }
    const j = results.json
    const p = results.parse
    if (!p.every((x) => x.size === gen.rules)) throw new Error('parseNftJson did not count every rule')
    const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ')
    const wallRatio = median(j.map((x, i) => p[i]!.ms / x.ms))
    const cpuRatio = median(j.map((x, i) => p[i]!.cpu / x.cpu))
    const jHwm = Math.max(...j.map((x) => x.hwm))
    const pHwm = Math.max(...p.map((x) => x.hwm))
    const before = median(p.map((x) => x.rssBefore))
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
    console.log(`runs: ${runs} pairs, one fresh node ${process.version} process per run; load average now ${load}`)
    console.log(`JSON.parse:    wall median ${median(j.map((x) => x.ms)).toFixed(0)} ms (${fmt(j.map((x) => x.ms))}), cpu median ${median(j.map((x) => x.cpu)).toFixed(0)} ms (${fmt(j.map((x) => x.cpu))}), peak RSS ${MB(jHwm)} = ${(jHwm / size).toFixed(2)}x file`)
    console.log(`parseNftJson:  wall median ${median(p.map((x) => x.ms)).toFixed(0)} ms (${fmt(p.map((x) => x.ms))}), cpu median ${median(p.map((x) => x.cpu)).toFixed(0)} ms (${fmt(p.map((x) => x.cpu))}), peak RSS ${MB(pHwm)} = ${(pHwm / size).toFixed(2)}x file`)
    console.log(`time parseNftJson / JSON.parse, median of ${runs} pairs: cpu ${cpuRatio.toFixed(2)}x, wall ${wallRatio.toFixed(2)}x  (target <= 1.5x)`)
    console.log(`peak RSS / file size: ${(pHwm / size).toFixed(2)}x (target < 4x); RSS when parsing starts (node + input text): ${MB(before)}`)
    if (!p.every((x) => x.reset)) console.log('note: /proc/self/clear_refs was not writable, so the peak includes reading the file')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

main()
