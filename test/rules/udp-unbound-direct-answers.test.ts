// The rules that follow a DR realserver's answers hop by hop (one-way-reply-snat's hops, dr-reply-via-director) route
// the answers of a UDP server bound to 0.0.0.0 without a source, as trace does (engine/host.ts answerSource): it
// answers with sendto and no bound address, so `ip rule from VIP` does not apply (fib4_rule_match). Built from the
// dr-router-masquerade fixture: the service made UDP, rs1's main table routed through the director and a source rule
// for the VIP toward the router g, which masquerades (table 100).
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {runRules} from '../../src/rules/index.js'
import {traceConnection} from '../../src/services/trace.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {loadScenario} from './helpers.js'

const flow = {vip: parseEndpoint('192.0.2.100:80')!, proto: 'udp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}

function hosts(listen: string | undefined): HostSnapshot[] {
  return loadScenario('dr-router-masquerade').map((h) => {
    const raw = new Map(h.raw)
    if (h.name === 'director') raw.set('ipvsadm-Sn.txt', raw.get('ipvsadm-Sn.txt')!.replace(/-t /g, '-u '))
    if (h.name === 'rs1') {
      const routes = JSON.parse(raw.get('ip-route.json')!) as Record<string, unknown>[]
      const def = routes.find((r) => r.dst === 'default' && r.table === undefined)!
      routes.push({...def, table: '100'})
      def.gateway = '192.0.2.1'
      raw.set('ip-route.json', JSON.stringify(routes))
      raw.set('ip-rule.json', '[{"priority":0,"src":"all","table":"local"},{"priority":100,"src":"192.0.2.100","table":"100"},{"priority":32766,"src":"all","table":"main"},{"priority":32767,"src":"all","table":"default"}]')
      if (listen) raw.set('ss-ltnu.txt', `udp UNCONN 0      0      ${listen}:80 0.0.0.0:*\n`)
    }
    return hostFromFiles(h.name, h.source, raw)
  })
}

const fired = (hs: HostSnapshot[]) => runRules({hosts: hs, flows: [flow]}, undefined, {maxRounds: 1}).map((f) => `${f.rule}@${f.host}`)

describe('a DR realserver\'s UDP answers and a source rule for the VIP', () => {
  test('bound to the VIP: the rule sends them through the masquerading router g (one-way-reply-snat), not the director; trace dies at g\'s NAT too', () => {
    const hs = hosts('192.0.2.100')
    const f = fired(hs)
    expect(f).toContain('one-way-reply-snat@g')
    expect(f).not.toContain('dr-reply-via-director@rs1')
    const t = traceConnection(hs, flow)
    expect(t.connection.reply).toBe(false)
  })

  test('listening sockets unknown (no ss-ltnu.txt): the answers are taken to leave from the VIP, as trace takes them', () => {
    expect(fired(hosts(undefined))).toContain('one-way-reply-snat@g')
  })

  test('on 0.0.0.0: no source at route lookup, the main table sends them to the director, which drops its own VIP as a source (dr-reply-via-director); g is not on the way', () => {
    const hs = hosts('0.0.0.0')
    const f = fired(hs)
    expect(f).toContain('dr-reply-via-director@rs1')
    expect(f).not.toContain('one-way-reply-snat@g')
    const t = traceConnection(hs, flow)
    expect(t.connection.reply).toBe(false)
    expect(t.firstFailure?.host).toBe('director')
  })
})
