import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {formatIp, formatPrefix, parseIp} from '../../src/model/ip.js'
import {
  formatNftBaseChain,
  formatNftPriority,
  formatNftRule,
  formatNftRuleset,
  parseNftPriority,
  type NftChain,
  type NftExpr,
  type NftFamily,
  type NftRule,
  type NftRuleset,
  type NftSetElem,
  type NftStmt,
} from '../../src/model/nft.js'
import {ParseError} from '../../src/model/source.js'
import {parseNftJson} from '../../src/snapshot/parsers/nft-json.js'
import {generateKubeProxyNft, nftStringify} from '../../bench/nft-kube-gen.js'
import {FIXTURES, fixtureDirs, listingRules, normalizeRule, sameRuleText, sourceRules} from './nft-netns.js'

const FILE = 'nft-ruleset.json'
const read = (dir: string, f: string): string => readFileSync(join(FIXTURES, dir, f), 'utf8')
const load = (dir: string, opts = {}): NftRuleset => parseNftJson(read(dir, FILE), FILE, opts)

function table(rs: NftRuleset, family: string, name: string) {
  const t = rs.tables.find((x) => x.family === family && x.name === name)
  if (!t) throw new Error(`no table ${family} ${name}`)
  return t
}
function chain(rs: NftRuleset, family: string, t: string, name: string): NftChain {
  const c = table(rs, family, t).chains.get(name)
  if (!c) throw new Error(`no chain ${name}`)
  return c
}
function allRules(rs: NftRuleset): NftRule[] {
  return rs.tables.flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules))
}

/** Every expression and statement kind in a tree, for coverage checks and to find `unknown` ones. */
function kinds(x: NftStmt | NftExpr | NftSetElem, out = new Set<string>()): Set<string> {
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk)
    else if (v && typeof v === 'object' && !(v instanceof Map)) {
      const o = v as Record<string, unknown>
      if (typeof o.kind === 'string') out.add(o.kind)
      for (const [k, val] of Object.entries(o)) if (k !== 'json') walk(val)
    }
  }
  walk(x)
  return out
}

function matchStmt(r: NftRule, i: number) {
  const s = r.stmts[i]!
  if (s.kind !== 'match') throw new Error(`statement ${i} of ${r.loc.text} is ${s.kind}`)
  return s
}

describe('nft -j fixtures: the printer says what nft says', () => {
  it.each(fixtureDirs())('%s: every rule and base chain prints as `nft list ruleset` prints it', (dir) => {
    const rs = load(dir, {iptablesSaveBeside: true})
    const listed = listingRules(read(dir, 'nft-ruleset.txt'))
    let n = 0
    for (const t of rs.tables) {
      for (const c of t.chains.values()) {
        const l = listed.get(`${t.family} ${t.name} ${c.name}`)
        expect(l, `${t.family} ${t.name} ${c.name} listed`).toBeDefined()
        if (c.base) {
          // nft 1.0.6's JSON names no device for netdev chains; its text does
          const header = c.base.devices ? l!.header : l!.header?.replace(/ (device "[^"]*"|devices = \{[^}]*\})/, '')
          expect(formatNftBaseChain(c.base)).toBe(header)
        } else expect(l!.header).toBeUndefined()
        expect(c.rules.length).toBe(l!.rules.length)
        c.rules.forEach((r, i) => {
          expect(sameRuleText(r.loc.text, l!.rules[i]!), `${r.loc.text}\n  vs ${l!.rules[i]}`).toBe(true)
          n++
        })
      }
    }
    expect(n).toBe(rs.ruleCount)
    expect(n).toBeGreaterThan(0)
  })

  it.each(fixtureDirs().filter((d) => d !== 'iptables-nft'))('%s: rule by rule, the rules are those of the source', (dir) => {
    const rs = load(dir)
    const src = sourceRules(read(dir, 'ruleset.nft'))
    let n = 0
    for (const t of rs.tables) {
      for (const c of t.chains.values()) {
        const s = src.get(`${t.family} ${t.name} ${c.name}`) ?? []
        expect(c.rules.map((r) => normalizeRule(r.loc.text))).toEqual(s.map(normalizeRule))
        n += s.length
      }
    }
    expect(n).toBe(rs.ruleCount)
  })
})

describe('full-NAT gateway (Convergent Gateways part 3)', () => {
  const rs = load('fullnat-gateway')

  it('types the per-subnet SNAT and per-port DNAT rules', () => {
    const post = chain(rs, 'ip', 'nat', 'postrouting')
    expect(post.base).toMatchObject({type: 'nat', hook: 'postrouting', priority: 100, priorityText: 'srcnat', policy: 'accept'})
    const [r1, r2] = post.rules
    expect(r1!.stmts[0]).toEqual({kind: 'match', op: '==', left: {kind: 'payload', protocol: 'ip', field: 'saddr'}, right: {kind: 'prefix', prefix: expect.objectContaining({family: 4, len: 24})}})
    const right = matchStmt(r1!, 0).right
    expect(right.kind === 'prefix' && formatPrefix(right.prefix)).toBe('10.5.5.0/24')
    expect(r1!.stmts[1]).toEqual({kind: 'match', op: '==', left: {kind: 'meta', key: 'oif'}, right: {kind: 'string', value: 'xenbr0'}})
    expect(r1!.stmts[2]).toMatchObject({kind: 'nat', type: 'snat', addr: {kind: 'addr', addr: parseIp('192.168.122.11')}, flags: []})
    expect(r2!.loc.text).toBe('ip daddr 10.5.5.0/24 oif "guestbr0" snat to 10.5.5.251')
    const pre = chain(rs, 'ip', 'nat', 'prerouting')
    expect(pre.base?.priorityText).toBe('dstnat')
    expect(pre.rules.map((r) => r.stmts.at(-1))).toEqual([
      {kind: 'nat', type: 'dnat', addr: {kind: 'addr', addr: parseIp('10.5.5.201')}, port: {kind: 'number', value: 22}, flags: [], typeFlags: []},
      {kind: 'nat', type: 'dnat', addr: {kind: 'addr', addr: parseIp('10.5.5.202')}, port: {kind: 'number', value: 22}, flags: [], typeFlags: []},
    ])
  })

  it('keeps the netdev egress ARP drop, whose devices nft 1.0.6 does not print in JSON', () => {
    const egress = chain(rs, 'netdev', 'filter', 'egress')
    expect(egress.base).toMatchObject({type: 'filter', hook: 'egress', priority: -500, priorityText: '-500'})
    expect(egress.base?.devices).toBeUndefined()
    expect(egress.rules.map((r) => r.loc.text)).toEqual(['arp saddr ip 10.5.5.254 drop', 'arp daddr ip 10.5.5.254 drop'])
    expect(matchStmt(egress.rules[0]!, 0).left).toEqual({kind: 'payload', protocol: 'arp', field: 'saddr ip'})
  })

  it('names table, chain and handle in every rule, with the JSON line', () => {
    const r = chain(rs, 'ip', 'nat', 'prerouting').rules[1]!
    expect(r).toMatchObject({family: 'ip', table: 'nat', chain: 'prerouting', handle: 6, index: 2, xtables: false, notModelled: []})
    expect(r.loc).toMatchObject({file: FILE, line: 1, text: 'iif "xenbr0" tcp dport 2202 dnat to 10.5.5.202:22'})
    expect(JSON.parse(JSON.stringify(r.loc))).toEqual({file: FILE, line: 1, text: r.loc.text})
    expect(rs).toMatchObject({ruleCount: 6, xtRules: 0, xtBareRules: 0, fullyAnalysable: true, notModelled: []})
    expect(rs.metainfo).toEqual({version: '1.0.6', releaseName: 'Lester Gooch #5', jsonSchemaVersion: 1})
  })
})

describe('nftlb-style DNAT farm', () => {
  const rs = load('nftlb-farm')

  it('types jhash, numgen and symhash maps, ct mark and the services verdict map', () => {
    const lb = (n: number) => chain(rs, 'ip', 'nftlb', `lb0${n}`).rules
    expect(lb(1)[0]!.stmts[0]).toEqual({kind: 'mangle', key: {kind: 'ct', key: 'mark'}, value: {kind: 'number', value: 0x80000001}})
    expect(lb(1)[0]!.loc.text).toBe('ct mark set 0x80000001')
    const dnat1 = lb(1)[1]!.stmts[0]!
    expect(dnat1).toMatchObject({kind: 'nat', type: 'dnat', addr: {kind: 'map', key: {kind: 'jhash', mod: 10, offset: 0, expr: {kind: 'payload', protocol: 'ip', field: 'saddr'}}}})
    const elems = dnat1.kind === 'nat' && dnat1.addr?.kind === 'map' && dnat1.addr.data.kind === 'set' ? dnat1.addr.data.elements : []
    expect(elems.map((e) => [e.key, e.value])).toEqual([
      [{kind: 'range', from: {kind: 'number', value: 0}, to: {kind: 'number', value: 4}}, {kind: 'addr', addr: parseIp('192.168.1.10')}],
      [{kind: 'range', from: {kind: 'number', value: 5}, to: {kind: 'number', value: 9}}, {kind: 'addr', addr: parseIp('192.168.1.11')}],
    ])
    expect(lb(2)[1]!.stmts[0]).toMatchObject({kind: 'nat', addr: {kind: 'map', key: {kind: 'numgen', mode: 'inc', mod: 2, offset: 0}}})
    expect(lb(3)[1]!.stmts[0]).toMatchObject({
      kind: 'nat',
      addr: {kind: 'map', key: {kind: 'jhash', mod: 3, seed: 42, expr: {kind: 'concat'}}},
      port: {kind: 'map', key: {kind: 'numgen', mode: 'random', mod: 2}},
    })
    expect(lb(4)[1]!.stmts[0]).toMatchObject({kind: 'nat', addr: {kind: 'map', key: {kind: 'symhash', mod: 2, offset: 0}}})
    const pre = chain(rs, 'ip', 'nftlb', 'prerouting').rules[0]!
    expect(pre.stmts).toEqual([
      {kind: 'vmap', key: {kind: 'concat', parts: [{kind: 'payload', protocol: 'ip', field: 'daddr'}, {kind: 'payload', protocol: 'tcp', field: 'dport'}]}, data: {kind: 'setref', name: 'tcp-services'}},
    ])
    const post = chain(rs, 'ip', 'nftlb', 'postrouting').rules[0]!
    expect(post.stmts[0]).toEqual({kind: 'match', op: '==', left: {kind: 'ct', key: 'mark'}, right: {kind: 'intprefix', value: 0x80000000, len: 1}})
    expect(chain(rs, 'ip', 'nftlb', 'filter').rules[0]!.stmts[0]).toEqual({kind: 'mangle', key: {kind: 'meta', key: 'mark'}, value: {kind: 'ct', key: 'mark'}})
  })

  it('types named verdict maps with concatenated keys, and interval sets', () => {
    const m = table(rs, 'ip', 'nftlb').sets.get('tcp-services')!
    expect(m).toMatchObject({kind: 'map', keyType: ['ipv4_addr', 'inet_service'], dataType: ['verdict'], flags: []})
    const e = m.elements.find((x) => x.value?.kind === 'verdict' && x.value.verdict.kind === 'goto' && x.value.verdict.target === 'lb02')
    expect(e?.key).toEqual({kind: 'concat', parts: [{kind: 'addr', addr: parseIp('192.168.0.100')}, {kind: 'number', value: 443}]})
    const bl = table(rs, 'ip', 'nftlb').sets.get('black001')!
    expect(bl).toMatchObject({kind: 'set', keyType: ['ipv4_addr'], flags: ['interval']})
    expect(bl.elements.map((x) => (x.key.kind === 'prefix' ? formatPrefix(x.key.prefix) : x.key.kind === 'addr' ? formatIp(x.key.addr) : '?'))).toEqual(['192.168.40.0/24', '192.168.200.100'])
  })
})

describe('firewalld-style inet table on a DR path', () => {
  const rs = load('firewalld-dr')

  it('names priorities with their offsets, as nft does', () => {
    const t = table(rs, 'inet', 'firewalld')
    const bases = [...t.chains.values()].filter((c) => c.base).map((c) => [c.name, c.base!.priority, c.base!.priorityText])
    expect(bases).toEqual([
      ['mangle_PREROUTING', -140, 'mangle + 10'],
      ['nat_PREROUTING', -90, 'dstnat + 10'],
      ['nat_POSTROUTING', 110, 'srcnat + 10'],
      ['filter_PREROUTING', 10, 'filter + 10'],
      ['filter_INPUT', 10, 'filter + 10'],
      ['filter_FORWARD', 10, 'filter + 10'],
      ['filter_OUTPUT', 10, 'filter + 10'],
    ])
  })

  it('types `ct state invalid drop` before the zone policy that allows the DR service', () => {
    const fwd = chain(rs, 'inet', 'firewalld', 'filter_FORWARD').rules
    const invalid = fwd.find((r) => r.loc.text === 'ct state invalid drop')!
    expect(invalid.stmts).toEqual([
      {kind: 'match', op: 'in', left: {kind: 'ct', key: 'state'}, right: {kind: 'string', value: 'invalid'}},
      {kind: 'verdict', verdict: {kind: 'drop'}},
    ])
    expect(fwd[0]!.stmts[0]).toEqual({kind: 'match', op: '==', left: {kind: 'ct', key: 'state'}, right: {kind: 'set', elements: [{key: {kind: 'string', value: 'established'}}, {key: {kind: 'string', value: 'related'}}]}})
    expect(fwd.at(-1)!.stmts[0]).toEqual({kind: 'reject', type: 'icmpx', code: 'admin-prohibited'})
    expect(invalid.index).toBeLessThan(fwd.findIndex((r) => r.loc.text === 'jump filter_FORWARD_POLICIES') + 1)
    const allow = chain(rs, 'inet', 'firewalld', 'filter_FWD_public_allow').rules[0]!
    expect(allow.loc.text).toBe('ip daddr 203.0.113.100 tcp dport 80 accept')
    expect(matchStmt(allow, 0).right).toEqual({kind: 'addr', addr: parseIp('203.0.113.100')})
    const rpf = chain(rs, 'inet', 'firewalld', 'filter_PREROUTING').rules[1]!
    expect(rpf.stmts[1]).toEqual({kind: 'match', op: '==', left: {kind: 'fib', result: 'oif', flags: ['saddr', 'mark', 'iif']}, right: {kind: 'bool', value: false}})
  })
})

describe("keepalived's vrrp_strict tables", () => {
  const rs = load('keepalived-vrrp-strict')

  it('drops traffic to and from the VIPs in sets, at priority filter - 1', () => {
    const vin = chain(rs, 'ip', 'keepalived', 'in')
    expect(vin.base).toMatchObject({hook: 'input', priority: -1, priorityText: 'filter - 1'})
    expect(vin.rules[0]!.stmts).toEqual([
      {kind: 'match', op: '==', left: {kind: 'payload', protocol: 'ip', field: 'daddr'}, right: {kind: 'setref', name: 'vips'}},
      {kind: 'counter', packets: 0, bytes: 0},
      {kind: 'verdict', verdict: {kind: 'drop'}},
    ])
    expect(table(rs, 'ip', 'keepalived').sets.get('vips')!.elements.map((e) => e.key)).toEqual([
      {kind: 'addr', addr: parseIp('203.0.113.100')},
      {kind: 'addr', addr: parseIp('203.0.113.101')},
    ])
    const ll = table(rs, 'ip6', 'keepalived').sets.get('vips_link_local_name')!
    expect(ll.keyType).toEqual(['ipv6_addr', 'ifname'])
    expect(ll.elements[0]!.key).toEqual({kind: 'concat', parts: [{kind: 'addr', addr: parseIp('fe80::100')}, {kind: 'string', value: 'eth0'}]})
    expect(chain(rs, 'ip6', 'keepalived', 'in').rules[1]!.stmts.at(-1)).toEqual({kind: 'verdict', verdict: {kind: 'goto', target: 'in_link_local'}})
  })
})

describe('kitchen sink: every typed expression and statement', () => {
  const rs = load('kitchen-sink')

  it('types everything it holds, so nothing is reported as not modelled', () => {
    expect(rs.notModelled).toEqual([])
    expect(allRules(rs).every((r) => r.notModelled.length === 0)).toBe(true)
    const seen = new Set<string>()
    for (const r of allRules(rs)) for (const s of r.stmts) kinds(s, seen)
    for (const t of rs.tables) for (const s of t.sets.values()) for (const e of s.elements) kinds(e, seen)
    const expected = [
      'match', 'verdict', 'counter', 'objref', 'log', 'limit', 'reject', 'mangle', 'notrack', 'nat', 'vmap', 'dynset',
      'payload', 'meta', 'ct', 'fib', 'numgen', 'jhash', 'symhash', 'binop', 'concat', 'map', 'set', 'setref', 'addr',
      'prefix', 'intprefix', 'range', 'number', 'string', 'bool', 'list',
    ]
    expect([...seen].filter((k) => expected.includes(k)).sort()).toEqual([...expected].sort())
  })

  it('keeps every relational operator', () => {
    const ops = new Set(allRules(rs).flatMap((r) => r.stmts.flatMap((s) => (s.kind === 'match' ? [s.op] : []))))
    expect([...ops].sort()).toEqual(['!=', '<', '<=', '==', '>', '>=', 'in'])
  })

  it('names priorities per family and hook, bridge included', () => {
    const prios = rs.tables.flatMap((t) => [...t.chains.values()].flatMap((c) => (c.base ? [`${t.family} ${c.name} ${c.base.priorityText}`] : [])))
    expect(prios).toEqual(
      expect.arrayContaining([
        'inet raw_pre raw',
        'inet mangle_pre mangle + 10',
        'inet nat_pre dstnat',
        'inet nat_post srcnat - 5',
        'inet out mangle',
        'inet pre_ip_sec security',
        'inet pre_num -250',
        'arp in filter',
        'bridge pre dstnat',
        'bridge fwd_chain filter',
        'bridge post_chain srcnat',
        'bridge out_chain out',
        'netdev ingress -500',
      ]),
    )
  })

  it('types NAT to maps, ranges and IPv6 with ports', () => {
    const nat = chain(rs, 'inet', 'ldn_ks', 'nat_pre').rules.map((r) => r.stmts.at(-1)!)
    expect(nat[0]).toEqual({kind: 'nat', type: 'dnat', family: 'ip', addr: {kind: 'addr', addr: parseIp('10.1.0.10')}, port: {kind: 'number', value: 8080}, flags: [], typeFlags: []})
    expect(nat[1]).toMatchObject({kind: 'nat', addr: {kind: 'map', key: {kind: 'payload', protocol: 'tcp', field: 'dport'}, data: {kind: 'setref', name: 'portmap'}}})
    expect(nat[3]).toMatchObject({flags: ['fully-random']})
    expect(nat[4]).toMatchObject({addr: {kind: 'range', from: {kind: 'addr', addr: parseIp('10.1.0.10')}, to: {kind: 'addr', addr: parseIp('10.1.0.20')}}, port: {kind: 'range'}, flags: ['persistent']})
    expect(nat[5]).toMatchObject({family: 'ip6', addr: {kind: 'addr', addr: parseIp('2001:db8:1::10')}})
    expect(nat[6]).toEqual({kind: 'nat', type: 'redirect', port: {kind: 'number', value: 22}, flags: [], typeFlags: []})
    const post = chain(rs, 'inet', 'ldn_ks', 'nat_post').rules.map((r) => r.stmts.at(-1)!)
    expect(post[0]).toEqual({kind: 'nat', type: 'masquerade', flags: [], typeFlags: []})
    expect(post[3]).toMatchObject({type: 'snat', flags: ['fully-random', 'persistent']})
  })
})

describe('iptables-nft rules', () => {
  it('are marked, counted, and not analysable without iptables-save', () => {
    const rs = load('iptables-nft')
    expect(rs).toMatchObject({ruleCount: 20, xtRules: 20, xtBareRules: 14, fullyAnalysable: false})
    expect(rs.tables.map((t) => [t.family, t.name, t.xtables])).toEqual([
      ['ip', 'raw', true],
      ['ip', 'mangle', true],
      ['ip', 'nat', true],
      ['ip', 'filter', true],
    ])
    expect(allRules(rs).every((r) => r.xtables)).toBe(true)
    const conntrack = chain(rs, 'ip', 'filter', 'INPUT').rules[1]!
    expect(conntrack.stmts[0]).toEqual({kind: 'xt', xtType: 'match', name: 'conntrack'})
    expect(conntrack.notModelled).toEqual(['xt match conntrack'])
    expect(conntrack.loc.text).toBe('xt match conntrack counter packets 0 bytes 0 accept')
    const what = rs.notModelled.map((n) => n.what)
    expect(what).toHaveLength(4)
    expect(what.find((w) => w.startsWith('nft table ip nat'))).toBe(
      'nft table ip nat: 5 rules made by iptables-nft hold xt expressions (DNAT, MASQUERADE, SNAT, comment, statistic) that nft -j prints ' +
        'without their parameters; without the iptables-save of this host these rules are not analysable',
    )
    expect(rs.notModelled.every((n) => n.file === FILE && n.line === 1)).toBe(true)
  })

  it('with iptables-save beside: still marked, nothing reported, analysable', () => {
    const rs = load('iptables-nft', {iptablesSaveBeside: true})
    expect(rs).toMatchObject({xtRules: 20, xtBareRules: 14, fullyAnalysable: true, notModelled: []})
  })

  it('are the rules of iptables-save, chain by chain and in order', () => {
    const rs = load('iptables-nft', {iptablesSaveBeside: true})
    const save = read('iptables-nft', 'iptables-save.txt')
    const counts = new Map<string, number>()
    let tbl = ''
    for (const line of save.split('\n')) {
      if (line.startsWith('*')) tbl = line.slice(1)
      const m = /^-A (\S+)/.exec(line)
      if (m) counts.set(`${tbl} ${m[1]}`, (counts.get(`${tbl} ${m[1]}`) ?? 0) + 1)
    }
    const nft = new Map<string, number>()
    for (const t of rs.tables) for (const c of t.chains.values()) if (c.rules.length) nft.set(`${t.name} ${c.name}`, c.rules.length)
    expect(nft).toEqual(counts)
    // the DNAT targets of the balancer chains, in the same order
    expect(chain(rs, 'ip', 'nat', 'LDN-SVC-WEB').rules.map((r) => r.stmts[0]!.kind)).toEqual(['xt', 'counter'])
  })

  it('a table in iptables-nft layout counts even when its rules hold no xt expression', () => {
    const doc = {
      nftables: [
        {table: {family: 'ip', name: 'filter', handle: 1}},
        {chain: {family: 'ip', table: 'filter', name: 'INPUT', handle: 1, type: 'filter', hook: 'input', prio: 0, policy: 'accept'}},
        {rule: {family: 'ip', table: 'filter', chain: 'INPUT', handle: 2, expr: [{match: {op: '==', left: {meta: {key: 'iifname'}}, right: 'lo'}}, {accept: null}]}},
        {table: {family: 'ip', name: 'mine', handle: 2}},
        {chain: {family: 'ip', table: 'mine', name: 'input', handle: 1, type: 'filter', hook: 'input', prio: 0, policy: 'accept'}},
        {rule: {family: 'ip', table: 'mine', chain: 'input', handle: 2, expr: [{accept: null}]}},
      ],
    }
    const rs = parseNftJson(JSON.stringify(doc), FILE)
    expect(rs.tables.map((t) => t.xtables)).toEqual([true, false])
    expect(rs).toMatchObject({xtRules: 1, xtBareRules: 0, fullyAnalysable: true, notModelled: []})
    expect(allRules(rs).map((r) => r.xtables)).toEqual([true, false])
  })
})

describe('priorities', () => {
  it.each([
    ['ip', 'prerouting', -300, 'raw'],
    ['ip', 'prerouting', -150, 'mangle'],
    ['ip', 'prerouting', -100, 'dstnat'],
    ['ip', 'output', -100, '-100'],
    ['ip', 'input', 0, 'filter'],
    ['ip6', 'forward', 50, 'security'],
    ['ip', 'postrouting', 100, 'srcnat'],
    ['ip', 'input', 100, '100'],
    ['inet', 'input', 10, 'filter + 10'],
    ['inet', 'forward', -5, 'filter - 5'],
    ['inet', 'input', 11, '11'],
    ['inet', 'input', -290, 'raw + 10'],
    ['bridge', 'prerouting', -300, 'dstnat'],
    ['bridge', 'forward', -200, 'filter'],
    ['bridge', 'output', 100, 'out'],
    ['bridge', 'postrouting', 300, 'srcnat'],
    ['bridge', 'input', 0, '0'],
    ['netdev', 'ingress', 0, 'filter'],
    ['netdev', 'ingress', -150, '-150'],
    ['arp', 'input', 0, 'filter'],
    ['arp', 'input', -150, '-150'],
  ] as const)('%s %s %d prints as %s', (family, hook, prio, text) => {
    expect(formatNftPriority(prio, family as NftFamily, hook)).toBe(text)
    expect(parseNftPriority(text, family as NftFamily, hook)).toBe(prio)
  })

  it('rejects names that do not fit the family or hook', () => {
    expect(parseNftPriority('dstnat', 'ip', 'output')).toBeUndefined()
    expect(parseNftPriority('out', 'ip', 'output')).toBeUndefined()
    expect(parseNftPriority('raw', 'bridge', 'prerouting')).toBeUndefined()
  })
})

function ruleDoc(expr: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    nftables: [
      {table: {family: 'inet', name: 't', handle: 1}},
      {chain: {family: 'inet', table: 't', name: 'c', handle: 1, type: 'filter', hook: 'input', prio: 0, policy: 'accept'}},
      {rule: {family: 'inet', table: 't', chain: 'c', handle: 2, ...extra, expr}},
    ],
  })
}
const onlyRule = (rs: NftRuleset): NftRule => allRules(rs)[0]!

describe('what is not modelled is kept and reported, never fatal', () => {
  const unknownNodes = (v: unknown, out: unknown[] = []): unknown[] => {
    if (Array.isArray(v)) v.forEach((x) => unknownNodes(x, out))
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>
      if (o.kind === 'unknown') out.push(o.json)
      else Object.values(o).forEach((x) => unknownNodes(x, out))
    }
    return out
  }

  it.each([
    ['an unknown statement', [{synproxy: {mss: 1460, wscale: 7}}, {accept: null}], '"synproxy" statement {"synproxy":{"mss":1460,"wscale":7}}', {synproxy: {mss: 1460, wscale: 7}}],
    ['an unknown expression', [{match: {op: '==', left: {'tcp option': {name: 'maxseg', field: 'size'}}, right: 1460}}, {drop: null}], '"tcp option" expression {"tcp option":{"name":"maxseg","field":"size"}}', {'tcp option': {name: 'maxseg', field: 'size'}}],
    ['a statement printed as text', ['meter foo { ip saddr }', {accept: null}], 'statement "meter foo { ip saddr }"', 'meter foo { ip saddr }'],
    ['an unknown NAT flag', [{masquerade: {flags: ['random', 'sideways']}}], '"masquerade" statement {"masquerade":{"flags":["random","sideways"]}}', {masquerade: {flags: ['random', 'sideways']}}],
    // (a counter on an element is statistics, read since the real-world hunt: quota changes what matches)
    ['a set element with an unknown property', [{match: {op: '==', left: {meta: {key: 'mark'}}, right: {set: [{elem: {val: 1, quota: {val: 1, val_unit: 'mbytes'}}}]}}}], '"elem" expression {"elem":{"val":1,"quota":{"val":1,"val_unit":"mbytes"}}}', {elem: {val: 1, quota: {val: 1, val_unit: 'mbytes'}}}],
  ])('%s', (_name, expr, what, kept) => {
    const rs = parseNftJson(ruleDoc(expr), FILE)
    const r = onlyRule(rs)
    expect(r.notModelled).toEqual([what])
    expect(rs.notModelled).toEqual([{file: FILE, line: 1, what: `nft inet t c handle 2: ${what}`}])
    expect(r.stmts).toHaveLength(expr.length)
    expect(unknownNodes(r.stmts)).toEqual([kept])
  })

  it('a named limit is typed as a reference, and reported: its rate is in the limit object', () => {
    const rs = parseNftJson(ruleDoc([{limit: 'lim1'}, {accept: null}]), FILE)
    expect(onlyRule(rs).stmts[0]).toEqual({kind: 'objref', type: 'limit', name: 'lim1'})
    expect(onlyRule(rs).notModelled).toEqual(['limit "lim1" (named limit object)'])
    expect(onlyRule(rs).loc.text).toBe('limit name "lim1" accept')
  })

  it('keeps the unknown JSON verbatim and prints it', () => {
    const expr = [{fwd: {dev: 'eth1'}}]
    const r = onlyRule(parseNftJson(ruleDoc(expr), FILE))
    expect(r.stmts[0]).toEqual({kind: 'unknown', name: 'fwd', json: {fwd: {dev: 'eth1'}}})
    expect(r.loc.text).toBe('fwd {"dev":"eth1"}')
  })

  it('reports unknown objects (flowtables, other keys) and keeps them', () => {
    const doc = {
      nftables: [
        {table: {family: 'inet', name: 't', handle: 1}},
        {flowtable: {family: 'inet', table: 't', name: 'ft', handle: 2, hook: 'ingress', prio: 0, dev: 'eth0'}},
        {counter: {family: 'inet', table: 't', name: 'c1', handle: 3, packets: 1, bytes: 2}},
        {frobnicator: {x: 1}},
      ],
    }
    const rs = parseNftJson(JSON.stringify(doc), FILE)
    expect(rs.tables[0]!.objects.map((o) => [o.type, o.name])).toEqual([
      ['flowtable', 'ft'],
      ['counter', 'c1'],
    ])
    expect(rs.notModelled.map((n) => n.what)).toEqual(['nft flowtable inet t ft', 'nft "frobnicator" object {"x":1}'])
  })

  it('the quick check agrees with building the statements (random statements)', () => {
    const val = fc.oneof(fc.integer({min: 0, max: 70000}), fc.constantFrom('10.0.0.1', 'eth0', 'tcp', '@s', '*', 'fe80::1', '0x1234567890abcdef0123'), fc.boolean())
    const left = fc.oneof(
      fc.constant({payload: {protocol: 'ip', field: 'saddr'}}),
      fc.constant({meta: {key: 'mark'}}),
      fc.constant({ct: {key: 'state'}}),
      fc.constant({'tcp option': {name: 'maxseg'}}),
      fc.constant({payload: {protocol: 'ip'}}),
      fc.constant({numgen: {mode: 'random', mod: 2}}),
      fc.constant({fib: {result: 'type', flags: ['daddr']}}),
    )
    const right = fc.oneof(
      val,
      fc.record({prefix: fc.record({addr: fc.constantFrom('10.0.0.0', 'bogus', 'fd00::'), len: fc.integer({min: -1, max: 130})})}),
      fc.record({range: fc.tuple(val, val)}),
      fc.record({set: fc.array(fc.oneof(val, fc.tuple(val, val), fc.record({elem: fc.record({val, comment: fc.constant('x')})}), fc.record({elem: fc.record({val, bogus: fc.constant(1)})})), {maxLength: 3})}),
      fc.record({concat: fc.array(val, {maxLength: 3})}),
      fc.array(val, {maxLength: 3}),
      fc.constant(null),
      fc.constant({quux: 1}),
    )
    const stmt = fc.oneof(
      fc.record({match: fc.record({op: fc.constantFrom('==', '!=', 'in', '<', '=~'), left, right})}),
      fc.record({vmap: fc.record({key: left, data: fc.oneof(fc.constant('@m'), fc.record({set: fc.array(fc.tuple(val, fc.constantFrom({accept: null}, {jump: {target: 'x'}}, {jump: {}})), {maxLength: 3})}))})}),
      fc.record({dnat: fc.oneof(fc.constant(null), fc.record({addr: right, flags: fc.constantFrom('random', ['persistent'], 'bogus', ['random', 'nope'])}))}),
      fc.record({mangle: fc.record({key: left, value: right})}),
      fc.constantFrom({accept: null}, {counter: {packets: 1, bytes: 2}}, {counter: 'named'}, {reject: {type: 'tcp reset'}}, {reject: {type: 'bogus'}}, {limit: {rate: 5, per: 'second'}}, {queue: null}, {log: null}, {xt: {type: 'match', name: 'foo'}}, {notrack: null}, 'text statement', {jump: {target: 'c'}}, {goto: {}}),
    )
    fc.assert(
      fc.property(fc.array(stmt, {minLength: 1, maxLength: 4}), (expr) => {
        const rs = parseNftJson(ruleDoc(expr), FILE)
        const r = onlyRule(rs)
        // a mangle of anything but a mark is listed too (the trace rewrites only meta mark and ct mark)
        const markKey = (k: NftExpr): boolean => (k.kind === 'meta' || k.kind === 'ct') && k.key === 'mark'
        const unknownInside = r.stmts.some((s) => kinds(s).has('unknown') || s.kind === 'xt' || (s.kind === 'mangle' && !markKey(s.key)))
        // what the parse reported (quickly) is exactly whether building the statements met something unknown
        expect(r.notModelled.length > 0).toBe(unknownInside)
      }),
      {numRuns: 400},
    )
  })
})

describe('bad input', () => {
  const err = (text: string): ParseError => {
    try {
      parseNftJson(text, FILE)
    } catch (e) {
      if (e instanceof ParseError) return e
      throw e
    }
    throw new Error('no error')
  }

  it('invalid JSON: file, line and what was expected', () => {
    const e = err('{"nftables": [\n{"table": {"family": "ip", "name": "t", "handle": 1}},\n{"chain": }\n]}')
    expect(e).toMatchObject({file: FILE, line: 3})
    expect(e.message).toMatch(/^nft-ruleset\.json:3: expected a JSON value/)
  })

  it('not an nftables document', () => {
    for (const text of ['{"foo": [1]}', '[]', '"nftables"', '{"nftables": {"table": 1}}']) {
      const e = err(text)
      expect(e).toMatchObject({file: FILE, line: 1})
      expect(e.message).toContain('{"nftables": [...]}')
    }
  })

  it('truncated output: says so, at the last line', () => {
    const full = read('firewalld-dr', FILE)
    const e = err(full.slice(0, Math.floor(full.length / 2)))
    expect(e.line).toBe(1)
    expect(e.message).toContain('truncated')
    const pretty = JSON.stringify(JSON.parse(full), null, 2)
    const e2 = err(pretty.slice(0, 5000))
    expect(e2.line).toBe(pretty.slice(0, 5000).split('\n').length)
    expect(e2.message).toContain('truncated')
  })

  it('a rule without its chain, an unknown family', () => {
    const e = err('{"nftables": [{"rule": {"family": "ip", "table": "t", "expr": []}}]}')
    expect(e.message).toBe('nft-ruleset.json:1: expected a rule with "family", "table", "chain" and "expr", found "{\\"rule\\":{\\"family\\":\\"ip\\",\\"table\\":\\"t\\",\\"expr\\":[]}}"')
    const e2 = err('{"nftables": [{"table": {"family": "ipx", "name": "t"}}]}')
    expect(e2.expected).toContain('a family (ip, ip6, inet, arp, bridge, netdev)')
  })

  it('an empty ruleset is fine', () => {
    const rs = parseNftJson('{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}]}\n', FILE)
    expect(rs).toMatchObject({ruleCount: 0, tables: [], notModelled: [], fullyAnalysable: true})
  })
})

describe('layouts and positions', () => {
  it('pretty-printed JSON gives the same model, and each rule the line it starts on', () => {
    const one = load('keepalived-vrrp-strict')
    const prettyText = JSON.stringify(JSON.parse(read('keepalived-vrrp-strict', FILE)), null, 2)
    const pretty = parseNftJson(prettyText, FILE)
    const lines = prettyText.split('\n')
    const a = allRules(one)
    const b = allRules(pretty)
    expect(b.map((r) => [r.table, r.chain, r.handle, r.loc.text])).toEqual(a.map((r) => [r.table, r.chain, r.handle, r.loc.text]))
    expect(b.map((r) => r.stmts)).toEqual(a.map((r) => r.stmts))
    for (const r of b) {
      expect(lines[r.loc.line - 1]!.trim()).toBe('{')
      expect(lines[r.loc.line]!.trim()).toBe('"rule": {')
      expect(lines.slice(r.loc.line, r.loc.line + 6).join('\n')).toContain(`"handle": ${r.handle}`)
    }
    expect(new Set(b.map((r) => r.loc.line)).size).toBe(b.length)
  })

  it('a comment holding what looks like the next element does not cut the rule', () => {
    const expr = [{accept: null}]
    const tricky = '}}, {"rule": {"family": "inet", "table": "t", "chain": "c", "handle": 9, "expr": [{"drop": null}]}}, {"x'
    const text = nftStringify(JSON.parse(ruleDoc(expr, {comment: tricky})))
    const rs = parseNftJson(text, FILE)
    expect(rs.ruleCount).toBe(1)
    expect(onlyRule(rs).comment).toBe(tricky)
    expect(onlyRule(rs).stmts).toEqual([{kind: 'verdict', verdict: {kind: 'accept'}}])
  })

  it('rules listed before their chain, and chains of several tables interleaved, land in the right place', () => {
    const doc = {
      nftables: [
        {rule: {family: 'ip', table: 'a', chain: 'x', handle: 5, expr: [{accept: null}]}},
        {table: {family: 'ip', name: 'a', handle: 1}},
        {table: {family: 'ip6', name: 'a', handle: 2}},
        {chain: {family: 'ip6', table: 'a', name: 'x', handle: 1}},
        {chain: {family: 'ip', table: 'a', name: 'x', handle: 2, type: 'filter', hook: 'input', prio: 0, policy: 'drop'}},
        {rule: {family: 'ip6', table: 'a', chain: 'x', handle: 3, expr: [{drop: null}]}},
        {rule: {family: 'ip', table: 'a', chain: 'x', handle: 6, expr: [{drop: null}]}},
      ],
    }
    const rs = parseNftJson(JSON.stringify(doc, null, 1), FILE)
    const ip = chain(rs, 'ip', 'a', 'x')
    expect(ip.base?.policy).toBe('drop')
    expect(ip.rules.map((r) => [r.handle, r.index, r.loc.text])).toEqual([
      [5, 1, 'accept'],
      [6, 2, 'drop'],
    ])
    expect(chain(rs, 'ip6', 'a', 'x').rules.map((r) => r.loc.text)).toEqual(['drop'])
  })

  it('statements are built once and kept; a rule serialises with its text', () => {
    const r = chain(load('nftlb-farm'), 'ip', 'nftlb', 'lb01').rules[0]!
    expect(r.stmts).toBe(r.stmts)
    expect(r.loc).toBe(r.loc)
    const j = JSON.parse(JSON.stringify(r))
    expect(j).toMatchObject({family: 'ip', table: 'nftlb', chain: 'lb01', handle: r.handle, loc: {file: FILE, line: 1, text: 'ct mark set 0x80000001'}})
    expect(j.stmts[0]).toMatchObject({kind: 'mangle'})
    const dnat = JSON.parse(JSON.stringify(chain(load('fullnat-gateway'), 'ip', 'nat', 'prerouting').rules[0]))
    expect(dnat.stmts.at(-1)).toEqual({kind: 'nat', type: 'dnat', addr: {kind: 'addr', addr: '10.5.5.201'}, port: {kind: 'number', value: 22}, flags: [], typeFlags: []})
    expect(chain(load('nftlb-farm'), 'ip', 'nftlb', 'lb01').loc.text).toBe('chain ip nftlb lb01')
  })
})

describe('kube-proxy nftables mode (the benchmark generator)', () => {
  it('parses a generated ruleset: counts, dispatch map, service and endpoint chains', () => {
    const g = generateKubeProxyNft(3000)
    const rs = parseNftJson(g.json, FILE)
    expect(rs.ruleCount).toBe(g.rules)
    expect(rs.notModelled).toEqual([])
    const t = table(rs, 'ip', 'kube-proxy')
    expect(t.chains.size).toBe(16 + g.services - Math.floor(g.services / 50) + g.endpoints + Math.ceil(g.services / 4) - [...Array(g.services).keys()].filter((s) => s % 4 === 0 && s % 50 === 49).length)
    expect(chain(rs, 'ip', 'kube-proxy', 'services').rules[0]!.loc.text).toBe('ip daddr . meta l4proto . th dport vmap @service-ips')
    const svcIps = t.sets.get('service-ips')!
    const e = svcIps.elements[0]!
    expect(e.key.kind).toBe('concat')
    const target = e.value?.kind === 'verdict' && e.value.verdict.kind === 'goto' ? e.value.verdict.target : ''
    const svc = t.chains.get(target)!
    expect(svc.rules[1]!.stmts[0]).toMatchObject({kind: 'vmap', key: {kind: 'numgen', mode: 'random'}})
    const vmap = svc.rules[1]!.stmts[0]!
    const ep = vmap.kind === 'vmap' && vmap.data.kind === 'set' ? vmap.data.elements[0]!.value : undefined
    const epChain = ep?.kind === 'verdict' && ep.verdict.kind === 'goto' ? t.chains.get(ep.verdict.target)! : undefined
    expect(epChain?.rules.map((r) => r.loc.text)[1]).toMatch(/^meta l4proto (tcp|udp) dnat to 10\.180\.\d+\.\d+:\d+$/)
    expect(formatNftRule(chain(rs, 'ip', 'kube-proxy', 'masquerading').rules[0]!)).toBe('meta mark & 0x00004000 == 0x00000000 return')
  })

  it('prints a ruleset nft can load back (declarations and elements included)', () => {
    const text = formatNftRuleset(parseNftJson(generateKubeProxyNft(200).json, FILE))
    expect(text).toMatch(/^table ip kube-proxy \{\n\tset cluster-ips \{\n\t\ttype ipv4_addr\n\t\tcomment "Active ClusterIPs"\n\t\telements = \{ 172\.30\.0\.1, /)
    expect(text).toContain('\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n')
    expect(text).toContain('\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}')
  })
})

describe('printer: statements the fixtures cannot hold (nft 1.0.6 statement.c)', () => {
  it.each([
    [[{queue: {num: 3, flags: 'bypass'}}], 'inet', 'queue flags bypass to 3'],
    [[{queue: {num: {range: [4, 5]}, flags: ['bypass', 'fanout']}}], 'inet', 'queue flags bypass,fanout to 4-5'],
    [[{queue: null}], 'inet', 'queue to 0'],
    [[{limit: {rate: 10, burst: 0, per: 'second', rate_unit: 'mbytes'}}], 'inet', 'limit rate 10 mbytes/second'],
    [[{limit: {rate: 1, burst: 512, per: 'second', rate_unit: 'kbytes', burst_unit: 'kbytes'}}], 'inet', 'limit rate 1 kbytes/second burst 512 kbytes'],
    [[{limit: {rate: 3, burst: 10, per: 'hour'}}], 'inet', 'limit rate 3/hour burst 10 packets'],
    [[{log: {prefix: 'x ', group: 2}}], 'inet', 'log prefix "x " group 2'],
    [[{log: {flags: ['tcp sequence', 'tcp options']}}], 'inet', 'log flags tcp sequence,options'],
    [[{log: {level: 'warn'}}], 'inet', 'log'],
    [[{reject: {type: 'icmp', expr: 'port-unreachable'}}], 'ip', 'reject'],
    [[{reject: {type: 'icmp', expr: 'port-unreachable'}}], 'inet', 'reject with icmp port-unreachable'],
    [[{reject: {type: 'icmpv6', expr: 'port-unreachable'}}], 'ip6', 'reject'],
    [[{reject: null}], 'inet', 'reject'],
    [[{counter: null}, {accept: null}], 'inet', 'counter accept'],
    [[{match: {op: '==', left: {payload: {base: 'nh', offset: 96, len: 32}}, right: 167772161}}, {drop: null}], 'ip', '@nh,96,32 167772161 drop'],
    [[{match: {op: '==', left: {ct: {key: 'proto-dst', dir: 'original'}}, right: 6443}}, {masquerade: null}], 'ip', 'ct original proto-dst 6443 masquerade'],
    [[{snat: {addr: {prefix: {addr: '10.0.0.0', len: 24}}, type_flags: 'prefix', family: 'ip'}}], 'inet', 'snat ip prefix to 10.0.0.0/24'],
    [[{dnat: {addr: {range: ['2001:db8::1', '2001:db8::2']}, port: 80, family: 'ip6'}}], 'inet', 'dnat ip6 to [2001:db8::1]-[2001:db8::2]:80'],
    [[{match: {op: '==', left: {meta: {key: 'iifname'}}, right: {set: ['eth0', 'eth1']}}}, {accept: null}], 'inet', 'iifname { "eth0", "eth1" } accept'],
    [[{match: {op: '==', left: {meta: {key: 'iifname'}}, right: '10.0.0.1'}}, {accept: null}], 'inet', 'iifname "10.0.0.1" accept'],
  ] as const)('%j in %s prints %s', (expr, family, text) => {
    const doc = JSON.parse(ruleDoc(expr as unknown as unknown[]).replace(/"inet"/g, `"${family}"`))
    const r = onlyRule(parseNftJson(JSON.stringify(doc), FILE))
    expect(r.notModelled).toEqual([])
    expect(r.loc.text).toBe(text)
  })

  it('an interface name that looks like an address stays a name', () => {
    const r = onlyRule(parseNftJson(ruleDoc([{match: {op: '==', left: {meta: {key: 'iifname'}}, right: '10.0.0.1'}}]), FILE))
    expect(matchStmt(r, 0).right).toEqual({kind: 'string', value: '10.0.0.1'})
  })
})

describe('huge sets and maps, parsed item by item', () => {
  it('give the same elements, rules and notes as one JSON.parse', () => {
    const json = generateKubeProxyNft(1500).json
    const whole = parseNftJson(json, FILE)
    const items = parseNftJson(json, FILE, {streamSetsOver: 200})
    const t1 = table(whole, 'ip', 'kube-proxy')
    const t2 = table(items, 'ip', 'kube-proxy')
    for (const name of ['cluster-ips', 'service-ips', 'service-nodeports', 'no-endpoint-services']) {
      expect(t2.sets.get(name)!.elements, name).toEqual(t1.sets.get(name)!.elements)
      expect(t2.sets.get(name)!.elements.length).toBeGreaterThan(0)
    }
    expect(allRules(items).map((r) => r.loc.text)).toEqual(allRules(whole).map((r) => r.loc.text))
    // an element the model does not type is found item by item too
    const odd = json.replace('{"elem": {"val": {"concat"', '{"elem": {"bogus": 1, "val": {"concat"')
    expect(parseNftJson(odd, FILE, {streamSetsOver: 200}).notModelled).toEqual(parseNftJson(odd, FILE).notModelled)
    expect(parseNftJson(odd, FILE).notModelled).toHaveLength(1)
  })
})
