// ipset figures: parsing a big `ipset save` (kube-proxy-sized hash:ip,port and a hash:net block list with nomatch
// holes) and deciding -m set lookups against it (src/dataplane/ipset.ts; the index is built on the first lookup).
// Run: npx tsx bench/ipset.ts
import {evalSetMatch, type SetMatch} from '../src/dataplane/ipset.js'
import type {Packet} from '../src/dataplane/packet.js'
import {parseIpsetSave} from '../src/snapshot/parsers/ipset.js'

const N = Number(process.env.IPSET_BENCH_N ?? 100_000)
const q = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
const lines: string[] = ['create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 262144 comment']
for (let i = 0; i < N; i++) lines.push(`add KUBE-CLUSTER-IP ${q(i)},tcp:${80 + (i % 3)} comment "ns/svc-${i}:http"`)
lines.push('create BLOCK hash:net family inet hashsize 1024 maxelem 262144')
for (let i = 0; i < N / 2; i++) lines.push(`add BLOCK 172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`)
for (let i = 0; i < 256; i++) lines.push(`add BLOCK 192.168.${i}.0/24`, `add BLOCK 192.168.${i}.128/25 nomatch`)
const text = lines.join('\n') + '\n'

const mem0 = process.memoryUsage().heapUsed
let t = performance.now()
const sets = parseIpsetSave(text, 'ipset-save.txt')
const parseMs = performance.now() - t
const heapMb = (process.memoryUsage().heapUsed - mem0) / 1e6

const m1: SetMatch = {kind: 'set', neg: false, name: 'KUBE-CLUSTER-IP', flags: ['dst', 'dst']}
const m2: SetMatch = {kind: 'set', neg: false, name: 'BLOCK', flags: ['src']}
const pkt = (src: string, dst: string, dport: number): Packet => {
  const ip = (s: string) => ({family: 4 as const, value: BigInt(s.split('.').reduce((a, b) => a * 256 + Number(b), 0))})
  return {family: 4, src: ip(src), dst: ip(dst), proto: 6, sport: 40000, dport, mark: 0}
}
t = performance.now()
evalSetMatch(sets, m1, pkt('1.1.1.1', q(1), 81), {})
evalSetMatch(sets, m2, pkt('1.1.1.1', q(1), 81), {})
const indexMs = performance.now() - t
const L = 200_000
const probes = Array.from({length: 1000}, (_, i) => pkt(`192.168.${i & 255}.${i & 255}`, q((i * 7919) % N), 80 + (i % 4)))
let hits = 0
const cpu0 = process.cpuUsage()
t = performance.now()
for (let i = 0; i < L; i++) {
  const p = probes[i % probes.length]!
  if (evalSetMatch(sets, m1, p, {}).decision === 'match') hits++
  if (evalSetMatch(sets, m2, p, {}).decision === 'match') hits++
}
const lookMs = performance.now() - t
const cpuMs = (process.cpuUsage(cpu0).user + process.cpuUsage(cpu0).system) / 1000
console.log(`ipset save: ${sets.entryCount} entries (${(text.length / 1e6).toFixed(1)} MB) parsed in ${parseMs.toFixed(0)} ms, ~${heapMb.toFixed(0)} MB heap`)
console.log(`first lookups (index of both sets built): ${indexMs.toFixed(0)} ms`)
console.log(`${2 * L} lookups (hash:ip,port dst,dst and hash:net src with nomatch holes): ${lookMs.toFixed(0)} ms wall, ${cpuMs.toFixed(0)} ms cpu, ${((cpuMs * 1000) / (2 * L)).toFixed(2)} µs cpu each (${hits} matched)`)
