// route-drops-service: a source rule sends a DR realserver's answers (from the VIP) to a table whose default route is
// unreachable. trace dies there too; the fixed fixture's table routes by the LAN's router. check's fix routes the
// service's answers by the main table before that rule (ip rule ... pref 999); with it, trace --fix connects.
import {describe, expect, test} from 'vitest'
import {runRules} from '../../src/rules/index.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {editedScenario, findingsOf, loadScenario} from './helpers.js'

const mine = findingsOf('route-drops-service')
const flow = {vip: parseEndpoint('192.0.2.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
/** only rs1 as destination, so that trace's connection goes there */
const onlyRs1 = (name: string) => editedScenario(name, 'director', (f, t) => (f === 'ipvsadm-Sn.txt' ? t.replace(/.*192\.0\.2\.12.*\n/, '') : t))

test('an unreachable default in the table a source rule chooses: fires on rs1 with the rule and route as evidence, and a policy rule for the service\'s answers before it; trace dies on rs1', () => {
  const f = mine(loadScenario('dr-source-route'))
  expect(f.map((x) => [x.host, x.fix?.commands])).toEqual([['rs1', ['ip rule add from 192.0.2.100 ipproto tcp sport 80 lookup main pref 999']]])
  expect(f[0]!.message).toMatch(/from 192\.0\.2\.100 .* to an unreachable route.*\(the policy rule 1000: from 192\.0\.2\.100 lookup 100 chooses the table\)/)
  expect(f[0]!.evidence.map((e) => e.file)).toEqual(expect.arrayContaining(['ip-rule.json', 'ip-route.json']))
  const t = traceConnection(onlyRs1('dr-source-route'), flow)
  expect(t.connection.connected).toBe(false)
  expect(t.firstFailure?.host).toBe('rs1')
  expect(mine(loadScenario('dr-source-route-fixed'))).toEqual([])
  expect(traceConnection(onlyRs1('dr-source-route-fixed'), flow).connection.closed).toBe(true)
})

test('a blackhole in that table: the message says the drop is silent', () => {
  const hosts = editedScenario('dr-source-route', 'rs1', (f, t) => (f === 'ip-route.json' ? t.replace('"type":"unreachable"', '"type":"blackhole"') : t))
  expect(mine(hosts)[0]!.message).toMatch(/a blackhole route: the kernel drops them silently/)
})

test('the policy rule check proposes for the answers makes trace --fix connect', async () => {
  const hosts = onlyRs1('dr-source-route')
  const fixed = await traceWithFixes(hosts, flow, runRules({hosts, flows: [flow]}))
  expect(fixed.result.connection, fixed.result.firstFailure?.reason).toEqual({connected: true, reply: true, closed: true})
})

describe('a mark that sends the DNATed connections to an unreachable table (dnat-fwmark-dead-route, from namespaces)', () => {
  const dnatFlow = {vip: parseEndpoint('192.0.2.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
  const judge = (hosts: ReturnType<typeof loadScenario>) => runRules({hosts, flows: [dnatFlow]})

  test('the exemption before the MARK (an ACCEPT in mangle PREROUTING for the service alone); trace --fix connects', async () => {
    const hosts = loadScenario('dnat-fwmark-dead-route')
    const f = judge(hosts).filter((x) => x.rule === 'route-drops-service')
    expect(f.map((x) => [x.host, x.fix?.commands])).toEqual([['director', ['iptables -t mangle -I PREROUTING 1 -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j ACCEPT']]])
    expect(f[0]!.message).toMatch(/PREROUTING marks them 0x7, iptables-save\.txt:\d+, and the kernel routes them with that mark\): director looks them up to an unreachable route/)
    expect(traceConnection(hosts, dnatFlow).connection.connected).toBe(false)
    expect((await traceWithFixes(hosts, dnatFlow, judge(hosts))).result.connection).toEqual({connected: true, reply: true, closed: true})
  })

  test('an IPVS fwmark service selects the same mark: it cannot be spared, so a policy rule for the DNATed packets (to the backend, after the DNAT) before the fwmark rule; trace --fix connects (the kernel did, in lq1x- namespaces)', async () => {
    const hosts = editedScenario('dnat-fwmark-dead-route', 'director', (_f, t) => t, {'ipvsadm-Sn.txt': '-A -f 7 -s rr\n-a -f 7 -r 10.0.0.11:0 -m -w 1\n'})
    const f = judge(hosts)
    expect(f.filter((x) => x.rule === 'route-drops-service').flatMap((x) => x.fix?.commands ?? [])).toEqual(['ip rule add to 10.0.0.11 ipproto tcp dport 8080 lookup main pref 106'])
    expect((await traceWithFixes(hosts, dnatFlow, f)).result.connection).toEqual({connected: true, reply: true, closed: true})
  })

  test('quiet once the table routes (the fixed variant)', () => {
    expect(judge(loadScenario('dnat-fwmark-dead-route-fixed')).filter((x) => x.rule === 'route-drops-service')).toEqual([])
  })
})
