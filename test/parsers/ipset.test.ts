// ipset-save.txt: real `ipset save` output (scripts/fixtures/ipset-fixtures.sh, ipset 7.17 in a namespace), the
// types this kernel lacks in the same format (handwritten-types.txt), and malformed input.
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {formatIp} from '../../src/model/ip.js'
import type {IpSet, IpsetPart} from '../../src/model/ipset.js'
import {parseIpsetSave, rangeToPrefixes} from '../../src/snapshot/parsers/ipset.js'
import {detectFileType, loadSnapshots} from '../../src/snapshot/store.js'
import {fixtureReader, ip, parseError} from './helpers.js'

const read = fixtureReader('fixtures/parsers/ipset/')
const F = 'ipset-save.txt'

function part(x: IpsetPart): string {
  switch (x.kind) {
    case 'ip':
      return x.from.value === x.to.value ? formatIp(x.from) : `${formatIp(x.from)}-${formatIp(x.to)}`
    case 'net':
      return `${formatIp({family: x.prefix.family, value: x.prefix.value})}/${x.prefix.len}`
    case 'port':
      return `${x.proto ?? '?'}:${x.from}${x.to !== x.from ? `-${x.to}` : ''}`
    case 'mark':
      return `0x${x.value.toString(16)}`
    case 'iface':
      return `${x.physdev ? 'physdev:' : ''}${x.name}`
    case 'mac':
      return x.mac
    case 'set':
      return x.name
  }
}
const entries = (s: IpSet | undefined) => (s?.entries ?? []).map((e) => e.parts.map(part).join(',') + (e.nomatch ? ' nomatch' : '')).sort()

describe('ipset save: every type this kernel has (real output)', () => {
  const text = read('ipset-save.txt')
  const r = parseIpsetSave(text, F)

  test('every create and add line is kept, with its type, dimensions and family', () => {
    expect(r.entryCount).toBe(text.split('\n').filter((l) => l.startsWith('add ')).length)
    expect([...r.sets.values()].map((s) => `${s.name} ${s.type} ${s.dims?.join(',')} ${s.family ?? '-'}`)).toEqual([
      'lis-ip hash:ip ip 4',
      'lis-ip6 hash:ip ip 6',
      'lis-net hash:net net 4',
      'lis-ipport hash:ip,port ip,port 4',
      'lis-ipportip hash:ip,port,ip ip,port,ip 4',
      'lis-ipportnet hash:ip,port,net ip,port,net 4',
      'lis-netport hash:net,port net,port 4',
      'lis-netiface hash:net,iface net,iface 4',
      'lis-bip bitmap:ip ip 4',
      'lis-bnet bitmap:ip ip 4',
      'lis-bport bitmap:port port -',
      'lis-bmac bitmap:ip,mac ip,mac 4',
      'lis-hnet hash:ip ip 4',
      'lis-empty hash:net net 4',
      'lis-list list:set set -',
    ])
    for (const s of r.sets.values()) for (const e of s.entries) expect(e.loc.text.startsWith(`add ${s.name} `)).toBe(true)
    expect(r.notModelled).toEqual([])
  })

  test('entries as ipset expanded them: ranges and CIDRs of hash:ip one address each, hash:net ranges as prefixes', () => {
    expect(entries(r.sets.get('lis-ip'))).toEqual(['10.0.0.1', '10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7', '10.0.1.1', '10.0.1.2'])
    expect(entries(r.sets.get('lis-net'))).toEqual(['10.1.0.0/16', '10.1.2.0/24 nomatch', '10.2.0.0/30', '10.2.0.4/31', '192.168.0.5/32'])
    expect(entries(r.sets.get('lis-bip'))).toEqual(['10.0.0.1', '10.0.0.10', '10.0.0.11', '10.0.0.12'])
    expect(entries(r.sets.get('lis-list'))).toEqual(['lis-ip', 'lis-net'])
  })

  test('the port dimension holds the protocol: tcp by default, icmp type/code, port 0 for a protocol without ports', () => {
    expect(entries(r.sets.get('lis-ipport'))).toEqual(
      ['10.0.0.1,17:53', '10.0.0.1,6:80', '10.0.0.2,1:2048', '10.0.0.3,47:0', '10.0.0.5,6:80', '10.0.0.6,6:8000', '10.0.0.6,6:8001', '10.0.0.6,6:8002', '10.0.0.7,132:9', '10.0.0.8,136:5'].sort(),
    )
    expect(entries(r.sets.get('lis-ipportnet'))).toEqual(['10.0.0.1,6:80,10.2.0.0/16', '10.0.0.1,6:80,10.2.3.0/24 nomatch'])
  })

  test('options: counters, comment, timeout, skbinfo, netmask, ranges, physdev and wildcard', () => {
    const net = r.sets.get('lis-net')!
    expect(net.options.has('counters') && net.options.has('comment')).toBe(true)
    const office = net.entries.find((e) => e.comment !== undefined)!
    expect([office.comment, office.packets, office.bytes]).toEqual(['office lan', 0, 0])
    expect(net.entries.find((e) => e.packets === 5)?.bytes).toBe(100)
    expect(r.sets.get('lis-ip6')!.timeout).toBe(300)
    expect(r.sets.get('lis-ip6')!.entries.every((e) => e.timeout !== undefined && e.timeout <= 300)).toBe(true)
    const hnet = r.sets.get('lis-hnet')!
    expect(hnet.netmask).toBe(24)
    expect(entries(hnet)).toEqual(['10.5.5.0'])
    expect([hnet.entries[0]!.skbmark, hnet.entries[0]!.skbprio, hnet.entries[0]!.skbqueue]).toEqual(['0x10/0xff', '1:2', 3])
    expect(r.sets.get('lis-bnet')!.netmask).toBe(24)
    expect(formatIp(r.sets.get('lis-bnet')!.range!.to)).toBe('10.0.255.255')
    expect(r.sets.get('lis-bport')!.portRange).toEqual([30000, 32767])
    expect(entries(r.sets.get('lis-netiface'))).toEqual(['10.0.0.0/8,eth0', '10.0.0.0/8,physdev:eth1', '10.1.0.0/16,veth'])
    expect(r.sets.get('lis-netiface')!.entries.find((e) => e.wildcard)?.text).toBe('10.1.0.0/16,veth')
    // bitmap:ip,mac: an entry may leave the MAC out
    expect(entries(r.sets.get('lis-bmac'))).toEqual(['10.0.0.1,00:11:22:33:44:55', '10.0.0.2'])
  })
})

test('icmp and ipv6-icmp names: every name ipset printed is the type/code that was added (the address encodes it)', () => {
  const r = parseIpsetSave(read('icmp.txt'), F)
  let n = 0
  for (const s of r.sets.values()) {
    for (const e of s.entries) {
      const [a, p] = e.parts as [Extract<IpsetPart, {kind: 'ip'}>, Extract<IpsetPart, {kind: 'port'}>]
      const v = a.from.value
      const [t, c] = s.family === 4 ? [Number((v >> 8n) & 0xffn), Number(v & 0xffn)] : [Number(BigInt.asUintN(16, v >> 16n).toString(16)), Number((v & 0xffffn).toString(16))]
      expect(p.proto, e.loc.text).toBe(s.family === 4 ? 1 : 58)
      expect([p.from >> 8, p.from & 0xff], e.loc.text).toEqual([t, c])
      n++
    }
  }
  expect(n).toBe(14 * 16 + 11 * 5)
})

test('kube-proxy IPVS mode: its sets with comments, bitmap:port over every port', () => {
  const r = parseIpsetSave(read('kube-proxy.txt'), F)
  expect(r.sets.get('KUBE-NODE-PORT-TCP')!.portRange).toEqual([0, 65535])
  expect(entries(r.sets.get('KUBE-CLUSTER-IP'))).toEqual(['10.96.0.1,6:443', '10.96.0.10,17:53', '10.96.0.10,6:53', '10.96.12.7,6:80'])
  expect(entries(r.sets.get('KUBE-LOOP-BACK'))).toEqual(['10.244.1.5,6:80,10.244.1.5', '10.244.1.9,17:53,10.244.1.9'])
  expect(r.sets.get('KUBE-CLUSTER-IP')!.entries.find((e) => e.comment === 'default/kubernetes:https')).toBeDefined()
  expect(entries(r.sets.get('KUBE-LOAD-BALANCER-SOURCE-CIDR'))).toEqual(['192.0.2.50,6:80,203.0.113.0/24'])
})

test('types this kernel lacks (hand-written in the same format); a type lvsdoctor does not know is kept and said', () => {
  const r = parseIpsetSave(read('handwritten-types.txt'), F)
  expect(entries(r.sets.get('lis-netnet'))).toEqual(['10.0.0.0/8,192.168.0.0/16', '10.1.0.0/16,192.168.0.0/16 nomatch', '10.1.2.0/24,192.168.1.0/24'])
  expect(entries(r.sets.get('lis-netportnet'))).toEqual(['10.0.0.0/8,6:80,10.2.0.0/16'])
  expect(r.sets.get('lis-ipmark')!.markmask).toBe(0xff)
  expect(entries(r.sets.get('lis-ipmark'))).toEqual(['10.0.0.1,0x5'])
  expect(entries(r.sets.get('lis-mac'))).toEqual(['00:11:22:33:44:55'])
  expect(r.sets.get('lis-mac')!.family).toBeUndefined()
  const future = r.sets.get('lis-future')!
  expect(future.dims).toBeUndefined()
  expect(future.entries.map((e) => e.text)).toEqual(['10.0.0.0/8,tcp:80,10.2.0.0/16,tcp:8080'])
  expect(r.notModelled).toEqual([{file: F, line: 13, what: 'ipset type hash:net,port,net,port (set lis-future): its matches stay undecided'}])
})

test('valid syntax not modelled is kept and listed, never fatal', () => {
  const r = parseIpsetSave('create x hash:ip family inet probes 4 somethingnew 7\nadd x 10.0.0.1 newflag 3\ncreate y hash:ip,port\nadd y 10.0.0.1,frobnicate:0\n', F)
  expect(r.notModelled.map((n) => `${n.line} ${n.what}`)).toEqual([
    '1 ipset create option somethingnew 7 (set x)',
    '2 ipset entry option newflag 3 (set x)',
    '4 ipset entry part frobnicate:0: protocol frobnicate is not known (matches on this entry stay undecided)',
  ])
  expect(r.sets.get('x')!.entries[0]!.unknownOptions).toEqual(['newflag 3'])
})

describe('malformed input: ParseError with the file, the line and what was expected', () => {
  const C = 'create s hash:ip\n'
  test.each([
    ['an unknown command', 'flush s\n', 1, 'an ipset save line: create NAME TYPE ... or add NAME ENTRY ...'],
    ['add to a set never created', 'add t 10.0.0.1\n', 1, 'a set created by an earlier create line (no set t)'],
    ['a bad address', C + 'add s 10.0.0.300\n', 2, 'an IPv4 address in the entry of hash:ip'],
    ['an IPv6 address in an inet set', C + 'add s 2001:db8::1\n', 2, 'an IPv4 address in the entry of hash:ip'],
    ['two parts for one dimension', C + 'add s 10.0.0.1,tcp:80\n', 2, 'an entry of 1 comma-separated part (ip) for hash:ip'],
    ['a bad port', 'create p hash:ip,port\nadd p 10.0.0.1,tcp:70000\n', 2, 'a port [PROTO:]PORT[-PORT] in the entry of hash:ip,port'],
    ['a bad icmp name', 'create p hash:ip,port\nadd p 10.0.0.1,icmp:pingg\n', 2, 'an ICMP type name or TYPE/CODE after icmp:'],
    ['a bad prefix length', 'create n hash:net\nadd n 10.0.0.0/33\n', 2, 'a prefix length 1..32 in the entry of hash:net'],
    ['a bad family', 'create s hash:ip family ipx\n', 1, 'family inet or inet6'],
    ['a type that is no type', 'create s sausage\n', 1, 'a set type such as hash:ip, hash:net,port, bitmap:port or list:set'],
    ['a set created twice', C + C, 2, 'one create line per set (s was created on line 1)'],
    ['an address outside the bitmap', 'create b bitmap:ip range 10.0.0.0/24\nadd b 10.0.1.1\n', 2, 'an address inside the range of b (10.0.0.0-10.0.0.255)'],
    ['a port outside the bitmap', 'create b bitmap:port range 1-10\nadd b 11\n', 2, 'a port inside the range of b (1-10)'],
    ['an unterminated comment', C + 'add s 10.0.0.1 comment "abc\n', 2, 'a closing double quote'],
    ['a timeout that is no number', C + 'add s 10.0.0.1 timeout soon\n', 2, 'a timeout in seconds after timeout'],
    ['a MAC that is no MAC', 'create m hash:mac\nadd m 00:11:22:33:44\n', 2, 'a MAC address xx:xx:xx:xx:xx:xx'],
  ])('%s', (_what, text, line, expected) => {
    const e = parseError(() => parseIpsetSave(text, F))
    expect(e.file).toBe(F)
    expect(e.line).toBe(line)
    expect(e.expected).toBe(expected)
    expect(e.message).toMatch(new RegExp(`^${F}:${line}: expected `))
  })
})

test('rangeToPrefixes covers a range exactly with the fewest prefixes', () => {
  const show = (a: string, b: string) => rangeToPrefixes(ip(a), ip(b)).map((p) => `${formatIp({family: 4, value: p.value})}/${p.len}`)
  expect(show('10.2.0.0', '10.2.0.5')).toEqual(['10.2.0.0/30', '10.2.0.4/31'])
  expect(show('10.0.0.1', '10.0.0.1')).toEqual(['10.0.0.1/32'])
  expect(show('0.0.0.0', '255.255.255.255')).toEqual(['0.0.0.0/0'])
})

test('a bare ipset save file is recognised and loaded; a malformed one is an error of the host, not a crash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lis-bare-'))
  try {
    expect(detectFileType(Buffer.from(read('kube-proxy.txt')))).toBe('ipset-save.txt')
    expect(detectFileType(Buffer.from('# sets\ncreate x list:set size 8\n'))).toBe('ipset-save.txt')
    expect(detectFileType(Buffer.from('create table inet filter\n'))).toBeUndefined()
    const good = join(dir, 'sets.txt')
    writeFileSync(good, read('kube-proxy.txt'))
    const [h] = loadSnapshots([good])
    expect(h!.errors).toEqual([])
    expect(h!.ipsets!.sets.size).toBe(14)
    const bad = join(dir, 'snap')
    mkdirSync(bad)
    writeFileSync(join(bad, 'ipset-save.txt'), 'create x hash:ip\nadd x nonsense\n')
    const [b] = loadSnapshots([bad])
    expect(b!.ipsets).toBeUndefined()
    expect(b!.errors.map((e) => e.message)).toEqual(['ipset-save.txt:2: expected an IPv4 address in the entry of hash:ip, found "nonsense"'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
