// The rule engine on nft rulesets (src/rules/engine/nft-view.ts, nft-firewall.ts): the iptables view of nft
// tables, nft chains and iptables tables of one host in hook order, DNAT service discovery in nftlb farms, and
// fixes in nft syntax.
import {readFileSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {HostView} from '../../src/rules/engine/host.js'
import {ctView} from '../../src/rules/engine/ctmodel.js'
import {flowPacket} from '../../src/rules/engine/packets.js'
import {describeBackend, describeService, world} from '../../src/rules/engine/world.js'
import {NftFirewall, selectorText, shellQuote, specToNft} from '../../src/rules/engine/nft-firewall.js'
import {nftShadows, shadowOf} from '../../src/rules/engine/nft-view.js'
import {checkHosts} from '../../src/services/check.js'
import {renderFixes} from '../../src/rules/engine/fix.js'

const manifest = (host: string, role = 'director') => JSON.stringify({format: 'lvsdoctor-snapshot/1', host, role})
function host(name: string, files: Record<string, string>, role = 'director'): HostSnapshot {
  return hostFromFiles(name, `test:${name}`, new Map([['manifest.json', manifest(name, role)], ...Object.entries(files)]))
}
/** nft -j JSON of one table from [chain, base, rules (JSON statements)] */
function nftJson(family: string, table: string, chains: [string, Record<string, unknown> | undefined, unknown[][]][]): string {
  const items: unknown[] = [{metainfo: {json_schema_version: 1}}, {table: {family, name: table, handle: 1}}]
  let h = 1
  for (const [name, base] of chains) items.push({chain: {family, table, name, handle: ++h, ...(base ?? {})}})
  for (const [name, , rules] of chains) for (const expr of rules) items.push({rule: {family, table, chain: name, handle: ++h, expr}})
  return JSON.stringify({nftables: items})
}
const m = (left: unknown, right: unknown, op = '==') => ({match: {op, left, right}})
const dport = (n: number) => m({payload: {protocol: 'tcp', field: 'dport'}}, n)
const ip = (s: string) => parseIp(s)!

describe('the iptables view of an nft table', () => {
  const fw = host('r', {'nft-ruleset.json': readFileSync('fixtures/nft/firewalld-dr/nft-ruleset.json', 'utf8')})
  const shadows = nftShadows(fw.nft!, {iptablesBeside: false})

  test('base chains go to the table of their type and priority, under their hook; regular chains keep their names', () => {
    expect(shadows.length).toBe(1)
    const rs = shadows[0]!.ruleset
    expect([...rs.tables.keys()].sort()).toEqual(['filter', 'mangle', 'nat'])
    expect(shadows[0]!.bases.map((b) => `${b.cls}/${b.hook}=${b.chain.name}`).sort()).toEqual([
      'filter/FORWARD=filter_FORWARD', 'filter/INPUT=filter_INPUT', 'filter/OUTPUT=filter_OUTPUT', 'filter/PREROUTING=filter_PREROUTING',
      'mangle/PREROUTING=mangle_PREROUTING', 'nat/POSTROUTING=nat_POSTROUTING', 'nat/PREROUTING=nat_PREROUTING',
    ])
    const input = rs.tables.get('filter')!.chains.get('INPUT')!
    expect(input.builtin).toBe(true)
    expect(rs.tables.get('filter')!.chains.has('filter_IN_public_allow')).toBe(true)
    // the shadow rules of `ct state { established, related } accept` and `jump filter_INPUT_POLICIES`
    expect(input.rules[0]).toMatchObject({matches: [{kind: 'ctstate', neg: false, states: ['ESTABLISHED', 'RELATED']}], target: {kind: 'ACCEPT'}})
    expect(input.rules.find((r) => r.target?.kind === 'jump')!.target).toEqual({kind: 'jump', chain: 'filter_INPUT_POLICIES'})
    expect(input.rules[0]!.loc.text).toMatch(/^inet firewalld filter_INPUT: ct state \{ established, related \} accept # handle \d+$/)
  })

  test('IPv6-only matches never match (the view is IPv4); what iptables cannot say is an unknown match', () => {
    const pre = shadows[0]!.ruleset.tables.get('filter')!.chains.get('PREROUTING')!
    for (const r of pre.rules) expect(r.matches).toContainEqual({kind: 'proto', neg: true, proto: 'all', name: 'all'})
    const h = host('x', {'nft-ruleset.json': nftJson('ip', 't', [['in', {type: 'filter', hook: 'input', prio: 0, policy: 'accept'}, [[m({meta: {key: 'skuid'}}, 0), {drop: null}]]]])})
    const r = nftShadows(h.nft!, {iptablesBeside: false})[0]!.ruleset.tables.get('filter')!.chains.get('INPUT')!.rules[0]!
    expect(r.matches).toEqual([{kind: 'unknown', module: 'nft', args: ['meta skuid 0 drop']}])
  })

  test('two base chains of one table at the same place make a second view', () => {
    const base = (prio: number) => ({type: 'filter', hook: 'input', prio, policy: 'accept'})
    const h = host('x', {'nft-ruleset.json': nftJson('inet', 't', [['a', base(0), [[dport(1), {drop: null}]]], ['b', base(10), [[dport(2), {drop: null}]]]])})
    const s = nftShadows(h.nft!, {iptablesBeside: false})
    expect(s.map((x) => x.bases.map((b) => b.chain.name))).toEqual([['a'], ['b']])
  })

  test('maps: vmap entries, numgen/jhash maps as statistic cascades with each element\'s share, a mark map last-match-wins', () => {
    const lb = host('lb', {'nft-ruleset.json': readFileSync('fixtures/nft/nftlb-farm/nft-ruleset.json', 'utf8')})
    const nat = nftShadows(lb.nft!, {iptablesBeside: false})[0]!.ruleset.tables.get('nat')!
    const pre = nat.chains.get('PREROUTING')!
    // one rule per element of the services maps (in the order nft lists the elements)
    expect(pre.rules.map((r) => (r.target?.kind === 'goto' ? r.target.chain : '')).sort()).toEqual(['lb01', 'lb02', 'lb03', 'lb04'])
    expect(pre.rules[0]!.matches.map((x) => x.kind)).toEqual(['addr', 'proto', 'port'])
    const lb01 = nat.chains.get('lb01')!.rules
    expect(lb01[0]!.target).toEqual({kind: 'CONNMARK', op: 'xset', value: 0x80000001, mask: 0xffffffff})
    expect(lb01.slice(1).map((r) => [r.matches, r.target?.kind === 'DNAT' ? r.target.to[0]!.from : undefined])).toEqual([
      [[{kind: 'statistic', neg: false, mode: 'random', probability: 0.5}], ip('192.168.1.10')],
      [[{kind: 'statistic', neg: false, mode: 'random', probability: 1}], ip('192.168.1.11')],
    ])
    expect(lb01[1]!.loc.text).toMatch(/# handle \d+ \(element 0-4 : 192\.168\.1\.10\)$/)
  })
})

describe('DNAT services of an nftlb farm', () => {
  const lb = host('lb', {'nft-ruleset.json': readFileSync('fixtures/nft/nftlb-farm/nft-ruleset.json', 'utf8'), 'sysctl.txt': 'net.ipv4.ip_forward = 1\n'})

  test('every farm of the services maps, with the share of each backend', () => {
    const w = world({hosts: [lb]})
    const svc = Object.fromEntries(w.services.map((s) => [describeService(s), s.backends.map((b) => `${describeBackend(b)} ${(b.share ?? 0).toFixed(3)}`)]))
    expect(svc).toEqual({
      'TCP 192.168.0.100:80 (DNAT)': ['192.168.1.10:80 0.500', '192.168.1.11:80 0.500'],
      'TCP 192.168.0.100:443 (DNAT)': ['192.168.1.10:443 0.500', '192.168.1.11:443 0.500'],
      'TCP 192.168.0.101:8080 (DNAT)': ['192.168.1.20:8080 0.333', '192.168.1.21:8080 0.333', '192.168.1.22:8080 0.333'],
      'UDP 192.168.0.100:53 (DNAT)': ['192.168.1.30:53 0.500', '192.168.1.31:53 0.500'],
    })
  })

  test('the farm masquerades by ct mark: no NAT return-path finding, no cascade skew', () => {
    const r = checkHosts([lb], {version: 'x'})
    expect(r.findings.map((f) => f.rule)).toEqual([])
  })
})

describe('nft chains and iptables tables of one host, in hook order', () => {
  const ipt = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 80 -j DROP\nCOMMIT\n'
  const nftAt = (prio: number, verdict: string) => nftJson('inet', 'fw', [['input', {type: 'filter', hook: 'input', prio, policy: 'accept'}, [[dport(80), {[verdict]: null}]]]])
  const syn = flowPacket({src: ip('203.0.113.10'), sport: 40000, dst: ip('192.0.2.100'), dport: 80, proto: 'tcp'}, 'SYN')
  const run = (h: HostSnapshot) => {
    const v = new HostView(h)
    expect(v.fw).toBeInstanceOf(NftFirewall)
    return {v, r: v.fw!.runHook('INPUT', syn, v.env({iif: 'eth0', ct: ctView('NEW')}), true)}
  }

  test('an nft accept at priority -10 does not save the packet from the iptables filter table at 0', () => {
    const {v, r} = run(host('d', {'iptables-save.txt': ipt, 'nft-ruleset.json': nftAt(-10, 'accept')}))
    expect(r.verdict).toBe('DROP')
    expect(r.runs.map((x) => x.decision.loc.file)).toEqual(['nft-ruleset.json', 'iptables-save.txt'])
    expect(shadowOf(r.decision!.ruleset)).toBeUndefined()
    const cmds = renderFixes([{rule: 'x', severity: 'error', host: 'd', title: 't', message: 'm', evidence: [], fix: {summary: 's', ops: v.fw!.fixer.acceptBefore(r.decision!, {dst: {family: 4, value: ip('192.0.2.100').value, len: 32}, proto: 'tcp', dport: 80})}}])[0]!.fix!.commands
    expect(cmds).toEqual(['iptables -t filter -I INPUT 1 -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j ACCEPT'])
  })

  test('an nft drop at priority 10 decides after the iptables accept at 0, and is fixed in nft syntax', () => {
    const ipt2 = ipt.replace('-j DROP', '-j ACCEPT')
    const {v, r} = run(host('d', {'iptables-save.txt': ipt2, 'nft-ruleset.json': nftAt(10, 'drop')}))
    expect(r.verdict).toBe('DROP')
    expect(r.decision!.loc.text).toMatch(/^inet fw input: tcp dport 80 drop # handle \d+$/)
    const ops = v.fw!.fixer.acceptBefore(r.decision!, {dst: {family: 4, value: ip('192.0.2.100').value, len: 32}, proto: 'tcp', dport: 80})
    expect(ops).toEqual([{kind: 'cmd', text: expect.stringMatching(/^nft insert rule inet fw input position \d+ ip daddr 192\.0\.2\.100 tcp dport 80 accept$/)}])
  })
})

describe('fixes in nft syntax', () => {
  test('iptables specifications the rules write, in nft syntax', () => {
    expect(specToNft('-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff', 'mangle', 'PREROUTING')).toBe('meta mark set ct mark')
    expect(specToNft('-m conntrack --ctstate NEW -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff', 'mangle', 'PREROUTING')).toBe('ct state new ct mark set meta mark')
    expect(specToNft('-s 127.0.0.0/8 -d 198.51.100.20/32 -p tcp -m tcp --dport 3197 -j MASQUERADE', 'nat', 'POSTROUTING')).toBe('ip saddr 127.0.0.0/8 ip daddr 198.51.100.20 tcp dport 3197 masquerade')
    expect(specToNft('-o lo -p tcp -m tcp --dport 3306 -j DNAT --to-destination 198.51.100.20:3197', 'nat', 'OUTPUT')).toBe('oifname "lo" tcp dport 3306 dnat to 198.51.100.20:3197')
    expect(specToNft('-d 192.0.2.100/32 -p tcp -m multiport --dports 80,443 -j MARK --set-xmark 0x1/0xffffffff', 'mangle', 'PREROUTING')).toBe('ip daddr 192.0.2.100 th dport { 80, 443 } meta mark set 0x00000001')
    // a shadow rule's evidence text is the nft rule itself; toward OUTPUT the input interface becomes the output one
    expect(specToNft('ip nat prerouting: iifname "lo" tcp dport 3306 dnat to 10.0.0.1:3197 # handle 4', 'nat', 'OUTPUT', true)).toBe('oifname "lo" tcp dport 3306 dnat to 10.0.0.1:3197')
    expect(specToNft('-m recent --rcheck', 'filter', 'INPUT')).toBeUndefined()
  })

  test('selectors and shell quoting', () => {
    expect(selectorText({src: {family: 4, value: ip('10.0.0.0').value, len: 8}, proto: 'udp', dport: 53, oif: 'eth0', mark: 0x20c})).toBe('ip saddr 10.0.0.0/8 oifname "eth0" udp dport 53 meta mark 0x0000020c')
    expect(shellQuote('tcp dport 80 accept')).toBe('tcp dport 80 accept')
    expect(shellQuote('oifname "eth0" masquerade')).toBe(`'oifname "eth0" masquerade'`)
    expect(shellQuote('tcp dport { 80, 443 } accept')).toBe(`'tcp dport { 80, 443 } accept'`)
  })

  test('stateless, new-only and unmarked-only replacements keep the rule and its handle', () => {
    const h = host('d', {'nft-ruleset.json': readFileSync('fixtures/rules/nft-lvs-howto-29.1-dr-state-new/director/nft-ruleset.json', 'utf8')})
    const v = new HostView(h)
    const rs = v.fw!.rulesets[0]!
    const rules = rs.tables.get('filter')!.chains.get('INPUT')!.rules
    const stateful = rules.find((r) => r.loc.text.includes('ct state new tcp dport 80'))!
    expect(v.fw!.fixer.replaceStateless({rule: stateful, ruleset: rs})).toEqual([{kind: 'cmd', text: expect.stringMatching(/^nft replace rule inet filter input handle \d+ tcp dport 80 accept$/)}])
    const lo = rules.find((r) => r.loc.text.includes('iifname "lo"'))!
    expect(v.fw!.fixer.replaceStateless({rule: lo, ruleset: rs})).toBeUndefined()
    expect(v.fw!.fixer.replaceNewOnly(lo, rs)).toEqual([{kind: 'cmd', text: expect.stringMatching(/^nft replace rule inet filter input handle \d+ 'ct state new iifname "lo" accept'$/)}])
    expect(v.fw!.fixer.replaceUnmarkedOnly(lo, rs)).toEqual([{kind: 'cmd', text: expect.stringMatching(/'meta mark 0x00000000 iifname "lo" accept'$/)}])
    expect(v.fw!.fixer.replaceProbability(lo, rs, 0.5)).toBeUndefined()
  })

  test('a chain the fix needs and the table lacks is created first (nat postrouting of an inet filter table)', () => {
    const h = host('d', {'nft-ruleset.json': readFileSync('fixtures/rules/nft-lvs-users-nat-unnat/director/nft-ruleset.json', 'utf8')})
    const v = new HostView(h)
    const ops = v.fw!.fixer.insertAt(v.fw!.rulesets[0]!, 'nat', 'POSTROUTING', Infinity, '-d 10.0.0.11/32 -p tcp -m tcp --dport 8080 -j MASQUERADE')
    expect(ops.map((o) => (o.kind === 'cmd' ? o.text : ''))).toEqual([
      "nft add chain inet filter nat_postrouting '{ type nat hook postrouting priority 100; policy accept; }'",
      'nft add rule inet filter nat_postrouting ip daddr 10.0.0.11 tcp dport 8080 masquerade',
    ])
  })
})
