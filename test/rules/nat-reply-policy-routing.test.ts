// nat-reply-bypasses-director and a realserver's policy routing: the random kernel suite's rnd13-0 (snapshots the
// suite captured from namespaces, fixtures/kernel-gaps/rnd13-0): a realserver with `ip rule add from 10.1.0.0/24
// lookup 100` and a default route to a router in table 100. Its replies to the client go around the director, and
// so do its replies to the director's own address: masquerading, the fix a main-table realserver needs, does not
// bring them back (the kernel's connection stayed dead with it). check says so and gives the routing change
// instead; with a rule that sends the director's address to the main table, the masquerade is proposed and works.
import {readdirSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {applyFixes} from '../../src/dataplane/apply-fix.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {connectionOk, editedScenario, findingsOf} from './helpers.js'

const DIR = 'fixtures/kernel-gaps/rnd13-0'
const flow = {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
const mine = findingsOf('nat-reply-bypasses-director')
const MASQ = 'iptables -t nat -A POSTROUTING -d 10.1.0.10/32 -p tcp -m tcp --dport 8080 -j MASQUERADE'

function load(): HostSnapshot[] {
  return loadSnapshots(readdirSync(DIR).filter((n) => /^[a-z]$/.test(n)).map((n) => `${DIR}/${n}`))
}
/** the hosts with one host's file edited */
function edit(hosts: HostSnapshot[], host: string, file: string, f: (t: string) => string): HostSnapshot[] {
  return hosts.map((h) => {
    if (h.name !== host) return h
    const raw = new Map(h.raw)
    raw.set(file, f(raw.get(file)!))
    return hostFromFiles(h.name, h.source, raw)
  })
}
const onDirector = (hosts: HostSnapshot[], cmds: string[]) => hosts.map((h) => (h.name === 'd' ? applyFixes(h, cmds).host : h))
/** r: `ip rule add to 10.1.0.1 lookup main pref 50`, as `ip -j rule show` prints it */
const toMain = (t: string) => {
  const rules = JSON.parse(t) as object[]
  rules.splice(1, 0, {priority: 50, src: 'all', dst: '10.1.0.1', table: 'main'})
  return JSON.stringify(rules)
}

describe('nat-reply-bypasses-director: a realserver whose policy routing sends its own subnet elsewhere (kernel rnd13-0)', () => {
  test('masquerading would not help: no MASQUERADE command but the routing change; trace agrees, with and without the masquerade', () => {
    const hosts = load()
    expect(connectionOk(traceConnection(hosts, flow).connection)).toBe(false)
    const f = mine(hosts)
    expect(f).toHaveLength(1)
    expect(f[0]!.message).toMatch(/masquerading on d would not bring them back: their replies to d's address 10\.1\.0\.1 go astray too \(r sends the replies to 10\.2\.0\.1 \(g\); g has no usable route back to 10\.1\.0\.1/)
    expect(f[0]!.fix?.commands).toEqual([])
    expect(f[0]!.fix?.summary).toMatch(/ip rule add to 10\.1\.0\.1 lookup main pref 99/)
    expect(f[0]!.evidence.map((e) => e.text)).toContain('100: from 10.1.0.0/24 lookup 100')
    // the fix check gave before (the kernel stayed dead with it): trace agrees it does not connect
    expect(connectionOk(traceConnection(onDirector(hosts, [MASQ]), flow).connection)).toBe(false)
  })

  test('already masqueraded, the replies to the masquerade address go astray: said, with the routing change', () => {
    const f = mine(onDirector(load(), [MASQ]))
    expect(f.map((x) => x.message)).toEqual([expect.stringMatching(/d masquerades the connections of .* but some backends route the replies to d's address elsewhere[\s\S]*d masquerades it to its address 10\.1\.0\.1 \(iptables-save\.txt:\d+\), but the replies to 10\.1\.0\.1 do not come back either/)])
    expect(f[0]!.fix?.summary).toMatch(/ip rule add to 10\.1\.0\.1 lookup main/)
  })

  test('with a rule that routes the director address by the main table: the MASQUERADE is proposed and connects; applied, quiet', async () => {
    const hosts = edit(load(), 'r', 'ip-rule.json', toMain)
    const f = mine(hosts)
    expect(f.map((x) => x.fix?.commands)).toEqual([[MASQ]])
    expect(f[0]!.message).not.toMatch(/would not bring them back/)
    expect(connectionOk((await traceWithFixes(hosts, flow, f)).result.connection)).toBe(true)
    expect(mine(onDirector(hosts, [MASQ]))).toEqual([])
  })

  test('a gateway without a snapshot toward the director address is not called astray (it may send them on): the MASQUERADE is proposed', () => {
    const T100 = {dst: 'default', gateway: '10.0.0.254', dev: 'ldr-eth0', table: '100', flags: []}
    const hosts = editedScenario('dnat-forward-drop-fixed', 'rs1', (file, t) => {
      if (file === 'ip-rule.json') return JSON.stringify([{priority: 0, src: 'all', table: 'local'}, {priority: 100, src: '10.0.0.0', srclen: 24, table: '100'}, ...(JSON.parse(t) as object[]).slice(1)])
      if (file === 'ip-route.json') return JSON.stringify([...(JSON.parse(t) as object[]), T100])
      return t
    })
    const f = mine(hosts)
    expect(f).toHaveLength(1)
    expect(f[0]!.fix?.commands).toEqual(['iptables -t nat -A POSTROUTING -d 10.0.0.11/32 -p tcp -m tcp --dport 8080 -j MASQUERADE'])
  })
})
