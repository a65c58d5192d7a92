// dnat-untracked on a balancer that also SNATs the requests (full NAT): the untracked replies are addressed to the
// balancer's own address and end there, which is what the finding says. The kernel-gaps scenario udp41-6 (d DNATs
// 198.51.100.100:53 to 10.1.0.10:5353, raw NOTRACKs the backend's replies) with a MASQUERADE toward the backend added.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {runRules} from '../../src/rules/index.js'
import {hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'
import {readdirSync} from 'node:fs'
import {join} from 'node:path'

const DIR = join(import.meta.dirname, '../../fixtures/kernel-gaps/udp41-6')
const flow = {vip: parseEndpoint('198.51.100.100:53')!, proto: 'udp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}

function hosts(masquerade: boolean) {
  return loadSnapshots(readdirSync(DIR).map((n) => join(DIR, n))).map((h) => {
    if (h.name !== 'd' || !masquerade) return h
    const files = new Map(h.raw)
    files.set('iptables-save.txt', files.get('iptables-save.txt')!.replace(':POSTROUTING ACCEPT [0:0]\n', ':POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -d 10.1.0.10/32 -p udp -j MASQUERADE\n'))
    return hostFromFiles(h.name, h.source, files)
  })
}

describe('dnat-untracked: untracked replies of a full-NAT balancer', () => {
  test('say the replies end at the balancer (its own address), not that they reach the client', () => {
    const d = runRules({hosts: hosts(true), flows: [flow]}).find((x) => x.rule === 'dnat-untracked')
    expect(d?.message).toMatch(/the replies, addressed to d's own 10\.1\.0\.1 \(its SNAT of the requests\), are never translated back to the client: they end at d/)
    expect(d?.fix?.commands).toEqual(['iptables -t raw -D PREROUTING 1'])
  })
  test('without the SNAT, the replies reach the client from the backend', () => {
    const d = runRules({hosts: hosts(false), flows: [flow]}).find((x) => x.rule === 'dnat-untracked')
    expect(d?.message).toMatch(/the replies reach the client from 10\.1\.0\.10:5353 instead of the VIP/)
  })
})
