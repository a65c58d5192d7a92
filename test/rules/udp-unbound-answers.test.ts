// A UDP server on 0.0.0.0 answers with no bound source, so the kernel routes its answers with saddr 0 and `ip rule
// from ADDR` does not apply to them (fib4_rule_match). The random UDP kernel suite's udp15-15 (snapshots it captured:
// fixtures/kernel-gaps/udp15-15): the realserver has `ip rule add from 10.1.0.0/24 lookup 100` with an unreachable
// table 100 and still answered; check called its answers unroutable and bypassing the director. Now quiet about
// them, and still firing when the server is bound to the address (the rule then applies: trace agrees).
import {readdirSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {runRules} from '../../src/rules/index.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'
import {connectionOk} from './helpers.js'

const DIR = 'fixtures/kernel-gaps/udp15-15'
const flow = {vip: parseEndpoint('198.51.100.100:53')!, proto: 'udp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
const load = () => loadSnapshots(readdirSync(DIR).filter((n) => /^[a-z]$/.test(n)).map((n) => `${DIR}/${n}`))
const bound = (hosts: HostSnapshot[]) =>
  hosts.map((h) => {
    if (h.name !== 'r') return h
    const raw = new Map(h.raw)
    raw.set('ss-ltnu.txt', raw.get('ss-ltnu.txt')!.replace(/0\.0\.0\.0:5353/, '10.1.0.10:5353'))
    return hostFromFiles(h.name, h.source, raw)
  })

describe('answers of a UDP server on 0.0.0.0 and source policy rules (kernel udp15-15)', () => {
  test('on 0.0.0.0: no route-drops-service or nat-reply-bypasses-director about its answers; the NOTRACK fix alone connects', async () => {
    const hosts = load()
    const f = runRules({hosts, flows: [flow]})
    expect(f.map((x) => x.rule)).not.toContain('route-drops-service')
    expect(f.map((x) => x.rule)).not.toContain('nat-reply-bypasses-director')
    expect(f.map((x) => x.rule)).toContain('dnat-untracked')
    expect(connectionOk((await traceWithFixes(hosts, flow, f)).result.connection)).toBe(true)
  })

  test('bound to 10.1.0.10: the rule routes its answers to the unreachable table; check says so and trace agrees', () => {
    const hosts = bound(load())
    expect(runRules({hosts, flows: [flow]}).map((x) => `${x.rule}@${x.host}`)).toContain('route-drops-service@r')
    // with the NOTRACK gone too, the answer still dies on r's route
    const noNotrack = hosts.map((h) => {
      if (h.name !== 'd') return h
      const raw = new Map(h.raw)
      raw.set('iptables-save.txt', raw.get('iptables-save.txt')!.replace(/^-A PREROUTING -d 198\.51\.100\.100\/32 -p udp .*NOTRACK\n/m, ''))
      return hostFromFiles(h.name, h.source, raw)
    })
    const t = traceConnection(noNotrack, flow)
    expect(t.connection.reply).toBe(false)
    expect(t.firstFailure).toMatchObject({host: 'r', hook: 'ROUTING'})
  })
})
