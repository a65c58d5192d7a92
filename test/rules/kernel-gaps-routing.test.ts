// Kernel scenarios (fixtures/kernel-gaps, snapshots the random kernel suites captured from namespaces) where the
// connection failed for policy routing, marks or ARP and check had no fix, or one the kernel did not repair. Each
// fix below was run in the namespaces by the suite and the kernel then connected; trace --fix must agree.
import {readdirSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {runRules} from '../../src/rules/index.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'
import {connectionOk} from './helpers.js'

const flow = {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
const load = (name: string) => {
  const dir = `fixtures/kernel-gaps/${name}`
  return loadSnapshots(readdirSync(dir).filter((n) => /^[a-z]$/.test(n)).map((n) => `${dir}/${n}`))
}

async function judged(name: string) {
  const hosts = load(name)
  const f = runRules({hosts, flows: [flow]})
  const byRule = (rule: string, host: string) => f.filter((x) => x.rule === rule && x.host === host).flatMap((x) => x.fix?.commands ?? [])
  return {hosts, f, byRule, fixed: (await traceWithFixes(hosts, flow, f)).result}
}

describe('routing gaps the kernel confirmed closed', () => {
  test('rnd31-17: the director marks the service 0x7 (fwmark 0x7 -> unreachable), the realserver asks the router from its other-link address (arp_announce 0): the exemption before the MARK and arp_announce 2', async () => {
    const j = await judged('rnd31-17')
    expect(traceConnection(j.hosts, flow).connection.connected).toBe(false)
    expect(j.byRule('route-drops-service', 'd')).toEqual(['iptables -t mangle -I PREROUTING 1 -d 198.51.100.100/32 -p tcp -m tcp --dport 80 -j ACCEPT'])
    expect(j.byRule('rp-filter-asymmetric', 'r')).toContain('sysctl -w net.ipv4.conf.lq1-r1.arp_announce=2')
    expect(connectionOk(j.fixed.connection), j.fixed.firstFailure?.reason).toBe(true)
  })

  test('rn31-13 (nft): the realserver restores ct mark 0x1 (set on what came in on lq1-r0) into its answers in a route chain, fwmark 0x1 -> unreachable: an accept for the answers before it', async () => {
    const j = await judged('rn31-13')
    expect(j.byRule('route-drops-service', 'r')).toEqual(['nft insert rule ip lq1_rt output position 4 ip saddr 10.1.0.10 tcp sport 8080 accept'])
    expect(j.f.find((x) => x.rule === 'route-drops-service' && x.host === 'r')!.message).toMatch(/to 10\.1\.0\.1 \(d SNATs them to 10\.1\.0\.1/)
    expect(connectionOk(j.fixed.connection), j.fixed.firstFailure?.reason).toBe(true)
  })

  test('rnd31-13: the realserver\'s `ip rule from 10.1.0.10 lookup 100` (unreachable) takes its answers: a policy rule for them before it', async () => {
    const j = await judged('rnd31-13')
    expect(j.byRule('route-drops-service', 'r')).toEqual(['ip rule add from 10.1.0.10 ipproto tcp sport 8080 lookup main pref 99'])
    expect(connectionOk(j.fixed.connection), j.fixed.firstFailure?.reason).toBe(true)
  })

  test('rnd31-14 (silent before): the director\'s `ip rule add iif lq1-d1 lookup 103` (unreachable) takes the realserver\'s answers it routes back to the client: a policy rule for them before it', async () => {
    const j = await judged('rnd31-14')
    expect(j.byRule('route-drops-service', 'd')).toEqual(['ip rule add from 198.51.100.100 ipproto tcp sport 80 lookup main pref 94'])
    expect(j.f.find((x) => x.rule === 'route-drops-service')!.message).toMatch(/they arrive on lq1-d1/)
    expect(connectionOk(j.fixed.connection), j.fixed.firstFailure?.reason).toBe(true)
  })

  test('rnd17-0 (check\'s rp_filter=2 alone did not connect): strict rp_filter on the realserver and `ip rule from 10.1.0.10 lookup 100` (unreachable): loose mode for the clients\' packets and the pair rule for the ARP request', async () => {
    const j = await judged('rnd17-0')
    expect(j.byRule('rp-filter-asymmetric', 'r')).toEqual(['sysctl -w net.ipv4.conf.lq1b-r0.rp_filter=2', 'ip rule add from 10.1.0.10 to 10.1.0.1 lookup main pref 99'])
    expect(connectionOk(j.fixed.connection), j.fixed.firstFailure?.reason).toBe(true)
  })

  test('rnd41-2: the same source rule under rp_filter 1 also loses the director\'s ARP request (rp_filter 2 would not help): a policy rule for the pair', async () => {
    const j = await judged('rnd41-2')
    expect(traceConnection(j.hosts, flow).firstFailure?.reason).toMatch(/does not answer d's ARP request/)
    expect(j.byRule('rp-filter-asymmetric', 'r')).toEqual(['ip rule add from 10.1.0.10 to 10.1.0.1 lookup main pref 99'])
    expect(connectionOk(j.fixed.connection), j.fixed.firstFailure?.reason).toBe(true)
  })

  test('without the source rule, rnd41-2\'s realserver answers the ARP request: no ARP finding', () => {
    const hosts = load('rnd41-2').map((h) => {
      if (h.name !== 'r') return h
      const raw = new Map(h.raw)
      raw.set('ip-rule.json', raw.get('ip-rule.json')!.replace(/\{"priority":100,[^}]*\},/, ''))
      return hostFromFiles(h.name, h.source, raw)
    })
    expect(runRules({hosts, flows: [flow]}).filter((x) => x.rule === 'rp-filter-asymmetric' && /ARP request/.test(x.message))).toEqual([])
  })
})
