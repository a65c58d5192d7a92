// Regressions from the random nft kernel scenarios (test/kernel/random-nft.kernel.test.ts): each test pins one
// disagreement between trace's nft engine and the kernel that a random ruleset showed, with the kernel source
// that decides it.
import {describe, expect, test} from 'vitest'
import {parseIp, type IpAddr} from '../../src/model/ip.js'
import type {NftTable} from '../../src/model/nft.js'
import {parseNftJson} from '../../src/snapshot/parsers/nft-json.js'
import {runNftChain, type NftEnv} from '../../src/dataplane/nft.js'
import {tcpFlags, type CtView, type Packet} from '../../src/dataplane/packet.js'

const ip = (s: string): IpAddr => parseIp(s)!
const syn: Packet = {family: 4, src: ip('203.0.113.10'), dst: ip('198.51.100.100'), proto: 6, sport: 40000, dport: 80, flags: tcpFlags('S'), mark: 0}
const env = (ct?: CtView): NftEnv => ({addrType: () => 'UNICAST', random: () => 0, ct})

/** One table `ip t` with one base chain `c` (policy accept unless given) holding the rules given as libnftables JSON. */
function chainOf(hook: string, prio: number, rules: unknown[][], policy = 'accept'): NftTable {
  const items: unknown[] = [{table: {family: 'ip', name: 't', handle: 1}}, {chain: {family: 'ip', table: 't', name: 'c', handle: 2, type: 'filter', hook, prio, policy}}]
  rules.forEach((expr, i) => items.push({rule: {family: 'ip', table: 't', chain: 'c', handle: 3 + i, expr}}))
  return parseNftJson(JSON.stringify({nftables: items}), 'nft-ruleset.json').tables[0]!
}
const ctState = (right: unknown, op = 'in') => ({match: {op, left: {ct: {key: 'state'}}, right}})

describe('ct state of a packet without a conntrack entry (nft_ct_get_eval)', () => {
  // a prerouting chain at priority -250 runs before conntrack (-200): the SYN has no entry yet
  const invalidDrop = chainOf('prerouting', -250, [[ctState('invalid'), {drop: null}]])
  const untrackedDrop = chainOf('prerouting', -250, [[ctState('untracked'), {drop: null}]])

  test('no entry and no notrack: the state is invalid, so `ct state invalid drop` before conntrack drops every packet', () => {
    // random nft seed 20261121 (rn121-8/-12 shape): trace said untracked and passed what the kernel dropped
    const r = runNftChain(invalidDrop, invalidDrop.chains.get('c')!, syn, env(undefined))
    expect(r.verdict).toBe('DROP')
    expect(runNftChain(untrackedDrop, untrackedDrop.chains.get('c')!, syn, env(undefined)).verdict).toBe('ACCEPT')
  })

  test('a packet notrack marked is untracked, not invalid', () => {
    const untracked: CtView = {state: 'UNTRACKED', dir: 'ORIGINAL', status: new Set(), mark: 0}
    expect(runNftChain(untrackedDrop, untrackedDrop.chains.get('c')!, syn, env(untracked)).verdict).toBe('DROP')
    expect(runNftChain(invalidDrop, invalidDrop.chains.get('c')!, syn, env(untracked)).verdict).toBe('ACCEPT')
  })
})

describe('iifname / oifname at a hook without that device (nft_meta_get_eval_ifname)', () => {
  // a realserver's output chain (policy drop): its replies are local packets, which have no input device
  const out = chainOf('output', 0, [[{match: {op: '!=', left: {meta: {key: 'iifname'}}, right: 'lo'}}, {accept: null}]], 'drop')
  const reply: Packet = {family: 4, src: ip('10.1.0.10'), dst: ip('203.0.113.10'), proto: 6, sport: 8080, dport: 40000, flags: tcpFlags('SA'), mark: 0}

  test('no input device is the empty name: `iifname != "lo"` matches a local packet (the kernel accepted, trace broke the rule and dropped)', () => {
    const r = runNftChain(out, out.chains.get('c')!, reply, {...env(), oif: 'eth0'})
    expect(r.verdict).toBe('ACCEPT')
    expect(r.policy).toBe(false)
  })

  test('`iifname "lo"` does not match it, nor does `oifname` anything at prerouting', () => {
    const lo = chainOf('output', 0, [[{match: {op: '==', left: {meta: {key: 'iifname'}}, right: 'lo'}}, {drop: null}]])
    expect(runNftChain(lo, lo.chains.get('c')!, reply, {...env(), oif: 'eth0'}).verdict).toBe('ACCEPT')
    const pre = chainOf('prerouting', 0, [[{match: {op: '!=', left: {meta: {key: 'oifname'}}, right: 'eth0'}}, {drop: null}]])
    expect(runNftChain(pre, pre.chains.get('c')!, syn, {...env(), iif: 'eth1'}).verdict).toBe('DROP')
  })
})

describe('fib saddr . iif oif 0 (nft_fib4_eval stores ifindex 0 when the route back does not use the input device)', () => {
  // nft -j prints `oif 0` with the right-hand side "0" (a string), `oif missing` with false
  const rpf = (right: unknown) => chainOf('prerouting', -300, [[{match: {op: '==', left: {fib: {result: 'oif', flags: ['saddr', 'iif']}}, right}}, {drop: null}]])
  const fibEnv = (dev: string | null): NftEnv => ({...env(), iif: 'eth0', fib: () => ({kind: 'oif', dev})})

  test('"0" drops only what has no route back through its input device (trace assumed it matched and dropped every packet)', () => {
    for (const right of ['0', 0, false]) {
      const t = rpf(right)
      const ok = runNftChain(t, t.chains.get('c')!, syn, fibEnv('eth0'))
      expect(ok.verdict, `oif ${JSON.stringify(right)}, route back via eth0`).toBe('ACCEPT')
      expect(ok.assumptions).toEqual([])
      expect(runNftChain(t, t.chains.get('c')!, syn, fibEnv(null)).verdict, `oif ${JSON.stringify(right)}, no route back via eth0`).toBe('DROP')
    }
  })
})
