// A kube-proxy IPVS-mode node (fixtures/real-world/open/kube-proxy-ipvs-node, whose README entry says every -m set
// was assumed) with the sets kube-proxy keeps for its two services (fixtures/parsers/ipset/kube-proxy-ipvs-node.txt:
// KUBE-CLUSTER-IP = VIP,proto:port of each service, KUBE-IPVS-IPS = the VIPs, KUBE-LOOP-BACK = the local endpoint).
import {readFileSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {traceConnection} from '../../src/services/trace.js'
import {hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'

const [node] = loadSnapshots(['fixtures/real-world/open/kube-proxy-ipvs-node'])
const raw = new Map(node!.raw)
raw.set('ipset-save.txt', readFileSync('fixtures/parsers/ipset/kube-proxy-ipvs-node.txt', 'utf8'))
const withSets = hostFromFiles(node!.name, node!.source, raw)
const trace = (h: HostSnapshot, vip: string) => traceConnection([h], {vip: parseEndpoint(vip)!, proto: 'tcp', client: parseIp('192.168.20.7')!, clientPort: 40000})

describe('kube-proxy IPVS node: trace reads its sets', () => {
  test('the sets load with the node', () => {
    expect(withSets.errors).toEqual([])
    expect([...withSets.ipsets!.sets.keys()]).toContain('KUBE-CLUSTER-IP')
  })

  test('a ClusterIP service port: served either way, but with the sets nothing about them is assumed', () => {
    const before = trace(node!, '10.97.4.140:7000')
    expect(before.connection.connected).toBe(true)
    expect(before.assumptions.filter((a) => a.includes('--match-set')).length).toBeGreaterThan(0)
    const after = trace(withSets, '10.97.4.140:7000')
    expect(after.connection).toEqual({connected: true, reply: true, closed: true})
    expect(after.assumptions.filter((a) => a.includes('--match-set'))).toEqual([])
    const notes = after.packets[0]!.steps.map((s) => s.note ?? '').join('\n')
    expect(notes).toContain('--match-set KUBE-CLUSTER-IP dst,dst matches: KUBE-CLUSTER-IP (hash:ip,port) holds 10.97.4.140,tcp:7000 in ipset-save.txt:5')
  })

  test('another port of the ClusterIP: KUBE-IPVS-FILTER rejects it (the RETURNs for the service sets no longer assumed to match)', () => {
    const before = trace(node!, '10.97.4.140:8080')
    expect(before.firstFailure?.hook).toBe('SOCKET')
    const after = trace(withSets, '10.97.4.140:8080')
    expect(after.connection.connected).toBe(false)
    expect(after.firstFailure?.rule?.line).toBe(29)
    expect(after.firstFailure?.reason).toMatch(/rejects it \(ctstate NEW\): -A KUBE-IPVS-FILTER .* --match-set KUBE-IPVS-IPS dst -j REJECT/)
  })
})
