// The engine's parts: the conntrack model, fix sequencing, rule-text surgery, the multi-host "could not
// verify" behaviour, --ignore, rules/explain.
import {describe, expect, test} from 'vitest'
import {ctStateOf, type CtParams} from '../../src/rules/engine/ctmodel.js'
import {renderFixes, statelessSpec, specTokens, tokenize, type FixOp} from '../../src/rules/engine/fix.js'
import type {RuleFinding} from '../../src/rules/types.js'
import {checkHosts} from '../../src/services/check.js'
import {explainRule, listRules} from '../../src/services/rules.js'
import {UsageError} from '../../src/model/source.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {hostDirs, loadScenario} from './helpers.js'
import {loadSnapshots} from '../../src/snapshot/store.js'

const P = (o: Partial<CtParams>): CtParams => ({vsConntrack: false, tcpLoose: true, method: 'route', proto: 'tcp', ...o})

describe('conntrack model (nf_conntrack_proto_tcp.c, ip_vs_notrack)', () => {
  test('DR/TUN director, vs.conntrack=0: every packet meets conntrack afresh', () => {
    expect(ctStateOf('ipvs-in', 'SYN', P({}))).toBe('NEW')
    expect(ctStateOf('ipvs-in', 'ACK', P({}))).toBe('NEW') // loose pickup, no reply ever seen
    expect(ctStateOf('ipvs-in', 'ACK', P({tcpLoose: false}))).toBe('INVALID')
    expect(ctStateOf('ipvs-in', 'FIN', P({}))).toBe('INVALID') // sNO + FIN = sIV
    expect(ctStateOf('ipvs-out', 'SYN', P({}))).toBe('UNTRACKED')
    // ip_vs_notrack replaces only a conntrack the packet has: an INVALID FIN is tracked again at LOCAL_OUT
    expect(ctStateOf('ipvs-out', 'FIN', P({}))).toBe('INVALID')
    expect(ctStateOf('ipvs-out', 'ACK', P({tcpLoose: false}))).toBe('INVALID')
  })
  test('DR director, vs.conntrack=1: the entry stays SYN_SENT', () => {
    expect(ctStateOf('ipvs-in', 'ACK', P({vsConntrack: true}))).toBe('INVALID') // sSS + ACK = sIV
    expect(ctStateOf('ipvs-in', 'FIN', P({vsConntrack: true}))).toBe('INVALID')
  })
  test('TUN: the IPIP packet in OUTPUT is a new generic flow', () => {
    expect(ctStateOf('ipvs-out', 'FIN', P({method: 'tunnel'}))).toBe('NEW')
  })
  test('LVS-NAT: ESTABLISHED with vs.conntrack=1, both FINs included (IPVS lab, 6.1: nat-output-stateful-ct1)', () => {
    const m = P({method: 'masq', vsConntrack: true})
    expect(ctStateOf('ipvs-in', 'DATA', m)).toBe('ESTABLISHED')
    expect(ctStateOf('ipvs-out', 'SYN', m)).toBe('NEW')
    expect(ctStateOf('ipvs-out', 'LASTFIN', m)).toBe('ESTABLISHED')
    expect(ctStateOf('ipvs-in', 'LASTFIN', m)).toBe('ESTABLISHED')
    // vs.conntrack=0: the first SYN goes out UNTRACKED, the last FIN/ACK INVALID (LVS-HOWTO 29.15 on 6.1)
    expect(ctStateOf('ipvs-out', 'SYN', P({method: 'masq'}))).toBe('UNTRACKED')
    expect(ctStateOf('ipvs-in', 'LASTFIN', P({method: 'masq'}))).toBe('INVALID')
    expect(ctStateOf('ipvs-out', 'LASTFIN', P({method: 'masq'}))).toBe('INVALID')
    expect(ctStateOf('ipvs-reply', 'SYNACK', m)).toBe('ESTABLISHED')
    expect(ctStateOf('ipvs-reply', 'SYNACK', P({method: 'masq'}))).toBe('INVALID') // sNO + SYN/ACK = sIV
  })
})

describe('rule text', () => {
  test('tokenize keeps quoted comments whole', () => {
    expect(tokenize('-A X -m comment --comment "a b \\"c\\"" -j ACCEPT')).toEqual(['-A', 'X', '-m', 'comment', '--comment', '"a b \\"c\\""', '-j', 'ACCEPT'])
  })
  test('statelessSpec drops state, ctstate, --syn and flag conditions only', () => {
    const s = (t: string) => statelessSpec(specTokens(t)).join(' ')
    expect(s('-A INPUT -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT')).toBe('-p tcp -m tcp --dport 80 -j ACCEPT')
    expect(s('-A I -p tcp -m conntrack --ctstate NEW --ctorigdst 10.0.0.1 -j ACCEPT')).toBe('-p tcp -m conntrack --ctorigdst 10.0.0.1 -j ACCEPT')
    expect(s('-A I -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT')).toBe('-p tcp -j ACCEPT')
    expect(s('-A I -p tcp -m tcp --dport 80 --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT')).toBe('-p tcp -m tcp --dport 80 -j ACCEPT')
  })
})

describe('fix sequencing: positions stay exact when the findings are applied in report order', () => {
  const ins = (pos: number, spec: string): FixOp => ({kind: 'ipt', bin: 'iptables', table: 'filter', chain: 'INPUT', op: 'I', pos, chainLen: 5, spec})
  const f = (host: string, ops: FixOp[]): RuleFinding => ({rule: 'x', severity: 'error', host, title: 't', message: 'm', evidence: [], fix: {summary: 's', ops}})
  test('an insertion shifts the later findings\' positions; other hosts and chains are separate', () => {
    const out = renderFixes([
      f('d', [ins(3, 'A')]),
      f('d', [ins(3, 'B'), {kind: 'ipt', bin: 'iptables', table: 'filter', chain: 'INPUT', op: 'R', pos: 4, chainLen: 5, spec: 'C'}]),
      f('e', [ins(3, 'D')]),
      f('d', [{kind: 'ipt', bin: 'iptables', table: 'filter', chain: 'INPUT', op: 'D', pos: 1, chainLen: 5}, ins(6, 'E'), {kind: 'sysctl', key: 'net.ipv4.ip_forward', value: '1'}]),
    ])
    expect(out.map((x) => x.fix?.commands)).toEqual([
      ['iptables -t filter -I INPUT 3 A'],
      ['iptables -t filter -I INPUT 4 B', 'iptables -t filter -R INPUT 6 C'],
      ['iptables -t filter -I INPUT 3 D'],
      ['iptables -t filter -D INPUT 1', 'iptables -t filter -A INPUT E', 'sysctl -w net.ipv4.ip_forward=1'],
    ])
  })
  test('an operation an earlier finding already gives is referenced, not repeated, and not applied twice', () => {
    const g = (rule: string, ops: FixOp[]): RuleFinding => ({...f('d', ops), rule, fix: {summary: `fix ${rule}`, ops}})
    const rep = (pos: number, spec: string): FixOp => ({kind: 'ipt', bin: 'iptables', table: 'filter', chain: 'INPUT', op: 'R', pos, chainLen: 5, spec})
    const ct: FixOp = {kind: 'sysctl', key: 'net.ipv4.vs.conntrack', value: '1'}
    const out = renderFixes([
      g('a', [ins(2, 'A'), rep(4, 'S'), ct]),
      g('b', [rep(4, 'S')]),
      g('c', [ins(2, 'A'), ins(5, 'C'), ct, ct]),
      {...g('d', [ct]), host: 'e'},
    ])
    expect(out.map((x) => x.fix?.commands)).toEqual([
      ['iptables -t filter -I INPUT 2 A', 'iptables -t filter -R INPUT 5 S', 'sysctl -w net.ipv4.vs.conntrack=1'],
      [],
      // the first insert before original rule 2 is not made again: rule 5 is still the 6th
      ['iptables -t filter -I INPUT 6 C'],
      ['sysctl -w net.ipv4.vs.conntrack=1'],
    ])
    expect(out[1]!.fix?.summary).toBe('fix b — same fix as a above, nothing more to run')
    expect(out[2]!.fix?.summary).toBe('fix c — the new rule in filter INPUT, net.ipv4.vs.conntrack=1: same fix as a above, not repeated here')
    expect(out[3]!.fix?.summary).toBe('fix d')
  })
})

describe('multi-host: a director alone says what it could not verify', () => {
  test('DR without realserver snapshots: info findings naming the missing hosts', () => {
    const dir = hostDirs('lvs-howto-29.1-dr-state-new').find((d) => d.endsWith('/director'))!
    const report = checkHosts(loadSnapshots([dir]), {version: 't'})
    const arp = report.findings.find((x) => x.rule === 'dr-realserver-arp')
    expect(arp?.severity).toBe('info')
    expect(arp?.unverified?.join('\n')).toMatch(/192\.0\.2\.11.*no snapshot/)
    expect(report.findings.find((x) => x.rule === 'rp-filter-asymmetric')?.severity).toBe('info')
    expect(report.findings.filter((x) => x.rule === 'dr-stateful-filter').map((x) => x.severity)).toEqual(['error', 'error'])
  })
  test('LVS-NAT without the realserver: the return route is not verified', () => {
    const dir = hostDirs('lvs-users-nat-unnat').find((d) => d.endsWith('/director'))!
    const report = checkHosts(loadSnapshots([dir]), {version: 't'})
    const f = report.findings.find((x) => x.rule === 'nat-reply-bypasses-director')
    expect(f?.severity).toBe('info')
    expect(f?.unverified?.[0]).toMatch(/no snapshot of the host owning 10\.0\.0\.11/)
  })
  test('the realserver is the host owning the destination address (evidence from it carries its name)', () => {
    const report = checkHosts(loadScenario('lvs-users-nat-unnat'), {version: 't'})
    const f = report.findings.find((x) => x.rule === 'nat-reply-bypasses-director')!
    expect(f.evidence.some((e) => e.host === 'rs1' && e.file === 'ip-route.json')).toBe(true)
  })
})

describe('fwmark: a later MARK overwrites the service mark', () => {
  test('fires with the overwriting rule and guards it', () => {
    const hosts = loadScenario('lvs-howto-29.8-fwmark-after-accept-fixed')
    const d = hosts.find((h) => h.name === 'director')!
    const text = d.raw.get('iptables-save.txt')!.replace('-A PREROUTING -d 192.0.2.100/32 -j ACCEPT', '-A PREROUTING -d 192.0.2.100/32 -p tcp -j MARK --set-xmark 0x7/0xffffffff\n-A PREROUTING -d 192.0.2.100/32 -j ACCEPT')
    const edited = hostFromFiles('director', d.source, new Map([...d.raw, ['iptables-save.txt', text]]))
    const report = checkHosts([edited, ...hosts.filter((h) => h !== d)], {version: 't'})
    const f = report.findings.find((x) => x.rule === 'fwmark-service-unmarked')!
    expect(f.message).toMatch(/later sets the mark to 0x7/)
    expect(f.fix?.commands).toEqual(['iptables -t mangle -R PREROUTING 3 -d 192.0.2.100/32 -p tcp -m mark --mark 0x0 -j MARK --set-xmark 0x7/0xffffffff'])
  })
})

describe('statistic cascades', () => {
  test('first match wins: 0.33/0.33/0.34 gives 33%, 22.1%, 15.3% and 29.6% to no backend', () => {
    const report = checkHosts(loadScenario('statistic-cascade-naive'), {version: 't'})
    const f = report.findings.find((x) => x.rule === 'statistic-cascade-skew')!
    expect(f.message).toMatch(/10\.0\.0\.11:80 \(iptables-save\.txt:7\): 33\.0%/)
    expect(f.message).toMatch(/10\.0\.0\.12:80 \(iptables-save\.txt:8\): 22\.1%/)
    expect(f.message).toMatch(/10\.0\.0\.13:80 \(iptables-save\.txt:9\): 15\.3%/)
    expect(f.message).toMatch(/no backend .*: 29\.6%/)
  })
})

describe('--ignore, rules, explain', () => {
  test('--ignore drops a rule; an unknown id is a usage error listing the rules', () => {
    const hosts = loadScenario('lvs-howto-29.14-rh-firewall')
    expect(checkHosts(hosts, {version: 't', ignore: ['reject-on-one-way-flow']}).findings.map((f) => f.rule)).toEqual(['dr-stateful-filter'])
    expect(() => checkHosts(hosts, {version: 't', ignore: ['no-such-rule']})).toThrow(/no such rule.*dr-stateful-filter/)
  })
  test('rules lists the catalogue; explain prints the doc, or exits 2 on an unknown id', () => {
    expect(listRules().map((r) => r.id)).toContain('localhost-dnat')
    expect(explainRule('localhost-dnat')).toMatch(/^# localhost-dnat\n/)
    expect(() => explainRule('nope')).toThrow(UsageError)
    expect(() => explainRule('nope')).toThrow(/Rules: dr-stateful-filter, reject-on-one-way-flow/)
  })
})

describe('firewall semantics: user chains, goto, shadowing', () => {
  const edit = (name: string, host: string, fn: (t: string) => string) => {
    const hosts = loadScenario(name)
    const h = hosts.find((x) => x.name === host)!
    const copy = hostFromFiles(h.name, h.source, new Map([...h.raw, ['iptables-save.txt', fn(h.raw.get('iptables-save.txt')!)]]))
    return hosts.map((x) => (x === h ? copy : x))
  }
  test('a goto into the RH chain behaves like the jump (no return to INPUT)', () => {
    const hosts = edit('lvs-howto-29.14-rh-firewall', 'director', (t) => t.replace('-A INPUT -j RH-Firewall-1-INPUT', '-A INPUT -g RH-Firewall-1-INPUT'))
    const r = checkHosts(hosts, {version: 't'})
    expect(r.findings.filter((f) => f.host === 'director').map((f) => f.rule).sort()).toEqual(['dr-stateful-filter', 'reject-on-one-way-flow'])
  })
  test('a stateless accept shadowed by an earlier DROP does not count as reached', () => {
    const hosts = edit('filter-blocks-vip-fixed', 'director', (t) => t.replace('-A INPUT -i lo -j ACCEPT', '-A INPUT -i lo -j ACCEPT\n-A INPUT -d 192.0.2.100/32 -j DROP'))
    const f = checkHosts(hosts, {version: 't'}).findings.find((x) => x.rule === 'filter-blocks-vip')!
    expect(f.severity).toBe('error')
    expect(f.evidence.map((e) => e.text)).toContain('-A INPUT -d 192.0.2.100/32 -j DROP')
    expect(f.fix?.commands).toEqual(['iptables -t filter -I INPUT 2 -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j ACCEPT'])
  })
  test('an INVALID drop before a stateless accept is found, and the fix goes before it', () => {
    const hosts = edit('lvs-howto-29.1-dr-state-new-fixed', 'director', (t) => t.replace('-A INPUT -i lo -j ACCEPT', '-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate INVALID -j DROP'))
    const fs = checkHosts(hosts, {version: 't'}).findings.filter((x) => x.rule === 'dr-stateful-filter')
    expect(fs.length).toBe(2)
    expect(fs[0]!.message).toMatch(/FIN\/ACK \(ctstate INVALID\) dropped at INPUT by rule 2 of filter INPUT, DROP \(iptables-save\.txt:\d+\)/)
    expect(fs.map((f) => f.fix?.commands)).toEqual([
      ['iptables -t filter -I INPUT 2 -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j ACCEPT'],
      ['iptables -t filter -I INPUT 3 -d 192.0.2.100/32 -p tcp -m tcp --dport 443 -j ACCEPT'],
    ])
  })
})
