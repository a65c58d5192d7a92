// A DNAT balancer whose FORWARD chain drops the SYN to some backends only (one added to the cascade and forgotten in
// the firewall): filter-blocks-vip names those backends and their share, and forward-drops-nat-requests does not
// add an ESTABLISHED accept that could not help (the SYN to that backend never passes). Before, the service's probe
// took the cascade's first backend only: a drop of another was reported as an ESTABLISHED-only problem, and a drop
// of the first as "new connections are dropped" for all of them.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {runRules} from '../../src/rules/index.js'
import {traceConnection} from '../../src/services/trace.js'
import {applyFixes, editedScenario} from './helpers.js'
import {checkHosts} from '../../src/services/check.js'

const withForward = (rules: string, policy = 'ACCEPT') =>
  editedScenario('statistic-cascade-naive-fixed', 'director', (f, t) => (f !== 'iptables-save.txt' ? t : `${t}*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ${policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n${rules}COMMIT\n`))
const flow = {vip: parseEndpoint('192.0.2.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}

describe('a FORWARD drop of some DNAT backends only', () => {
  test.each(['10.0.0.11', '10.0.0.12', '10.0.0.13'])('dropping %s: one filter-blocks-vip finding with its share and a stateless accept; applied, nothing is left', (ip) => {
    const hosts = withForward(`-A FORWARD -d ${ip}/32 -p tcp -m tcp --dport 80 -j DROP\n`)
    const f = runRules({hosts})
    expect(f.map((x) => [x.rule, x.fix?.commands])).toEqual([['filter-blocks-vip', [`iptables -t filter -I FORWARD 1 -d ${ip}/32 -p tcp -m tcp --dport 80 -j ACCEPT`]]])
    expect(f[0]!.message).toMatch(new RegExp(`that the DNAT sends to ${ip.replace(/\./g, '\\.')}:80 \\(3[34]% of new connections\\) are dropped at FORWARD`))
    const report = checkHosts(hosts, {version: 't'})
    expect(checkHosts(applyFixes(hosts, report.findings), {version: 't'}).findings).toEqual([])
  })

  test('a DROP policy accepting two of three backends (stateless accepts): the third is named', () => {
    const hosts = withForward('-A FORWARD -d 10.0.0.11/32 -p tcp -m tcp --dport 80 -j ACCEPT\n-A FORWARD -s 10.0.0.11/32 -j ACCEPT\n-A FORWARD -d 10.0.0.12/32 -p tcp -m tcp --dport 80 -j ACCEPT\n-A FORWARD -s 10.0.0.12/32 -j ACCEPT\n-A FORWARD -s 10.0.0.13/32 -j ACCEPT\n', 'DROP')
    const f = runRules({hosts}).filter((x) => x.rule === 'filter-blocks-vip')
    expect(f.map((x) => x.fix?.commands)).toEqual([['iptables -t filter -A FORWARD -d 10.0.0.13/32 -p tcp -m tcp --dport 80 -j ACCEPT']])
    expect(f[0]!.message).toMatch(/sends to 10\.0\.0\.13:80 \(34% of new connections\).*by the DROP policy of filter FORWARD.*the ones sent to 10\.0\.0\.11:80, 10\.0\.0\.12:80 pass/s)
  })

  test('every backend dropped: the service-wide message, as before', () => {
    const f = runRules({hosts: withForward('-A FORWARD -d 10.0.0.0/24 -p tcp -m tcp --dport 80 -j DROP\n')})
    expect(f.map((x) => x.rule)).toEqual(['filter-blocks-vip'])
    expect(f[0]!.message).toMatch(/^New connections to TCP 192\.0\.2\.100:80 \(DNAT\) are dropped at FORWARD/)
  })

  test('`--ctstate DNAT` accepts (OpenWrt: "Accept port forwards") pass the SYN after the DNAT: quiet', () => {
    expect(runRules({hosts: withForward('-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT\n', 'DROP')})).toEqual([])
  })

  test('trace agrees: dropping the backend its replay is sent to, the SYN dies at FORWARD; check names that backend', () => {
    const open = withForward('')
    const t0 = traceConnection(open, flow)
    expect(t0.connection.closed).toBe(true)
    const picked = JSON.stringify(t0).match(/destination -> (10\.0\.0\.1\d):80/)?.[1]
    expect(picked).toBeDefined()
    const hosts = withForward(`-A FORWARD -d ${picked}/32 -p tcp -m tcp --dport 80 -j DROP\n`)
    const t = traceConnection(hosts, flow)
    expect(t.connection.connected).toBe(false)
    expect(t.firstFailure?.hook).toBe('FORWARD')
    const f = runRules({hosts})
    expect(f.map((x) => x.rule)).toEqual(['filter-blocks-vip'])
    expect(f[0]!.message).toContain(`that the DNAT sends to ${picked}:80 (`)
  })
})

describe('FORWARD accepts written for the original destination, and drops of every backend', () => {
  test('`--ctstate DNAT --ctorigdst VIP --ctorigdstport 80` accepts: matched against the original tuple, quiet', () => {
    expect(runRules({hosts: withForward('-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -m conntrack --ctstate DNAT --ctorigdst 192.0.2.100 --ctorigdstport 80 -j ACCEPT\n', 'DROP')})).toEqual([])
    // another original destination does not pass: every backend is dropped
    expect(runRules({hosts: withForward('-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -m conntrack --ctstate DNAT --ctorigdst 192.0.2.99 -j ACCEPT\n', 'DROP')}).map((x) => x.rule)).toEqual(['filter-blocks-vip'])
  })

  test('every backend dropped by the policy: one accept per backend, and applied they leave nothing', () => {
    const hosts = withForward('-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n', 'DROP')
    const report = checkHosts(hosts, {version: 't'})
    expect(report.findings.map((f) => [f.rule, f.fix?.commands])).toEqual([
      ['filter-blocks-vip', ['10.0.0.11', '10.0.0.12', '10.0.0.13'].map((ip) => `iptables -t filter -A FORWARD -d ${ip}/32 -p tcp -m tcp --dport 80 -j ACCEPT`)],
    ])
    expect(checkHosts(applyFixes(hosts, report.findings), {version: 't'}).findings).toEqual([])
  })
})

test('a policy reached through a -g of FORWARD (a RETURN in the goto target ends FORWARD): the accepts go before the goto, and applied they work', () => {
  const rules = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:fwd - [0:0]\n-A FORWARD -p tcp -g fwd\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A fwd -d 10.9.9.9/32 -j ACCEPT\n-A fwd -j RETURN\nCOMMIT\n'
  const hosts = editedScenario('statistic-cascade-naive-fixed', 'director', (f, t) => (f === 'iptables-save.txt' ? t + rules : t))
  const report = checkHosts(hosts, {version: 't'})
  const cmds = report.findings.filter((f) => f.rule === 'filter-blocks-vip').flatMap((f) => f.fix?.commands ?? [])
  expect(cmds.length).toBe(3)
  // each one before the goto (the earlier inserts move it down by one each)
  cmds.forEach((c, i) => expect(c).toMatch(new RegExp(`^iptables -t filter -I FORWARD ${i + 1} `)))
  // the replies' ESTABLISHED accept, which sat after the goto, is moved before it
  expect(report.findings.find((f) => f.rule === 'forward-drops-nat-replies')?.fix?.commands).toEqual(['iptables -t filter -D FORWARD 5', 'iptables -t filter -I FORWARD 4 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'])
  expect(checkHosts(applyFixes(hosts, report.findings), {version: 't'}).findings.filter((f) => f.severity === 'error')).toEqual([])
})
