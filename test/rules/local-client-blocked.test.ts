// local-client-blocked: a host's own connections DNATed in nat OUTPUT meet its filter OUTPUT after the DNAT and its
// filter INPUT with the backend as source. Kernel: the application's connect() timed out in a namespace run, and
// connected with the fix; trace (the client being the host's own address) agrees.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {connectionOk, editedScenario, findingsOf, loadScenario} from './helpers.js'

const RULE = 'local-client-blocked'
const mine = findingsOf(RULE)
const flow = {vip: parseEndpoint('192.0.2.50:3306')!, proto: 'tcp' as const, client: parseIp('10.0.0.1')!, clientPort: 40000}
const ok = connectionOk

describe('local-client-blocked', () => {
  test('OUTPUT allows the VIP port, not the DNATed one: fires with an accept for the backend; trace fails, --fix connects; the fixed fixture is quiet', async () => {
    const hosts = loadScenario('local-client-output')
    const f = mine(hosts)
    expect(f.map((x) => [x.host, x.fix?.commands])).toEqual([['app', ['iptables -t filter -A OUTPUT -d 10.0.0.11/32 -p tcp -m tcp --dport 3307 -j ACCEPT']]])
    expect(f[0]!.message).toMatch(/addressed to 10\.0\.0\.11:3307, and the SYN is dropped at OUTPUT by the DROP policy of filter OUTPUT/)
    expect(f[0]!.message).not.toMatch(/outside clients/)
    expect(ok(traceConnection(hosts, flow).connection)).toBe(false)
    expect(ok((await traceWithFixes(hosts, flow, f)).result.connection)).toBe(true)
    expect(mine(loadScenario('local-client-output-fixed'))).toEqual([])
  })

  test('INPUT without an ESTABLISHED accept drops the answers: an ESTABLISHED accept; trace agrees', async () => {
    const hosts = editedScenario('local-client-output-fixed', 'app', (f, t) => (f === 'iptables-save.txt' ? t.replace(':INPUT ACCEPT [0:0]', ':INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT') : t))
    const f = mine(hosts)
    expect(f.map((x) => x.fix?.commands)).toEqual([['iptables -t filter -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT']])
    expect(f[0]!.message).toMatch(/the answers come back from 10\.0\.0\.11:3307 and are dropped at INPUT/)
    expect(ok(traceConnection(hosts, flow).connection)).toBe(false)
    expect(ok((await traceWithFixes(hosts, flow, f)).result.connection)).toBe(true)
  })

  test('the same DNAT in PREROUTING too: the message says outside clients are served', () => {
    const hosts = editedScenario('local-client-output', 'app', (f, t) =>
      f === 'iptables-save.txt' ? t.replace('-A OUTPUT -d 192.0.2.50/32', '-A PREROUTING -j SVC\n-A OUTPUT -j SVC\n-A SVC -d 192.0.2.50/32').replace(':POSTROUTING ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]\n:SVC - [0:0]') : t,
    )
    expect(mine(hosts)[0]!.message).toMatch(/while outside clients can/)
  })

  test('a DNAT of 127/8 is left to localhost-dnat; a DNAT to the host itself is not followed', () => {
    const lo = editedScenario('local-client-output', 'app', (f, t) => (f === 'iptables-save.txt' ? t.replace('-d 192.0.2.50/32', '-d 127.0.0.1/32') : t))
    expect(mine(lo)).toEqual([])
    const self = editedScenario('local-client-output', 'app', (f, t) => (f === 'iptables-save.txt' ? t.replace('10.0.0.11:3307', '10.0.0.1:3307') : t))
    expect(mine(self)).toEqual([])
  })
})
