// route-drops-service: a source rule sends a DR realserver's answers (from the VIP) to a table whose default route is
// unreachable. trace dies there too; the fixed fixture's table routes by the LAN's router. check's fix routes the
// service's answers by the main table before that rule (ip rule ... pref 999); with it, trace --fix connects.
import {expect, test} from 'vitest'
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
  const {runRules} = await import('../../src/rules/index.js')
  const {traceWithFixes} = await import('../../src/services/trace-command.js')
  const fixed = await traceWithFixes(hosts, flow, runRules({hosts, flows: [flow]}))
  expect(fixed.result.connection, fixed.result.firstFailure?.reason).toEqual({connected: true, reply: true, closed: true})
})
