// Findings on the second real-world hunt's inputs (fixtures/real-world/open, README there), fixed in the rule engine:
// - Docker swarm's ingress_sbox SNATs IPVS traffic with `-m ipvs --ipvs -j SNAT` (vs.conntrack=1): the packets IPVS
//   sends carry its mark, so the SNAT applies and nat-reply-bypasses-director has nothing to say (it said "without
//   SNAT"); without the mark (`! --ipvs`) it is not theirs;
// - a kube-proxy IPVS-mode node given without sysctl.txt: net.ipv4.vs.conntrack is unknown (kube-proxy sets 1), so
//   ipvs-conntrack-off says what it would mean, as info, instead of an error.
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {runRules} from '../../src/rules/index.js'
import {hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'

const OPEN = join(import.meta.dirname, '../../fixtures/real-world/open')

describe('real-world inputs (second hunt)', () => {
  test('swarm ingress_sbox: the -m ipvs --ipvs SNAT is seen, quiet; with ! --ipvs the replies bypass it again', () => {
    const [h] = loadSnapshots([join(OPEN, 'docker-swarm-ingress-sbox')])
    expect(runRules({hosts: [h!]}).filter((f) => f.rule === 'nat-reply-bypasses-director')).toEqual([])
    const raw = new Map(h!.raw)
    raw.set('iptables-save.txt', raw.get('iptables-save.txt')!.replace('-m ipvs --ipvs -j SNAT', '-m ipvs ! --ipvs -j SNAT'))
    expect(runRules({hosts: [hostFromFiles(h!.name, h!.source, raw)]}).map((f) => f.rule)).toContain('nat-reply-bypasses-director')
  })

  test('kube-proxy IPVS node without sysctl.txt: ipvs-conntrack-off is info, an error with net.ipv4.vs.conntrack = 0 given', () => {
    const [h] = loadSnapshots([join(OPEN, 'kube-proxy-ipvs-node')])
    expect(runRules({hosts: [h!]}).filter((f) => f.rule === 'ipvs-conntrack-off').map((f) => f.severity)).toEqual(['info'])
    const raw = new Map(h!.raw)
    raw.set('sysctl.txt', 'net.ipv4.vs.conntrack = 0\nnet.ipv4.ip_forward = 1\n')
    expect(runRules({hosts: [hostFromFiles(h!.name, h!.source, raw)]}).filter((f) => f.rule === 'ipvs-conntrack-off').map((f) => f.severity)).toEqual(['error'])
  })
})

describe("moby's nft load balancer: dnat to ip daddr . numgen random mod 1024 map @m (interval elements)", () => {
  test('trace DNATs to a backend and states the draw; check sees the service with three backends of a third each', async () => {
    const {traceConnection} = await import('../../src/services/trace.js')
    const {world} = await import('../../src/rules/engine/world.js')
    const {parseEndpoint, parseIp} = await import('../../src/model/ip.js')
    const hosts = loadSnapshots([join(OPEN, 'moby-nftlb-lb-sbox')])
    const t = traceConnection(hosts, {vip: parseEndpoint('10.255.0.10:80')!, proto: 'tcp', client: parseIp('10.255.0.100')!, clientPort: 40000})
    expect(JSON.stringify(t)).toMatch(/destination -> 10\.255\.0\.1[123]:80/)
    expect(t.assumptions.some((a) => /numgen random mod 1024: a random draw/.test(a))).toBe(true)
    const svc = world({hosts} as never).services.find((s) => s.kind === 'dnat' && s.vip?.value === 0x0aff000an)!
    expect(svc.backends.map((b) => [Number(b.ip.value & 0xffn), Math.round(b.share! * 100)])).toEqual([[11, 33], [12, 33], [13, 33]])
  })
})
