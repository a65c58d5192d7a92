// The nftables interpreter (src/dataplane/nft.ts) and where nft chains run (nft-hooks.ts), on the nft fixtures
// loaded with the real nft (fixtures/nft/) and on small rulesets. The kernel differential scenarios
// (test/kernel/nft-trace.kernel.test.ts) judge the whole path; these pin each piece.
import {readFileSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseIp, type IpAddr} from '../../src/model/ip.js'
import type {NftRuleset, NftTable} from '../../src/model/nft.js'
import {parseNftJson} from '../../src/snapshot/parsers/nft-json.js'
import {hashInput, jhash, reciprocalScale, runNftChain, type NftEnv} from '../../src/dataplane/nft.js'
import {natLookups, nftHostChains, nftNeedsConntrack} from '../../src/dataplane/nft-hooks.js'
import {HOOK_TABLE, withNftChains} from '../../src/dataplane/hooks.js'
import {tcpFlags, type CtView, type Packet} from '../../src/dataplane/packet.js'
import {parseIptablesSave} from '../../src/snapshot/parsers/iptables-save.js'

const ip = (s: string): IpAddr => parseIp(s)!
const load = (dir: string, o: {iptablesSaveBeside?: boolean} = {}): NftRuleset => parseNftJson(readFileSync(`fixtures/nft/${dir}/nft-ruleset.json`, 'utf8'), 'nft-ruleset.json', o)
const table = (rs: NftRuleset, name: string): NftTable => rs.tables.find((t) => t.name === name)!

function tcp(src: string, sport: number, dst: string, dport: number, flags = 'S', mark = 0): Packet {
  return {family: 4, src: ip(src), dst: ip(dst), proto: 6, sport, dport, flags: tcpFlags(flags), mark}
}
function udp(src: string, sport: number, dst: string, dport: number): Packet {
  return {family: 4, src: ip(src), dst: ip(dst), proto: 17, sport, dport, mark: 0}
}
const ct = (state: CtView['state'], mark = 0, status: string[] = []): CtView => ({state, dir: 'ORIGINAL', status: new Set(status), mark})
function env(o: Partial<NftEnv> = {}): NftEnv {
  return {addrType: () => 'UNICAST', random: () => 0, ...o}
}

/** A ruleset from the JSON of a few rules: one table `ip t`, chains given as [name, base?, rules[]]. */
function ruleset(chains: [string, Record<string, unknown> | undefined, unknown[][]][], sets: unknown[] = []): NftTable {
  const items: unknown[] = [{table: {family: 'ip', name: 't', handle: 1}}]
  let h = 1
  for (const s of sets) items.push(s)
  for (const [name, base] of chains) items.push({chain: {family: 'ip', table: 't', name, handle: ++h, ...(base ?? {})}})
  for (const [name, , rules] of chains) for (const expr of rules) items.push({rule: {family: 'ip', table: 't', chain: name, handle: ++h, expr}})
  return parseNftJson(JSON.stringify({nftables: items}), 'nft-ruleset.json').tables[0]!
}
const BASE_INPUT = {type: 'filter', hook: 'input', prio: 0, policy: 'drop'}
const m = (left: unknown, right: unknown, op = '==') => ({match: {op, left, right}})
const payload = (protocol: string, field: string) => ({payload: {protocol, field}})

describe('firewalld-dr: zones as chains, ct state invalid drop', () => {
  const t = table(load('firewalld-dr'), 'firewalld')
  const fwd = t.chains.get('filter_FORWARD')!
  const e = (state: CtView['state']) => env({iif: 'eth0', oif: 'eth1', ct: ct(state)})

  test('the SYN (ct new) is accepted by the zone policy, through jump and goto', () => {
    const r = runNftChain(t, fwd, tcp('192.0.2.10', 40000, '203.0.113.100', 80), e('NEW'))
    expect(r.verdict).toBe('ACCEPT')
    expect(r.rule!.chain).toBe('filter_FWD_public_allow')
    expect(r.rule!.loc.text).toBe('ip daddr 203.0.113.100 tcp dport 80 accept')
    // every rule whose matches held: the jumps through the zone chains (empty ones return) and the accept
    expect(r.trail.map((x) => x.chain)).toEqual(['filter_FORWARD', 'filter_FORWARD_POLICIES', 'filter_FWD_public', 'filter_FWD_public', 'filter_FWD_public', 'filter_FWD_public', 'filter_FWD_public_allow'])
    expect(r.assumptions).toEqual([])
  })

  test('the client ACK after the unseen SYN/ACK (ct invalid) is dropped by `ct state invalid drop`', () => {
    const r = runNftChain(t, fwd, tcp('192.0.2.10', 40000, '203.0.113.100', 80, '.'), e('INVALID'))
    expect(r.verdict).toBe('DROP')
    expect(r.rule!.loc.text).toBe('ct state invalid drop')
    expect(r.policy).toBe(false)
  })

  test('an established packet is accepted first; another port falls to the zone reject (icmpx admin-prohibited)', () => {
    expect(runNftChain(t, fwd, tcp('192.0.2.10', 40000, '203.0.113.100', 80, '.'), e('ESTABLISHED')).rule!.loc.text).toBe('ct state { established, related } accept')
    const r = runNftChain(t, fwd, tcp('192.0.2.10', 40000, '203.0.113.100', 22), e('NEW'))
    expect(r.verdict).toBe('REJECT')
    expect(r.target).toEqual({kind: 'REJECT', with: 'icmp-admin-prohibited'})
  })

  test('input: `ct status dnat accept` needs the status bit', () => {
    const inp = t.chains.get('filter_INPUT')!
    const dnat = runNftChain(t, inp, tcp('192.0.2.10', 40000, '10.0.0.1', 8080), env({iif: 'eth0', ct: {...ct('NEW'), status: new Set(['DNAT'])}}))
    expect(dnat.rule!.loc.text).toBe('ct status dnat accept')
    const plain = runNftChain(t, inp, tcp('192.0.2.10', 40000, '10.0.0.1', 8080), env({iif: 'eth0', ct: ct('NEW')}))
    expect(plain.verdict).toBe('REJECT')
  })
})

describe('nftlb farm: verdict maps, ct mark, numgen/jhash/symhash maps', () => {
  const t = table(load('nftlb-farm'), 'nftlb')
  const pre = t.chains.get('prerouting')!

  test('vmap on daddr . dport goes to the farm chain; ct mark set; jhash without a seed is an assumption', () => {
    const r = runNftChain(t, pre, tcp('198.51.100.7', 40000, '192.168.0.100', 80), env({ct: ct('NEW')}))
    expect(r.verdict).toBe('NAT')
    expect(r.rule!.chain).toBe('lb01')
    expect(r.ctMark).toBe(0x80000001)
    expect(r.target?.kind).toBe('DNAT')
    expect(['192.168.1.10', '192.168.1.11']).toContain(r.target?.kind === 'DNAT' ? require4(r.target.to[0]!.from) : '')
    expect(r.assumptions.map((a) => a.what).join()).toMatch(/no seed in the ruleset: the kernel chose a random one/)
  })

  test('numgen inc: successive connections take the elements in turn (counter per rule, kept by the caller)', () => {
    const counters = new Map<string, number>()
    const to = () => {
      const r = runNftChain(t, pre, tcp('198.51.100.7', 40000, '192.168.0.100', 443), env({ct: ct('NEW'), numgen: counters}))
      return r.target?.kind === 'DNAT' ? require4(r.target.to[0]!.from) : undefined
    }
    expect([to(), to(), to()]).toEqual(['192.168.1.10', '192.168.1.11', '192.168.1.10'])
  })

  test('seeded jhash is computed; numgen random (port map) is a stated stand-in draw', () => {
    const r = runNftChain(t, pre, tcp('198.51.100.7', 40000, '192.168.0.101', 8080), env({ct: ct('NEW'), random: () => 0.75}))
    const data = hashInput([
      {expr: {kind: 'payload', protocol: 'ip', field: 'saddr'}, value: {t: 'addr', v: ip('198.51.100.7')}},
      {expr: {kind: 'payload', protocol: 'tcp', field: 'sport'}, value: {t: 'int', v: 40000}},
    ])!
    const bucket = reciprocalScale(jhash(data, 0x2a), 3)
    expect(r.target).toMatchObject({kind: 'DNAT', to: [{portFrom: 8081}]})
    expect(require4((r.target as unknown as {to: {from: IpAddr}[]}).to[0]!.from)).toBe(`192.168.1.${20 + bucket}`)
    expect(r.assumptions.map((a) => a.what).join()).toMatch(/numgen random mod 2: a random draw \(lvsdoctor's deterministic stand-in drew 1\)/)
  })

  test('symhash is an assumption; UDP goes through the udp-services map', () => {
    const r = runNftChain(t, pre, udp('198.51.100.7', 5353, '192.168.0.100', 53), env({ct: ct('NEW')}))
    expect(r.rule!.chain).toBe('lb04')
    expect(r.assumptions.map((a) => a.what).join()).toMatch(/symhash mod 2: skb_get_hash_symmetric uses a per-boot random key/)
  })

  test('a service not in the map: no element, the rule breaks, the policy accepts', () => {
    const r = runNftChain(t, pre, tcp('198.51.100.7', 40000, '192.168.0.100', 8443), env({ct: ct('NEW')}))
    expect(r).toMatchObject({verdict: 'ACCEPT', policy: true})
  })

  test('filter: named interval set (prefix and single address) drops; meta mark set ct mark restores', () => {
    const f = t.chains.get('filter')!
    expect(runNftChain(t, f, tcp('192.168.40.9', 1, '192.168.0.100', 80), env({ct: ct('NEW')})).verdict).toBe('DROP')
    expect(runNftChain(t, f, tcp('192.168.200.100', 1, '192.168.0.100', 80), env({ct: ct('NEW')})).verdict).toBe('DROP')
    const ok = runNftChain(t, f, tcp('198.51.100.7', 1, '192.168.0.100', 80, '.'), env({ct: ct('ESTABLISHED', 0x80000002)}))
    expect(ok).toMatchObject({verdict: 'ACCEPT', policy: true})
    expect(ok.packet.mark).toBe(0x80000002)
  })

  test('postrouting: `ct mark 0x80000000/1 masquerade` matches the top bit of the ct mark only', () => {
    const post = t.chains.get('postrouting')!
    expect(runNftChain(t, post, tcp('198.51.100.7', 1, '192.168.1.10', 80), env({ct: ct('NEW', 0x80000003)})).target).toMatchObject({kind: 'MASQUERADE'})
    expect(runNftChain(t, post, tcp('198.51.100.7', 1, '192.168.1.10', 80), env({ct: ct('NEW', 0x3)})).policy).toBe(true)
  })
})

describe('kitchen-sink: relational ops, sets, flags, fib, verdict maps, marks', () => {
  const t = table(load('kitchen-sink'), 'ldn_ks')
  const input = t.chains.get('input')!
  const run = (p: Packet, o: Partial<NftEnv> = {}) => runNftChain(t, input, p, env({ct: ct('NEW'), iif: 'eth9', ...o}))

  test('ct state established,related is a flag test (implicit op)', () => {
    expect(run(tcp('1.1.1.1', 1, '2.2.2.2', 9), {ct: ct('RELATED')}).rule!.loc.text).toBe('ct state established,related accept')
  })
  test('ct state { new, untracked } with tcp dport 22', () => {
    expect(run(tcp('1.1.1.1', 1, '2.2.2.2', 22)).rule!.loc.text).toBe('ct state { new, untracked } tcp dport 22 accept')
  })
  test('interface wildcard: iifname "ldn*"', () => {
    expect(run(tcp('1.1.1.1', 1, '2.2.2.2', 9), {iif: 'ldn-x'}).rule!.loc.text).toBe('iifname "ldn*" accept')
  })
  test('interval set @allowed4 (a range element) and a port set with a range', () => {
    expect(run(tcp('192.168.1.15', 1, '2.2.2.2', 8050)).rule!.loc.text).toBe('ip saddr @allowed4 tcp dport { 80, 443, 8000-8100 } accept')
  })
  test('!= prefix, and < on ports', () => {
    expect(run(tcp('11.0.0.1', 1, '2.2.2.2', 3306)).rule!.loc.text).toBe('ip saddr != 10.0.0.0/8 tcp dport 3306 drop')
    expect(run(tcp('10.0.0.1', 1, '2.2.2.2', 1000, '.')).rule!.loc.text).toBe('tcp dport < 1024 accept')
    expect(run(tcp('10.0.0.1', 2000, '2.2.2.2', 3306, '.')).rule!.loc.text).toBe('tcp sport > 1023 accept')
  })
  test('the limit is assumed not exceeded (stated); `limit rate over` then does not match', () => {
    const r = run(udp('10.0.0.1', 1, '2.2.2.2', 1500))
    expect(r.trail.some((x) => x.loc.text.startsWith('udp dport 1000-2000 log'))).toBe(true)
  })
  test('verdict map on ip daddr: drop, jump', () => {
    expect(run(udp('10.0.0.1', 2000, '10.9.0.2', 3000)).rule!.loc.text).toBe('ip daddr vmap @dispatch')
    expect(run(udp('10.0.0.1', 2000, '10.9.0.2', 3000)).verdict).toBe('DROP')
  })
  test('fib daddr type local, from the host', () => {
    const r = run(udp('10.0.0.1', 2000, '10.50.0.1', 3000), {addrType: (a) => (a.value === ip('10.50.0.1').value ? 'LOCAL' : 'UNICAST')})
    expect(r.rule!.loc.text).toBe('fib daddr type local accept')
  })
})

describe('small rulesets', () => {
  test('jump returns to the next rule, goto does not; return in the base chain applies the policy', () => {
    const t = ruleset([
      ['in', BASE_INPUT, [[{jump: {target: 'sub'}}], [m(payload('tcp', 'dport'), 22), {accept: null}], [{goto: {target: 'sub2'}}], [{accept: null}]]],
      ['sub', undefined, [[m(payload('tcp', 'dport'), 80), {accept: null}]]],
      ['sub2', undefined, [[m(payload('tcp', 'dport'), 81), {return: null}], [{drop: null}]]],
    ])
    const inp = t.chains.get('in')!
    expect(runNftChain(t, inp, tcp('1.1.1.1', 1, '2.2.2.2', 80), env()).rule!.chain).toBe('sub')
    expect(runNftChain(t, inp, tcp('1.1.1.1', 1, '2.2.2.2', 22), env()).rule!.chain).toBe('in')
    // goto sub2: 81 returns to... nothing (goto left no frame): the base chain's policy
    expect(runNftChain(t, inp, tcp('1.1.1.1', 1, '2.2.2.2', 81), env())).toMatchObject({verdict: 'DROP', policy: true})
    expect(runNftChain(t, inp, tcp('1.1.1.1', 1, '2.2.2.2', 82), env()).rule!.chain).toBe('sub2')
  })

  test('a transport field of another protocol never matches, not even with !=', () => {
    const t = ruleset([['in', BASE_INPUT, [[m(payload('tcp', 'dport'), 22, '!='), {accept: null}]]]])
    expect(runNftChain(t, t.chains.get('in')!, udp('1.1.1.1', 1, '2.2.2.2', 53), env()).policy).toBe(true)
    expect(runNftChain(t, t.chains.get('in')!, tcp('1.1.1.1', 1, '2.2.2.2', 53), env()).verdict).toBe('ACCEPT')
  })

  test('mark arithmetic: set, |, ^, & and ct mark set meta mark', () => {
    const mk = (value: unknown) => ({mangle: {key: {meta: {key: 'mark'}}, value}})
    const t = ruleset([
      ['in', {...BASE_INPUT, policy: 'accept'}, [[mk(0x10)], [mk({'|': [{meta: {key: 'mark'}}, 0x4001]})], [mk({'^': [{meta: {key: 'mark'}}, 0x1]})], [mk({'&': [{meta: {key: 'mark'}}, 0xff00]})], [{mangle: {key: {ct: {key: 'mark'}}, value: {meta: {key: 'mark'}}}}]]],
    ])
    const r = runNftChain(t, t.chains.get('in')!, tcp('1.1.1.1', 1, '2.2.2.2', 1), env({ct: ct('NEW')}))
    expect(r.packet.mark).toBe(0x4000)
    expect(r.ctMark).toBe(0x4000)
  })

  test('ct mark set on an untracked packet changes nothing; ct mark of an untracked packet is absent (rule breaks)', () => {
    const t = ruleset([['in', {...BASE_INPUT, policy: 'accept'}, [[{mangle: {key: {ct: {key: 'mark'}}, value: 7}}], [m({ct: {key: 'mark'}}, 0), {drop: null}]]]])
    const r = runNftChain(t, t.chains.get('in')!, tcp('1.1.1.1', 1, '2.2.2.2', 1), env({ct: ct('UNTRACKED')}))
    expect(r).toMatchObject({verdict: 'ACCEPT', policy: true, ctMark: 0})
  })

  test('dnat to a map of address . port (one map gives both)', () => {
    const t = ruleset([
      ['pre', {type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept'}, [[{dnat: {family: 'ip', addr: {map: {key: payload('tcp', 'dport'), data: {set: [[80, {concat: ['10.1.0.10', 8080]}]]}}}}}]]],
    ])
    const r = runNftChain(t, t.chains.get('pre')!, tcp('1.1.1.1', 1, '2.2.2.2', 80), env({ct: ct('NEW')}))
    expect(r.target).toMatchObject({kind: 'DNAT', to: [{from: ip('10.1.0.10'), portFrom: 8080}]})
  })

  test('large sets: exact elements by hash, ranges and prefixes by scan, concatenations with symbolic protocols', () => {
    const elems: unknown[] = []
    for (let i = 0; i < 200; i++) elems.push({concat: [`10.0.${i >> 8}.${i & 255}`, 'tcp', 1000 + i]})
    elems.push({concat: [{prefix: {addr: '10.9.0.0', len: 16}}, 'udp', {range: [5000, 5010]}]})
    const key = {concat: [payload('ip', 'daddr'), {meta: {key: 'l4proto'}}, payload('th', 'dport')]}
    const t = ruleset([['in', BASE_INPUT, [[m(key, '@svc'), {accept: null}]]]], [{set: {family: 'ip', table: 't', name: 'svc', handle: 1, type: ['ipv4_addr', 'inet_proto', 'inet_service'], flags: ['interval'], elem: elems}}])
    const v = (p: Packet) => runNftChain(t, t.chains.get('in')!, p, env()).verdict
    expect(v(tcp('1.1.1.1', 1, '10.0.0.150', 1150))).toBe('ACCEPT')
    expect(v(tcp('1.1.1.1', 1, '10.0.0.150', 1151))).toBe('DROP')
    expect(v(udp('1.1.1.1', 1, '10.0.0.150', 1150))).toBe('DROP')
    expect(v(udp('1.1.1.1', 1, '10.9.3.4', 5005))).toBe('ACCEPT')
    expect(v(udp('1.1.1.1', 1, '10.9.3.4', 5011))).toBe('DROP')
  })

  test('reject types per family (nft_reject_icmp_code): default, icmpx, tcp reset', () => {
    const t = ruleset([['in', BASE_INPUT, [[m(payload('tcp', 'dport'), 1), {reject: null}], [m(payload('tcp', 'dport'), 2), {reject: {type: 'icmpx', expr: 'no-route'}}], [m(payload('tcp', 'dport'), 3), {reject: {type: 'tcp reset'}}]]]])
    const w = (port: number) => (runNftChain(t, t.chains.get('in')!, tcp('1.1.1.1', 1, '2.2.2.2', port), env()).target as {with: string}).with
    expect([w(1), w(2), w(3)]).toEqual(['icmp-port-unreachable', 'icmp-net-unreachable', 'tcp-reset'])
  })
})

describe('iptables-nft rules (bare xt expressions)', () => {
  test('without iptables-save beside, every xt expression is an assumption: not analysable', () => {
    const rs = load('iptables-nft')
    expect(rs.fullyAnalysable).toBe(false)
    const nat = rs.tables.find((t) => t.family === 'ip' && t.name === 'nat')!
    const r = runNftChain(nat, nat.chains.get('PREROUTING')!, tcp('198.51.100.7', 40000, '203.0.113.100', 80), env({ct: ct('NEW')}))
    expect(r.assumptions.map((a) => a.what).join('\n')).toMatch(/xt (match|target) \S+ \(made by iptables-nft; nft -j prints no parameters, and no iptables-save is beside the ruleset\): not analysable/)
  })

  test('with an nf_tables iptables-save beside, those tables are left to the iptables view', () => {
    const rs = load('iptables-nft', {iptablesSaveBeside: true})
    const chains = nftHostChains(rs, {iptablesBeside: true})
    expect(chains.skipped.map((t) => `${t.family} ${t.name}`)).toContain('ip nat')
    expect(chains.chainCount).toBe(0)
  })
})

describe('hooks: nft chains at their priority beside the kernel entries', () => {
  test('a mangle-priority chain runs with mangle; equal priority: the nft chain first; nat chains are not hook entries', () => {
    const t = table(load('kitchen-sink'), 'ldn_ks')
    const chains = nftHostChains({tables: [t]} as unknown as NftRuleset, {iptablesBeside: false})
    const pre = withNftChains(HOOK_TABLE.PREROUTING, chains.byHook.PREROUTING).map((e) => (e.fn.kind === 'table' ? e.fn.table : e.fn.kind === 'nft' ? `nft:${e.fn.chain.name}` : e.fn.kind))
    expect(pre).toEqual(['nft:raw_pre', 'raw', 'nft:pre_num', 'conntrack-in', 'mangle', 'nft:mangle_pre', 'nat', 'nft:pre_ip_sec'])
    expect(chains.natByHook.PREROUTING.map((c) => c.chain.name)).toEqual(['nat_pre'])
    expect(chains.natByHook.POSTROUTING.map((c) => c.priority)).toEqual([95])
  })

  test('nat lookups: nft nat chains and iptables nat in priority order (the nft chain first at a tie)', () => {
    const t = table(load('kitchen-sink'), 'ldn_ks')
    const chains = nftHostChains({tables: [t]} as unknown as NftRuleset, {iptablesBeside: false})
    const ipt = parseIptablesSave('*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.1\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n', 'iptables-save.txt', 4).tables.get('nat')
    expect(natLookups('PREROUTING', ipt, chains).map((l) => l.kind)).toEqual(['nft', 'ipt'])
    expect(natLookups('POSTROUTING', ipt, chains).map((l) => `${l.kind}${l.priority}`)).toEqual(['nft95', 'ipt100'])
  })

  test('netdev egress chains are found; their ARP rules never match an IP packet', () => {
    const rs = load('fullnat-gateway')
    const chains = nftHostChains(rs, {iptablesBeside: false})
    expect(chains.egress.map((c) => c.chain.name)).toEqual(['egress'])
    const c = chains.egress[0]!
    expect(runNftChain(c.table, c.chain, tcp('10.5.5.201', 22, '192.0.2.10', 40000), env({oif: 'eth1.100'}))).toMatchObject({verdict: 'ACCEPT', policy: true})
    expect(chains.natByHook.POSTROUTING.length + chains.natByHook.PREROUTING.length).toBe(2)
  })

  test('conntrack is loaded by nat chains and ct expressions', () => {
    expect(nftNeedsConntrack(load('fullnat-gateway'), false)).toBe(true)
    const noCt = ruleset([['in', BASE_INPUT, [[m(payload('tcp', 'dport'), 22), {accept: null}]]]])
    expect(nftNeedsConntrack({tables: [noCt]} as unknown as NftRuleset, false)).toBe(false)
  })
})

describe('jhash', () => {
  test('is lookup3 (the reference vectors of lookup3.c)', () => {
    const e = new TextEncoder()
    expect(jhash(new Uint8Array(0), 0)).toBe(0xdeadbeef)
    expect(jhash(new Uint8Array(0), 0xdeadbeef)).toBe(0xbd5b7dde)
    expect(jhash(e.encode('Four score and seven years ago'), 0)).toBe(0x17770551)
    expect(jhash(e.encode('Four score and seven years ago'), 1)).toBe(0xcd628161)
  })

  test('reads ip saddr . tcp sport as nft registers hold them (each part 32-bit aligned, network order)', () => {
    const d = hashInput([
      {expr: {kind: 'payload', protocol: 'ip', field: 'saddr'}, value: {t: 'addr', v: ip('203.0.113.10')}},
      {expr: {kind: 'payload', protocol: 'tcp', field: 'sport'}, value: {t: 'int', v: 40000}},
    ])!
    expect([...d]).toEqual([203, 0, 113, 10, 0x9c, 0x40, 0, 0])
    // the bucket the kernel scenario nft-jhash-farm confirms (mod 8, seed 0x2a)
    expect(reciprocalScale(jhash(d, 0x2a), 8)).toBe(7)
  })
})

function require4(a: IpAddr | undefined): string {
  if (!a) return ''
  const v = Number(a.value)
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
}
