// `-m set` decided from the sets (src/dataplane/ipset.ts), case by case after the kernel's ipset modules, and the
// lookup index checked against a plain scan of every entry on random sets and packets.
import fc from 'fast-check'
import {describe, expect, test} from 'vitest'
import {formatIp, parseIp} from '../../src/model/ip.js'
import type {IptRule} from '../../src/model/iptables.js'
import {evalSetMatch, type SetMatch} from '../../src/dataplane/ipset.js'
import {runChain, type MatchEnv} from '../../src/dataplane/netfilter.js'
import type {Packet} from '../../src/dataplane/packet.js'
import {parseIpsetSave} from '../../src/snapshot/parsers/ipset.js'
import {parseIptablesSave} from '../../src/snapshot/parsers/iptables-save.js'

const sets = (text: string) => parseIpsetSave(text, 'ipset-save.txt')
const pkt = (src: string, dst: string, o: Partial<Packet> = {}): Packet => ({family: 4, src: parseIp(src)!, dst: parseIp(dst)!, proto: 6, sport: 40000, dport: 80, mark: 0, ...o})
const m = (name: string, flags: string, o: Partial<SetMatch> = {}): SetMatch => ({kind: 'set', neg: false, name, flags: flags.split(',') as ('src' | 'dst')[], ...o})
const decide = (s: ReturnType<typeof sets>, x: SetMatch, p: Packet, ifs = {}) => evalSetMatch(s, x, p, ifs).decision

describe('hash types with net dimensions: the most specific entry decides, nomatch included', () => {
  const s = sets(`create n hash:net
add n 10.1.0.0/16
add n 10.1.2.0/24 nomatch
add n 10.1.2.128/25
add n 10.1.3.7 nomatch
create nn hash:net,net
add nn 10.0.0.0/8,192.168.0.0/16
add nn 10.1.0.0/16,192.168.0.0/16 nomatch
add nn 10.1.2.0/24,192.168.1.0/24
`)
  test.each([
    ['10.1.9.9', 'match', 'the /16'],
    ['10.1.2.9', 'nomatch', 'the nomatch /24 inside it'],
    ['10.1.2.200', 'match', 'a plain /25 inside the nomatch /24'],
    ['10.1.3.7', 'nomatch', 'a nomatch host entry'],
    ['10.2.0.1', 'nomatch', 'no entry'],
  ])('%s: %s (%s)', (src, want) => {
    expect(decide(s, m('n', 'src'), pkt(src, '1.1.1.1'))).toBe(want)
  })
  test('--return-nomatch: a nomatch entry matches, a plain one does not, no entry still does not', () => {
    const x = m('n', 'src', {returnNomatch: true})
    expect(decide(s, x, pkt('10.1.2.9', '1.1.1.1'))).toBe('match')
    expect(decide(s, x, pkt('10.1.9.9', '1.1.1.1'))).toBe('nomatch')
    expect(decide(s, x, pkt('10.2.0.1', '1.1.1.1'))).toBe('nomatch')
  })
  test('two net dimensions: the first dimension most specific first, then the second', () => {
    expect(decide(s, m('nn', 'src,dst'), pkt('10.1.2.3', '192.168.1.1'))).toBe('match')
    expect(decide(s, m('nn', 'src,dst'), pkt('10.1.3.3', '192.168.1.1'))).toBe('nomatch')
    expect(decide(s, m('nn', 'src,dst'), pkt('10.2.0.1', '192.168.5.5'))).toBe('match')
    expect(decide(s, m('nn', 'dst,src'), pkt('10.2.0.1', '192.168.5.5'))).toBe('nomatch')
  })
  test('! inverts the answer, and the words name the entry that decided', () => {
    const v = evalSetMatch(s, m('n', 'src', {neg: true}), pkt('10.1.2.9', '1.1.1.1'), {})
    expect(v.decision).toBe('match')
    expect(v.why).toBe('! --match-set n src matches: n (hash:net) 10.1.2.9 is in nomatch entry ipset-save.txt:3 `add n 10.1.2.0/24 nomatch`: no match')
  })
})

describe('the port dimension: protocol and port, as ip_set_getport.c reads them', () => {
  const s = sets(`create p hash:ip,port
add p 10.0.0.1,tcp:80
add p 10.0.0.1,udp:53
add p 10.0.0.2,icmp:echo-request
add p 10.0.0.3,gre:0
add p 10.0.0.4,tcp:8000-8002
create b bitmap:port range 30000-32767
add b 30080
`)
  test.each([
    ['tcp 80', pkt('9.9.9.9', '10.0.0.1'), 'match'],
    ['udp 80', pkt('9.9.9.9', '10.0.0.1', {proto: 17}), 'nomatch'],
    ['udp 53', pkt('9.9.9.9', '10.0.0.1', {proto: 17, dport: 53}), 'match'],
    ['icmp echo-request (type 8 code 0)', pkt('9.9.9.9', '10.0.0.2', {proto: 1, sport: undefined, dport: undefined, icmpType: 8, icmpCode: 0}), 'match'],
    ['icmp echo-reply', pkt('9.9.9.9', '10.0.0.2', {proto: 1, sport: undefined, dport: undefined, icmpType: 0, icmpCode: 0}), 'nomatch'],
    ['gre: no ports, port 0', pkt('9.9.9.9', '10.0.0.3', {proto: 47, sport: undefined, dport: undefined}), 'match'],
    ['tcp 8001 in a range', pkt('9.9.9.9', '10.0.0.4', {dport: 8001}), 'match'],
  ])('hash:ip,port dst,dst, %s: %s', (_w, p, want) => {
    expect(decide(s, m('p', 'dst,dst'), p)).toBe(want)
  })
  test('src,dst reads the source address and the destination port; fewer flags than dimensions never match', () => {
    expect(decide(s, m('p', 'src,dst'), pkt('10.0.0.1', '9.9.9.9'))).toBe('match')
    expect(decide(s, m('p', 'src,src'), pkt('10.0.0.1', '9.9.9.9'))).toBe('nomatch')
    expect(decide(s, m('p', 'dst'), pkt('9.9.9.9', '10.0.0.1'))).toBe('nomatch')
    expect(decide(s, m('p', 'dst,dst,src'), pkt('9.9.9.9', '10.0.0.1'))).toBe('match')
  })
  test('bitmap:port: TCP and UDP only, inside its range', () => {
    expect(decide(s, m('b', 'dst'), pkt('1.1.1.1', '2.2.2.2', {dport: 30080}))).toBe('match')
    expect(decide(s, m('b', 'dst'), pkt('1.1.1.1', '2.2.2.2', {proto: 17, dport: 30080}))).toBe('match')
    expect(decide(s, m('b', 'dst'), pkt('1.1.1.1', '2.2.2.2', {proto: 132, dport: 30080}))).toBe('nomatch')
    expect(decide(s, m('b', 'dst'), pkt('1.1.1.1', '2.2.2.2', {dport: 80}))).toBe('nomatch')
  })
})

describe('other dimensions and types', () => {
  const s = sets(`create h hash:ip netmask 24
add h 10.5.5.0
create k hash:ip,mark markmask 0xff
add k 10.0.0.1,0x5
create i hash:net,iface
add i 10.0.0.0/8,eth0
add i 10.0.0.0/8,physdev:eth1
add i 10.1.0.0/16,veth wildcard
create mac hash:mac
add mac 00:11:22:33:44:55
create bm bitmap:ip,mac range 10.0.0.0/24
add bm 10.0.0.1,00:11:22:33:44:55
add bm 10.0.0.2
create six hash:ip family inet6
add six 2001:db8::1
create fut hash:net,port,net,port
add fut 10.0.0.0/8,tcp:80,10.2.0.0/16,tcp:8080
`)
  test('netmask: the packet address is masked', () => {
    expect(decide(s, m('h', 'src'), pkt('10.5.5.77', '1.1.1.1'))).toBe('match')
    expect(decide(s, m('h', 'src'), pkt('10.5.6.1', '1.1.1.1'))).toBe('nomatch')
  })
  test('markmask: the mark is masked', () => {
    expect(decide(s, m('k', 'src,src'), pkt('10.0.0.1', '1.1.1.1', {mark: 0x105}))).toBe('match')
    expect(decide(s, m('k', 'src,src'), pkt('10.0.0.1', '1.1.1.1', {mark: 0x6}))).toBe('nomatch')
  })
  test('iface: src is the input interface, dst the output one; physdev never, wildcard by prefix, none at the hook: no match', () => {
    expect(decide(s, m('i', 'src,src'), pkt('10.9.9.9', '1.1.1.1'), {iif: 'eth0'})).toBe('match')
    expect(decide(s, m('i', 'src,src'), pkt('10.9.9.9', '1.1.1.1'), {iif: 'eth1'})).toBe('nomatch')
    expect(decide(s, m('i', 'src,src'), pkt('10.1.9.9', '1.1.1.1'), {iif: 'veth12'})).toBe('match')
    expect(decide(s, m('i', 'src,dst'), pkt('10.9.9.9', '1.1.1.1'), {iif: 'eth0'})).toBe('nomatch')
    expect(decide(s, m('i', 'src,src'), pkt('10.9.9.9', '1.1.1.1'), {iif: '(unknown)'})).toBe('assumed')
  })
  test('MAC addresses are not modelled: assumed unless the address part already decides', () => {
    expect(decide(s, m('mac', 'src'), pkt('10.0.0.1', '1.1.1.1'))).toBe('assumed')
    expect(decide(s, m('bm', 'src,src'), pkt('10.0.0.2', '1.1.1.1'))).toBe('match')
    expect(decide(s, m('bm', 'src,src'), pkt('10.0.0.1', '1.1.1.1'))).toBe('assumed')
    expect(decide(s, m('bm', 'src,src'), pkt('10.0.0.3', '1.1.1.1'))).toBe('nomatch')
    expect(decide(s, m('bm', 'src,src'), pkt('10.0.1.1', '1.1.1.1'))).toBe('nomatch')
  })
  test('an inet6 set never matches an IPv4 packet; a type not modelled, an absent set and no ipset-save.txt stay assumed', () => {
    expect(decide(s, m('six', 'src'), pkt('10.0.0.1', '1.1.1.1'))).toBe('nomatch')
    expect(decide(s, m('fut', 'src,dst,dst,dst'), pkt('10.0.0.1', '10.2.0.1'))).toBe('assumed')
    expect(evalSetMatch(s, m('nope', 'src'), pkt('10.0.0.1', '1.1.1.1'), {})).toEqual({decision: 'assumed', why: '--match-set nope src (set nope is not in ipset-save.txt)'})
    expect(evalSetMatch(undefined, m('nope', 'src'), pkt('10.0.0.1', '1.1.1.1'), {})).toEqual({decision: 'assumed', why: '--match-set nope src (set contents are not in the snapshot: no ipset-save.txt)'})
  })
})

describe('list:set and the counter conditions', () => {
  const s = sets(`create a hash:ip
add a 10.0.0.9
create p hash:ip,port
add p 10.0.0.1,tcp:80
create n hash:net
add n 10.0.0.0/24
add n 10.0.0.5 nomatch
create l list:set size 8
add l a
add l p
add l n
`)
  test('members in order, each with its own dimension check and --return-nomatch', () => {
    const one = evalSetMatch(s, m('l', 'src'), pkt('10.0.0.1', '1.1.1.1'), {})
    // p needs two flags: skipped; n holds it
    expect(one.decision).toBe('match')
    expect(one.why).toContain('member n (hash:net) holds 10.0.0.1')
    expect(evalSetMatch(s, m('l', 'src,dst'), pkt('10.0.0.1', '1.1.1.1'), {}).why).toContain('member p (hash:ip,port) holds 10.0.0.1,tcp:80')
    expect(decide(s, m('l', 'src'), pkt('10.0.0.5', '1.1.1.1'))).toBe('nomatch')
    expect(decide(s, m('l', 'src', {returnNomatch: true}), pkt('10.0.0.5', '1.1.1.1'))).toBe('match')
    // a's plain entry is not a nomatch type: --return-nomatch leaves it a match
    expect(decide(s, m('l', 'src', {returnNomatch: true}), pkt('10.0.0.9', '1.1.1.1'))).toBe('match')
    expect(decide(s, m('l', 'src'), pkt('10.9.0.1', '1.1.1.1'))).toBe('nomatch')
  })
  test('--packets-gt: the entry counters are not modelled (assumed when an entry holds the packet), no entry: no match', () => {
    const x = m('n', 'src', {counters: ['--packets-gt 5']})
    expect(decide(s, x, pkt('10.0.0.1', '1.1.1.1'))).toBe('assumed')
    expect(decide(s, x, pkt('10.9.0.1', '1.1.1.1'))).toBe('nomatch')
    expect(decide(s, m('n', 'src', {updateCounters: false}), pkt('10.0.0.1', '1.1.1.1'))).toBe('match')
  })
})

describe('in a chain: decided rules say which entry, undecided ones are assumed and say why', () => {
  const rs = parseIptablesSave(
    '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m set --match-set black src -j DROP\n-A FORWARD -m set --match-set gone src -j REJECT\nCOMMIT\n',
    'iptables-save.txt',
    4,
  )
  const t = rs.tables.get('filter')!
  const s = sets('create black hash:ip\nadd black 10.0.0.66\n')
  const env = (notes: string[]): MatchEnv => ({addrType: () => 'UNICAST', random: () => 0.5, ipsets: s, setNote: (r: IptRule, why: string) => notes.push(`${r.loc.line} ${why}`)})
  test('a listed source is dropped by the set rule, with the entry named', () => {
    const notes: string[] = []
    const r = runChain(t, 'FORWARD', pkt('10.0.0.66', '1.1.1.1'), env(notes))
    expect([r.verdict, r.rule?.loc.line, r.assumptions.length]).toEqual(['DROP', 3, 0])
    expect(notes).toEqual(['3 --match-set black src matches: black (hash:ip) holds 10.0.0.66 in ipset-save.txt:2 `add black 10.0.0.66`'])
  })
  test('another source passes the set rule and meets the one whose set is absent: assumed, and said', () => {
    const notes: string[] = []
    const r = runChain(t, 'FORWARD', pkt('10.0.0.67', '1.1.1.1'), env(notes))
    expect([r.verdict, r.rule?.loc.line]).toEqual(['REJECT', 4])
    expect(r.assumptions.map((a) => a.what)).toEqual(['assumed to match: --match-set gone src (set gone is not in ipset-save.txt)'])
    expect(notes).toEqual(['3 --match-set black src does not match: black (hash:ip) does not hold 10.0.0.67'])
  })
})

describe('the -m set options iptables-save prints after --match-set (kept by the parser as matches of module set)', () => {
  const rs = parseIptablesSave(
    '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m set --match-set n src --return-nomatch ! --update-counters ! --update-subcounters -j DROP\n-A FORWARD -m set --match-set n dst --packets-gt 5 -j REJECT\nCOMMIT\n',
    'iptables-save.txt',
    4,
  )
  const t = rs.tables.get('filter')!
  const s = sets('create n hash:net\nadd n 10.0.0.0/24\nadd n 10.0.0.5 nomatch\n')
  const env: MatchEnv = {addrType: () => 'UNICAST', random: () => 0.5, ipsets: s}
  test('--return-nomatch: the nomatch entry is dropped, the plain one passes; ! --update-counters changes nothing', () => {
    expect(runChain(t, 'FORWARD', pkt('10.0.0.5', '1.1.1.1'), env).rule?.loc.line).toBe(3)
    const plain = runChain(t, 'FORWARD', pkt('10.0.0.6', '1.1.1.1'), env)
    expect([plain.verdict, plain.policy, plain.assumptions]).toEqual(['ACCEPT', true, []])
  })
  test('--packets-gt compares counters that are not modelled: assumed when an entry holds the packet, said so', () => {
    const r = runChain(t, 'FORWARD', pkt('10.9.0.1', '10.0.0.7'), env)
    expect([r.verdict, r.rule?.loc.line]).toEqual(['REJECT', 4])
    expect(r.assumptions.map((a) => a.what)).toEqual(["assumed to match: --match-set n dst: n (hash:net) holds 10.0.0.7 in ipset-save.txt:2 `add n 10.0.0.0/24`; --packets-gt 5 compares the entry's counters, which are not modelled"])
    expect(runChain(t, 'FORWARD', pkt('10.9.0.1', '10.9.0.7'), env).policy).toBe(true)
  })
})

test('the lookup index agrees with a scan of every entry (random hash:net,port and hash:ip,port sets)', () => {
  const addr = fc.tuple(fc.constantFrom(10, 192), fc.integer({min: 0, max: 3}), fc.integer({min: 0, max: 3}), fc.integer({min: 0, max: 3}))
  const entry = fc.record({a: addr, len: fc.constantFrom(8, 16, 24, 30, 32), proto: fc.constantFrom('tcp', 'udp'), port: fc.integer({min: 79, max: 82}), to: fc.integer({min: 0, max: 2}), nomatch: fc.boolean()})
  fc.assert(
    fc.property(fc.array(entry, {maxLength: 12}), fc.array(fc.tuple(addr, fc.constantFrom(6, 17), fc.integer({min: 79, max: 84})), {minLength: 1, maxLength: 6}), (es, ps) => {
      const ipText = (a: number[]) => a.join('.')
      const lines = ['create n hash:net,port', 'create i hash:ip,port']
      const seen = new Set<string>()
      for (const e of es) {
        const v = parseIp(ipText(e.a))!
        const net = formatIp({family: 4, value: (v.value >> BigInt(32 - e.len)) << BigInt(32 - e.len)})
        const key = `${net}/${e.len},${e.proto}:${e.port}`
        if (seen.has(key)) continue
        seen.add(key)
        lines.push(`add n ${net}/${e.len},${e.proto}:${e.port}-${e.port + e.to}${e.nomatch ? ' nomatch' : ''}`)
        lines.push(`add i ${ipText(e.a)},${e.proto}:${e.port}-${e.port + e.to}`)
      }
      const s = sets(lines.join('\n') + '\n')
      for (const [a, proto, port] of ps) {
        const p = pkt(ipText(a), '1.1.1.1', {proto, sport: port})
        // the reference: among the entries holding the packet, the longest prefix decides
        let best: {len: number; nomatch: boolean} | undefined
        for (const e of s.sets.get('n')!.entries) {
          const [net, pp] = e.parts as [Extract<(typeof e.parts)[number], {kind: 'net'}>, Extract<(typeof e.parts)[number], {kind: 'port'}>]
          const inNet = (p.src.value >> BigInt(32 - net.prefix.len)) << BigInt(32 - net.prefix.len) === net.prefix.value || net.prefix.len === 0
          if (!inNet || pp.proto !== proto || port < pp.from || port > pp.to) continue
          if (!best || net.prefix.len > best.len) best = {len: net.prefix.len, nomatch: e.nomatch}
        }
        expect(decide(s, m('n', 'src,src'), p)).toBe(best && !best.nomatch ? 'match' : 'nomatch')
        const inI = s.sets.get('i')!.entries.some((e) => {
          const [x, pp] = e.parts as [Extract<(typeof e.parts)[number], {kind: 'ip'}>, Extract<(typeof e.parts)[number], {kind: 'port'}>]
          return x.from.value === p.src.value && pp.proto === proto && port >= pp.from && port <= pp.to
        })
        expect(decide(s, m('i', 'src,src'), p)).toBe(inI ? 'match' : 'nomatch')
      }
    }),
    {numRuns: 300, seed: 7},
  )
})
