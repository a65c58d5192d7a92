// filter-blocks-vip beyond the SYN at INPUT, for IPVS services (the IPVS lab's random scenarios, where check was
// silent: seeds 13 #1, 34 #5, 35 #10 and 14 #7): what IPVS sends toward a realserver goes out through LOCAL_OUT, so
// filter OUTPUT sees it; and with vs.conntrack=1 the client's later packets are ESTABLISHED at INPUT.
import {describe, expect, test} from 'vitest'
import {applyFixes, editedScenario, findingsOf} from './helpers.js'
import {checkHosts} from '../../src/services/check.js'

const mine = findingsOf('filter-blocks-vip')
const withFilter = (rules: string, sysctl = (t: string) => t) =>
  editedScenario('lvs-nat-forward-drop-fixed', 'director', (f, t) => (f === 'iptables-save.txt' ? rules : f === 'sysctl.txt' ? sysctl(t) : t))

describe('filter-blocks-vip after the SYN passed INPUT (IPVS)', () => {
  test('an OUTPUT policy of DROP drops what IPVS sends toward the realserver: an accept toward it; applied, nothing is left', () => {
    const hosts = withFilter('*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A OUTPUT -o lo -j ACCEPT\nCOMMIT\n')
    const f = mine(hosts)
    expect(f.map((x) => x.fix?.commands)).toEqual([['iptables -t filter -A OUTPUT -d 10.0.0.11/32 -p tcp -m tcp --dport 80 -j ACCEPT']])
    expect(f[0]!.message).toMatch(/pass filter INPUT, but .*after IPVS, toward 10\.0\.0\.11:80 \(IPVS sends it through LOCAL_OUT\).*\nNo connection reaches a realserver\./s)
    const report = checkHosts(hosts, {version: 't'})
    expect(checkHosts(applyFixes(hosts, report.findings), {version: 't'}).findings.filter((x) => x.rule === 'filter-blocks-vip')).toEqual([])
  })

  test('vs.conntrack=1 and an INPUT that accepts only --state NEW: the ACK and request are ESTABLISHED there and dropped', () => {
    const hosts = withFilter('*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n')
    const f = mine(hosts)
    expect(f.map((x) => x.fix?.commands)).toEqual([['iptables -t filter -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT']])
    expect(f[0]!.message).toMatch(/before IPVS: handshake ACK \(ctstate ESTABLISHED\) dropped at INPUT.*\nConnections open and then stall\./s)
  })

  test('quiet: an OUTPUT that accepts the realserver, and with vs.conntrack=0 the same INPUT (the later packets are picked up as NEW)', () => {
    expect(mine(withFilter('*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A OUTPUT -d 10.0.0.0/24 -j ACCEPT\nCOMMIT\n'))).toEqual([])
    const ct0 = (t: string) => t.replace('net.ipv4.vs.conntrack = 1', 'net.ipv4.vs.conntrack = 0')
    const f = mine(withFilter('*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n', ct0))
    expect(f.filter((x) => !x.hiddenBehind)).toEqual([])
    // ipvs-conntrack-off's fix (vs.conntrack=1) makes the later packets ESTABLISHED at INPUT: judged after that fix, they are dropped
    expect(f.map((x) => [x.hiddenBehind, x.fix?.commands])).toEqual([[['ipvs-conntrack-off@director'], ['iptables -t filter -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT']]])
  })
})
