// Where `check` spends its time and memory after parsing: the CPU time (user+sys, process.cpuUsage: it counts what the
// process ran, not the wall time a loaded machine stretches) of parsing, of the service model (world()) and of each
// rule, and with --alloc the bytes each phase allocates by function (V8's sampling heap profiler, collected objects
// included) or, with --live, what each phase keeps.
//
//   npm run build && npx tsx bench/engine-phases.ts [FILE] [--dist DIR] [--alloc world|rules] [--live world|rules]
//
// It runs the built modules (dist/, or --dist DIR: another worktree's build, for an A/B), with the V8 flags bin/run.js
// sets for `check`. FILE defaults to /tmp/kp100k.iptables-save (bench/gen-kube-proxy.ts generateKubeProxyDump(100000)).
// Interleave runs of two builds and compare medians: one run says little on a shared machine.
import {readFileSync} from 'node:fs'
import {Session} from 'node:inspector/promises'
import {resolve} from 'node:path'
import {pathToFileURL} from 'node:url'
import v8 from 'node:v8'

v8.setFlagsFromString('--semi-space-growth-factor=1 --max-inlined-bytecode-size-cumulative=300')

const args = process.argv.slice(2)
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name)
  if (i < 0) return undefined
  const v = args[i + 1]
  args.splice(i, 2)
  return v
}
const dist = resolve(opt('--dist') ?? new URL('../dist', import.meta.url).pathname)
const alloc = opt('--alloc')
const live = opt('--live')
const file = args[0] ?? '/tmp/kp100k.iptables-save'
const mod = (p: string) => import(pathToFileURL(`${dist}/${p}`).href)

const {hostFromFiles} = await mod('snapshot/store.js')
const {RULES} = await mod('rules/index.js')
const {world} = await mod('rules/engine/world.js')

const cpu = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

let c = cpu()
const host = hostFromFiles('bench', '/tmp/bench', new Map([['iptables-save.txt', readFileSync(file, 'utf8')]]))
const parse = cpu() - c
const ctx = {hosts: [host]}
const phase = alloc ?? live
const session = phase ? new Session() : undefined
session?.connect()
const start = async (p: string) => {
  if (phase === p) await session!.post('HeapProfiler.startSampling', {samplingInterval: 4096, includeObjectsCollectedByMajorGC: !!alloc, includeObjectsCollectedByMinorGC: !!alloc})
}
const stop = async (p: string) => {
  if (phase !== p) return
  const {profile} = (await session!.post('HeapProfiler.stopSampling')) as {profile: {head: Node}}
  type Node = {callFrame: {functionName: string; url: string; lineNumber: number}; selfSize: number; children: Node[]}
  const by = new Map<string, number>()
  let total = 0
  const walk = (n: Node) => {
    const k = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`
    by.set(k, (by.get(k) ?? 0) + n.selfSize)
    total += n.selfSize
    for (const x of n.children) walk(x)
  }
  walk(profile.head)
  console.log(`${p}: ${alloc ? 'allocated' : 'kept'} ${(total / 1e6).toFixed(1)} MB`)
  for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${(v / 1e6).toFixed(2).padStart(8)}  ${k}`)
}

await start('world')
c = cpu()
const w = world(ctx)
const worldCpu = cpu() - c
await stop('world')
const per: [string, number][] = []
await start('rules')
c = cpu()
const kept: unknown[] = []
for (const r of RULES) {
  const c1 = cpu()
  kept.push(r.check(ctx))
  per.push([r.meta.id, cpu() - c1])
}
const rulesCpu = cpu() - c
await stop('rules')
console.log(`${file}: parse ${parse.toFixed(0)} ms, world ${worldCpu.toFixed(0)} ms (${w.services.length} services), rules ${rulesCpu.toFixed(0)} ms cpu; heap used ${(process.memoryUsage().heapUsed / 1e6).toFixed(1)} MB`)
for (const [id, ms] of per.sort((a, b) => b[1] - a[1])) if (ms >= 3) console.log(`  ${id.padEnd(36)} ${ms.toFixed(0).padStart(5)} ms`)
