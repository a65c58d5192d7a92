// Fixtures are real `ip -j` output from the ldp- namespaces of scripts/fixtures/ip-sysctl-conntrack.sh.
// MAC addresses and IPv6 link-local addresses change when they are regenerated; everything else is fixed.
import {describe, expect, test} from 'vitest'
import {formatPrefix, parsePrefix} from '../../src/model/ip.js'
import type {Route} from '../../src/model/net.js'
import {parseIpAddr, parseIpRoute, parseIpRule} from '../../src/snapshot/parsers/ip-json.js'
import {fixtureReader, ip, parseError} from './helpers.js'

const dir = 'fixtures/parsers/ip/'
const read = fixtureReader(dir)
const pfx = (s: string) => parsePrefix(s)!

describe('ip -j addr show', () => {
  const ifs = parseIpAddr(read('ip-addr.json'), 'ip-addr.json')

  test('interfaces', () => {
    expect(ifs.map((i) => [i.ifindex, i.name, i.mtu, i.operstate])).toEqual([
      [1, 'lo', 65536, 'UNKNOWN'],
      [2, 'ldp-d0', 1500, 'UP'],
      [3, 'ldp-d1', 1400, 'UP'],
    ])
    const d0 = ifs[1]!
    expect(d0.flags).toEqual(['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'])
    expect(d0.linkType).toBe('ether')
    expect(d0.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
    expect(d0.linkNetnsid).toBeTypeOf('number')
    expect(d0.loc).toEqual({file: 'ip-addr.json', line: 1, text: '2: ldp-d0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP'})
    expect(ifs[0]!.mac).toBeUndefined()
  })

  test('addresses: primary, labelled, secondary, IPv6, link-local, peer', () => {
    const lo = ifs[0]!.addresses
    expect(lo.map((a) => [a.family, a.ip, a.prefixlen, a.scope])).toEqual([
      [4, ip('127.0.0.1'), 8, 'host'],
      [6, ip('::1'), 128, 'host'],
    ])
    const [primary, vip, secondary, v6, ll] = ifs[1]!.addresses
    expect(primary).toMatchObject({family: 4, ip: ip('10.77.1.1'), prefixlen: 24, scope: 'global', label: 'ldp-d0', broadcast: ip('10.77.1.255')})
    expect(primary!.secondary).toBeUndefined()
    expect(primary!.loc.text).toBe('inet 10.77.1.1/24 brd 10.77.1.255 scope global ldp-d0')
    expect(vip).toMatchObject({ip: ip('10.77.1.100'), prefixlen: 32, label: 'ldp-d0:vip'})
    expect(secondary).toMatchObject({ip: ip('10.77.1.101'), prefixlen: 24, secondary: true})
    expect(secondary!.loc.text).toBe('inet 10.77.1.101/24 scope global secondary ldp-d0')
    expect(v6).toMatchObject({family: 6, ip: ip('2001:db8:77:1::1'), prefixlen: 64, scope: 'global', flags: ['nodad']})
    expect(ll).toMatchObject({family: 6, prefixlen: 64, scope: 'link'})
    expect(ll!.ip.value >> 64n).toBe(0xfe80000000000000n)
    const peer = ifs[2]!.addresses[1]!
    expect(peer).toMatchObject({ip: ip('192.0.2.1'), prefixlen: 32, peer: pfx('192.0.2.2/32')})
    expect(peer.loc.text).toBe('inet 192.0.2.1 peer 192.0.2.2/32 scope global ldp-d1')
  })

  test('a realserver: VIP on lo', () => {
    const rs = parseIpAddr(read('ip-addr-realserver.json'), 'x')
    expect(rs[0]!.name).toBe('lo')
    expect(rs[0]!.addresses.map((a) => a.ip)).toContainEqual(ip('10.77.0.100'))
  })

  test('a fallback tunnel device (tunl0 once ipip is loaded) prints "link": null, @NONE in text', () => {
    // from a 6.1 network namespace (test/ipvs-lab): iproute2 prints iflink 0 as null
    const text = '[{"ifindex":2,"link":null,"ifname":"tunl0","flags":["NOARP","UP","LOWER_UP"],"mtu":1480,"operstate":"UNKNOWN","link_type":"ipip","address":"0.0.0.0","addr_info":[{"family":"inet","local":"10.0.0.100","prefixlen":32,"scope":"global","label":"tunl0"}]}]'
    const [tun] = parseIpAddr(text, 'x')
    expect(tun).toMatchObject({name: 'tunl0', link: 'NONE'})
    expect(tun!.addresses.map((a) => a.ip)).toEqual([ip('10.0.0.100')])
    expect(tun!.loc.text).toMatch(/^2: tunl0@NONE: <NOARP,UP,LOWER_UP>/)
  })

  test('pretty-printed output keeps the line where each object starts', () => {
    const text = JSON.stringify(JSON.parse(read('ip-addr.json')), null, 2)
    const p = parseIpAddr(text, 'x')
    expect(p.map((i) => i.name)).toEqual(['lo', 'ldp-d0', 'ldp-d1'])
    const lines = text.split('\n')
    for (const i of p) expect(lines[i.loc.line - 1]!.trim()).toBe('{')
    expect(lines[p[1]!.loc.line]).toContain('"ifindex": 2')
  })
})

describe('ip -j route show table all', () => {
  const routes = parseIpRoute(read('ip-route.json'), 'ip-route.json')
  const get = (table: string, dst: string, family?: 4 | 6): Route => {
    const r = routes.filter((x) => x.table === table && formatPrefix(x.dst) === dst && (family === undefined || x.family === family))
    expect(r, `${table} ${dst}`).toHaveLength(1)
    return r[0]!
  }

  test('every table and both families', () => {
    expect(routes).toHaveLength(43)
    expect([...new Set(routes.map((r) => r.table))].sort()).toEqual(['100', '200', '201', 'local', 'main'])
    expect(routes.filter((r) => r.family === 6)).toHaveLength(18)
  })

  test('route types', () => {
    const types = new Set(routes.map((r) => r.type))
    for (const t of ['unicast', 'local', 'broadcast', 'multicast', 'anycast', 'blackhole', 'unreachable', 'prohibit', 'throw']) expect(types).toContain(t)
    expect(get('main', '10.66.0.0/16')).toMatchObject({type: 'blackhole', scope: 'global', metric: 0})
    expect(get('main', '10.67.0.0/16')).toMatchObject({type: 'unreachable', metric: 7})
    expect(get('main', '10.68.0.0/16').type).toBe('prohibit')
    expect(get('100', '10.77.0.0/16').type).toBe('throw')
    expect(get('200', '192.0.2.0/24').type).toBe('unreachable')
  })

  test('default routes, gateways, table ids', () => {
    const d = get('100', '0.0.0.0/0', 4)
    expect(d).toMatchObject({type: 'unicast', family: 4, dst: {family: 4, value: 0n, len: 0}, gateway: ip('10.77.2.2'), dev: 'ldp-d1', scope: 'global', metric: 0})
    expect(d.loc).toEqual({file: 'ip-route.json', line: 1, text: 'default via 10.77.2.2 dev ldp-d1 table 100'})
    // a blackhole default carries no address: IPv4, since IPv6 routes always print "pref"
    expect(get('200', '0.0.0.0/0')).toMatchObject({type: 'blackhole', family: 4})
    const d6 = get('100', '::/0', 6)
    expect(d6).toMatchObject({gateway: ip('2001:db8:77:2::2'), metric: 1024, pref: 'medium'})
  })

  test('kernel routes: proto, scope link, prefsrc', () => {
    const r = get('main', '10.77.1.0/24')
    expect(r).toMatchObject({dev: 'ldp-d0', protocol: 'kernel', scope: 'link', src: ip('10.77.1.1'), flags: []})
    expect(r.loc.text).toBe('10.77.1.0/24 dev ldp-d0 proto kernel scope link src 10.77.1.1')
    expect(get('100', '10.77.0.100')).toMatchObject({dst: pfx('10.77.0.100/32'), scope: 'link', dev: 'ldp-d1'})
    expect(get('main', '203.0.113.0/24')).toMatchObject({gateway: ip('10.77.1.2'), src: ip('10.77.1.1'), metric: 50, protocol: 'babel'})
  })

  test('local table: local and broadcast, scope host', () => {
    const l = get('local', '10.77.1.100')
    expect(l).toMatchObject({type: 'local', scope: 'host', dev: 'ldp-d0', src: ip('10.77.1.100'), protocol: 'kernel'})
    expect(l.loc.text).toBe('local 10.77.1.100 dev ldp-d0 table local proto kernel scope host src 10.77.1.100')
    expect(get('local', '10.77.1.255')).toMatchObject({type: 'broadcast', scope: 'link'})
    expect(get('201', '10.77.5.0/24')).toMatchObject({type: 'local', dev: 'lo', scope: 'host'})
  })

  test('multipath and onlink', () => {
    const m = get('main', '198.51.100.0/24')
    expect(m.gateway).toBeUndefined()
    expect(m).toMatchObject({protocol: 'static', metric: 100})
    expect(m.nexthops).toEqual([
      {gateway: ip('10.77.1.2'), dev: 'ldp-d0', weight: 1},
      {gateway: ip('10.77.2.2'), dev: 'ldp-d1', weight: 3},
    ])
    expect(m.loc.text).toBe('198.51.100.0/24 proto static metric 100 nexthop via 10.77.1.2 dev ldp-d0 weight 1 nexthop via 10.77.2.2 dev ldp-d1 weight 3')
    expect(get('main', '203.0.113.128/25').flags).toEqual(['onlink'])
  })

  test('IPv6 routes', () => {
    expect(get('main', '2001:db8:66::/48')).toMatchObject({type: 'blackhole', family: 6, dev: 'lo', metric: 1024})
    expect(get('main', '2001:db8:99::/48')).toMatchObject({gateway: ip('2001:db8:77:2::2'), protocol: 'static', metric: 256})
    expect(routes.filter((r) => r.type === 'multicast' && r.family === 6)).toHaveLength(2)
  })

  test('ip -4 ... and ip -6 ... appended in one file give the same routes', () => {
    const two = parseIpRoute(read('ip-route-4-6.json'), 'x')
    const key = (r: Route): string => `${r.table} ${r.type} ${r.family} ${formatPrefix(r.dst)} ${r.dev}`
    expect(two.map(key).sort()).toEqual(routes.map(key).sort())
    expect(two.find((r) => r.family === 6)!.loc.line).toBe(2)
  })

  test('the same file twice: exact duplicates are kept once', () => {
    const text = read('ip-route.json')
    expect(parseIpRoute(text + text, 'x')).toHaveLength(43)
  })

  test('pretty-printed (ip -j -p) routes keep their lines', () => {
    const p = parseIpRoute(read('ip-route-pretty.json'), 'p')
    expect(p.map((r) => [r.loc.line, r.type])).toEqual([
      [1, 'unicast'],
      [6, 'throw'],
      [10, 'unicast'],
    ])
  })

  test('attributes lvsdoctor does not interpret are kept as not modelled', () => {
    const [r] = parseIpRoute('[{"dst":"10.9.0.0/16","gateway":"10.0.0.1","dev":"eth0","nhid":12,"encap":"mpls","flags":[]}]', 'x')
    expect(r!.notModelled).toEqual(['route 10.9.0.0/16: nhid 12', 'route 10.9.0.0/16: encap mpls'])
    expect(r!.loc.text).toBe('10.9.0.0/16 via 10.0.0.1 dev eth0 nhid 12 encap mpls')
  })
})

describe('ip -j rule show', () => {
  const rules = parseIpRule(read('ip-rule.json'), 'ip-rule.json')
  const at = (p: number) => rules.find((r) => r.priority === p)!

  test('every rule with its text', () => {
    expect(rules.map((r) => r.loc.text)).toEqual([
      '0: from all lookup local',
      '50: from all lookup main suppress_prefixlength 0',
      '100: from all fwmark 0x1 lookup 100',
      '101: from all fwmark 0x10/0xff lookup 200',
      '110: from 10.77.2.0/24 to 198.51.100.0/24 lookup 100',
      '120: not from 10.77.0.0/16 lookup 201',
      '130: from all iif ldp-d0 oif ldp-d1 lookup 100',
      '140: from all ipproto tcp sport 1000-2000 dport 80 lookup 100',
      '150: from all uidrange 1000-1999 lookup 200',
      '160: from all tos 0x10 lookup 100',
      '170: from 10.66.0.0/16 blackhole',
      '171: from 10.67.0.0/16 unreachable',
      '172: from 10.68.0.0/16 prohibit',
      '180: from 10.69.0.0/16 goto 200',
      '190: from all to 10.70.0.0/16 nop',
      '200: from all fwmark 0x2 lookup 100',
      '32766: from all lookup main',
      '32767: from all lookup default',
    ])
    expect(rules.every((r) => r.family === 4 && r.loc.line === 1 && r.loc.file === 'ip-rule.json')).toBe(true)
  })

  test('selectors and actions, field by field', () => {
    expect(at(0)).toEqual({priority: 0, family: 4, not: false, action: 'lookup', table: 'local', loc: at(0).loc})
    expect(at(50)).toMatchObject({action: 'lookup', table: 'main', suppressPrefixlen: 0})
    expect(at(100)).toMatchObject({fwmark: 1, fwmask: 0xffffffff, table: '100'})
    expect(at(101)).toMatchObject({fwmark: 0x10, fwmask: 0xff, table: '200'})
    expect(at(110)).toMatchObject({from: pfx('10.77.2.0/24'), to: pfx('198.51.100.0/24')})
    expect(at(120)).toMatchObject({not: true, from: pfx('10.77.0.0/16'), table: '201'})
    expect(at(130)).toMatchObject({iif: 'ldp-d0', oif: 'ldp-d1'})
    expect(at(140)).toMatchObject({ipproto: 6, sport: [1000, 2000], dport: [80, 80]})
    expect(at(150)).toMatchObject({uidrange: [1000, 1999], table: '200'})
    expect(at(160)).toMatchObject({tos: 0x10})
    expect(at(170).action).toBe('blackhole')
    expect(at(171).action).toBe('unreachable')
    expect(at(172).action).toBe('prohibit')
    expect(at(170).table).toBeUndefined()
    expect(at(180)).toMatchObject({action: 'goto', goto: 200})
    expect(at(190)).toMatchObject({action: 'nop', to: pfx('10.70.0.0/16')})
    expect(rules.some((r) => r.notModelled)).toBe(false)
  })

  test('IPv6 rules: the family comes from the addresses of their array', () => {
    const r6 = parseIpRule(read('ip-rule6.json'), 'x')
    expect(r6.map((r) => r.family)).toEqual([6, 6, 6, 6])
    expect(r6[2]).toMatchObject({from: pfx('2001:db8:77:2::/64'), table: '100'})
    const both = parseIpRule(read('ip-rule.json') + read('ip-rule6.json'), 'x')
    expect(both.filter((r) => r.family === 6)).toHaveLength(4)
    expect(both.filter((r) => r.family === 6)[0]!.loc.line).toBe(2)
    expect(both).toHaveLength(rules.length + 4)
    expect(parseIpRule(read('ip-rule.json') + read('ip-rule.json'), 'x')).toHaveLength(rules.length)
  })

  test('unknown selectors are kept as not modelled', () => {
    const [r] = parseIpRule('[{"priority":5,"src":"all","l3mdev":null,"tun_id":7,"table":"main"}]', 'x')
    expect(r!.notModelled).toEqual(['rule 5: l3mdev', 'rule 5: tun_id 7'])
    expect(r!.loc.text).toBe('5: from all l3mdev tun_id 7 lookup main')
  })
})

describe('malformed ip -j output', () => {
  test.each([
    ['routes', parseIpRoute, '', 1, 'an empty file'],
    ['routes', parseIpRoute, '[{"dst":"10.0.0.0/8","dev":"eth0"},{"dst":"10.1.0.0/16",', 1, 'truncated'],
    ['routes', parseIpRoute, '[{"dst":"10.0.0.0/8"},\n{"dst":"10.1.0.0/16",\n"dev":eth0}]', 3, 'valid JSON'],
    ['routes', parseIpRoute, '[{"dst":"10.0.0.0/8"}]\ngarbage\n', 2, 'a JSON array'],
    ['routes', parseIpRoute, '[{"dst":"10.0.0.0/33"}]', 1, 'a route destination'],
    ['routes', parseIpRoute, '[{"dev":"eth0"}]', 1, '"dst"'],
    ['routes', parseIpRoute, '[{"dst":"10.0.0.0/8","type":"teleport"}]', 1, 'a route type'],
    ['routes', parseIpRoute, '{"dst":"10.0.0.0/8"}', 1, 'a JSON array'],
    ['routes', parseIpRoute, '10.0.0.0/8 dev eth0 proto kernel\n', 1, 'a JSON array'],
    ['rules', parseIpRule, '[{"src":"all","table":"main"}]', 1, '"priority"'],
    ['rules', parseIpRule, '[{"priority":1,"src":"all"}]', 1, 'a rule action'],
    ['rules', parseIpRule, '[{"priority":1,"src":"all","fwmark":"banana","table":"main"}]', 1, '"fwmark"'],
    ['rules', parseIpRule, '[1,2]', 1, 'a JSON object'],
    ['addr', parseIpAddr, '[{"ifindex":1}]', 1, '"ifname"'],
    ['addr', parseIpAddr, '[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"300.0.0.1","prefixlen":8}]}]', 1, 'an IPv4 or IPv6 address'],
  ])('%s %#: line %d', (_what, parse, text, line, expected) => {
    const e = parseError(() => parse(text, 'f.json'))
    expect(e.file).toBe('f.json')
    expect(e.line).toBe(line)
    expect(e.message).toContain(expected)
  })
})
