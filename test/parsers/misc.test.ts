// sysctl and conntrack fixtures are real output from scripts/fixtures/ip-sysctl-conntrack.sh (ldp- namespaces);
// keepalived.conf is hand-written and checked with `keepalived -t` (fixtures/parsers/keepalived/README.md).
import {describe, expect, test} from 'vitest'
import {formatIp} from '../../src/model/ip.js'
import {parseConntrack} from '../../src/snapshot/parsers/conntrack.js'
import {parseKeepalived} from '../../src/snapshot/parsers/keepalived.js'
import {parseSysctl} from '../../src/snapshot/parsers/sysctl.js'
import {fixtureReader, ip, parseError} from './helpers.js'

const read = fixtureReader('fixtures/parsers/')

describe('sysctl -a', () => {
  const text = read('sysctl/sysctl.txt')
  const s = parseSysctl(text, 'sysctl.txt')

  test('every line, with the values set in the namespace', () => {
    expect(s.size).toBe(text.trim().split('\n').length)
    expect(s.get('net.ipv4.ip_forward')?.value).toBe('1')
    expect(s.get('net.ipv4.conf.all.rp_filter')?.value).toBe('2')
    expect(s.get('net.ipv4.conf.default.rp_filter')?.value).toBe('0')
    expect(s.get('net.ipv4.conf.all.send_redirects')?.value).toBe('0')
    expect(s.get('net.ipv4.conf.default.accept_local')?.value).toBe('1')
    expect(s.get('net.ipv6.conf.all.forwarding')?.value).toBe('1')
    expect(s.get('net.ipv6.conf.ldp-d0.accept_dad')).toBeDefined()
    expect([...s.keys()].some((k) => k.startsWith('net.netfilter.nf_conntrack_'))).toBe(true)
  })

  test('loc per key; tabs inside values; empty values', () => {
    const f = s.get('net.ipv4.ip_forward')!
    expect(f.loc).toEqual({file: 'sysctl.txt', line: text.split('\n').indexOf('net.ipv4.ip_forward = 1') + 1, text: 'net.ipv4.ip_forward = 1'})
    expect(s.get('net.ipv4.ip_local_port_range')!.value).toMatch(/^\d+\t\d+$/)
    expect(s.get('net.ipv4.ip_local_reserved_ports')!.value).toBe('')
  })

  test('the realserver namespace: arp_ignore/arp_announce', () => {
    const r = parseSysctl(read('sysctl/sysctl-realserver.txt'), 'x')
    expect(r.get('net.ipv4.conf.all.arp_ignore')?.value).toBe('1')
    expect(r.get('net.ipv4.conf.all.arp_announce')?.value).toBe('2')
    expect(r.get('net.ipv4.conf.lo.arp_ignore')?.value).toBe('1')
    expect(r.get('net.ipv4.ip_forward')?.value).toBe('0')
  })

  test('key=value, comments, blank lines, slash keys', () => {
    const m = parseSysctl('# sysctl.conf style\n\nnet.ipv4.ip_forward=1\n; old comment\nnet/ipv4/conf/eth0.100/rp_filter = 2\nnet.ipv4.vs.conntrack = 1\n', 'x')
    expect([...m.keys()]).toEqual(['net.ipv4.ip_forward', 'net.ipv4.conf.eth0/100.rp_filter', 'net.ipv4.vs.conntrack'])
    expect(m.get('net.ipv4.ip_forward')!.loc.line).toBe(3)
    expect(m.get('net.ipv4.vs.conntrack')!.value).toBe('1')
  })

  test("sysctl's own stderr lines (a hand-made `sysctl -a 2>&1`) are skipped", () => {
    const m = parseSysctl('net.ipv4.ip_forward = 1\nsysctl: permission denied on key "net.ipv4.route.flush"\nnet.ipv4.vs.conntrack = 1\n', 'x')
    expect([...m.keys()]).toEqual(['net.ipv4.ip_forward', 'net.ipv4.vs.conntrack'])
  })

  test.each([
    ['', 1],
    ['net.ipv4.ip_forward = 1\nnet.ipv4.conf.all\n', 2],
    ['= 1\n', 1],
  ])('malformed input %#: line %d', (t, line) => {
    const e = parseError(() => parseSysctl(t, 'sysctl.txt'))
    expect(e.file).toBe('sysctl.txt')
    expect(e.line).toBe(line)
  })
})

describe('conntrack -L', () => {
  for (const f of ['conntrack.txt', 'conntrack-extended.txt']) {
    test(`${f}: TCP, UDP replied and unreplied, ICMP with a zone`, () => {
      const e = parseConntrack(read('conntrack/' + f), f)
      expect(e).toHaveLength(4)
      expect(e.every((x) => x.l3 === 'ipv4' && x.loc.file === f)).toBe(true)
      const tcp = e.find((x) => x.proto === 'tcp')!
      expect(tcp).toMatchObject({protoNum: 6, state: 'ESTABLISHED', flags: ['ASSURED'], mark: 0, use: 1})
      expect(tcp.timeout).toBeGreaterThan(431000)
      expect(tcp.orig).toMatchObject({src: ip('10.77.1.2'), dst: ip('10.77.1.1'), dport: 8080})
      expect(tcp.reply).toMatchObject({src: ip('10.77.1.1'), dst: ip('10.77.1.2'), sport: 8080, dport: tcp.orig.sport})
      expect(tcp.zone).toBeUndefined()
      const dns = e.find((x) => x.proto === 'udp' && x.orig.dport === 5353)!
      expect(dns).toMatchObject({protoNum: 17, flags: [], mark: 42, orig: {sport: 40053}, reply: {sport: 5353, dport: 40053}})
      expect(dns.state).toBeUndefined()
      const lost = e.find((x) => x.proto === 'udp' && x.orig.dport === 9999)!
      expect(lost).toMatchObject({flags: ['UNREPLIED'], mark: 0, orig: {sport: 40054}})
      const icmp = e.find((x) => x.proto === 'icmp')!
      expect(icmp).toMatchObject({protoNum: 1, flags: ['UNREPLIED'], zone: 7, orig: {type: 8, code: 0, id: 19524}, reply: {type: 0, code: 0, id: 19524}})
      expect(icmp.orig.sport).toBeUndefined()
      expect(icmp.loc.text).toContain('zone=7')
    })
  }

  test('IPv6, SCTP, /proc/net/nf_conntrack addresses, -o id, the stderr summary line', () => {
    const e = parseConntrack(
      [
        'ipv6     10 tcp      6 117 TIME_WAIT src=2001:0db8:0000:0000:0000:0000:0000:0002 dst=2001:0db8:0000:0000:0000:0000:0000:0001 sport=40000 dport=80 src=2001:0db8:0000:0000:0000:0000:0000:0001 dst=2001:0db8:0000:0000:0000:0000:0000:0002 sport=80 dport=40000 [ASSURED] mark=0 zone=0 use=2',
        'sctp     132 431999 ESTABLISHED src=10.0.0.2 dst=10.0.0.1 sport=3868 dport=3868 src=10.0.0.1 dst=10.0.0.2 sport=3868 dport=3868 [ASSURED] mark=0 use=1 id=3735928559',
        'icmpv6   58 29 src=2001:db8::2 dst=2001:db8::1 type=128 code=0 id=7 src=2001:db8::1 dst=2001:db8::2 type=129 code=0 id=7 mark=0 use=1',
        'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.',
      ].join('\n'),
      'x',
    )
    expect(e).toHaveLength(3)
    expect(e[0]).toMatchObject({l3: 'ipv6', proto: 'tcp', state: 'TIME_WAIT', timeout: 117, zone: 0, use: 2})
    expect(formatIp(e[0]!.orig.src)).toBe('2001:db8::2')
    expect(e[1]).toMatchObject({l3: 'ipv4', proto: 'sctp', protoNum: 132, state: 'ESTABLISHED', flags: ['ASSURED']})
    expect(e[1]!.reply.id).toBeUndefined()
    expect(e[2]).toMatchObject({l3: 'ipv6', proto: 'icmpv6', orig: {type: 128, id: 7}, reply: {type: 129}})
  })

  test('an empty table prints nothing: known-empty', () => {
    expect(parseConntrack('', 'conntrack.txt')).toEqual([])
  })

  test.each([
    ['tcp      6 431998 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2\n', 1],
    ['tcp      6 431998 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 use=1\nhello world\n', 2],
    ['tcp      6 431998 ESTABLISHED src=10.0.0.300 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 use=1\n', 1],
    ['udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=x dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 use=1\n', 1],
  ])('malformed input %#: line %d', (t, line) => {
    const e = parseError(() => parseConntrack(t, 'conntrack.txt'))
    expect(e.file).toBe('conntrack.txt')
    expect(e.line).toBe(line)
  })
})

describe('keepalived.conf', () => {
  const k = parseKeepalived(read('keepalived/keepalived.conf'), 'keepalived.conf')
  const text = read('keepalived/keepalived.conf').split('\n')
  const lineOf = (s: string): number => text.findIndex((l) => l.includes(s)) + 1

  test('global_defs, vrrp addresses, include', () => {
    expect(k.vrrpStrict).toBe(true)
    expect(k.vrrpAddresses.map((v) => [formatIp(v.ip), v.prefixlen, v.dev])).toEqual([
      ['192.168.1.110', 24, 'eth0'],
      ['192.168.1.111', undefined, 'eth0'],
      ['192.168.1.112', 32, 'eth1'],
      ['2001:db8:1::110', 64, 'eth0'],
    ])
    expect(k.vrrpAddresses[0]!.loc).toEqual({file: 'keepalived.conf', line: lineOf('192.168.1.110/24'), text: '        192.168.1.110/24 dev eth0 label eth0:vip'})
    expect(k.includes).toEqual([{path: '/etc/keepalived/conf.d/*.conf', loc: {file: 'keepalived.conf', line: 12, text: 'include /etc/keepalived/conf.d/*.conf'}}])
    expect(k.notModelled).toContainEqual({file: 'keepalived.conf', line: 12, what: expect.stringContaining('include') as string})
  })

  test('virtual_server IP PORT: LVS-DR with persistence granularity, health checks skipped', () => {
    const s = k.services[0]!
    expect(s).toMatchObject({family: 4, proto: 'tcp', vip: ip('192.168.1.110'), port: 80, scheduler: 'wlc', persistence: 300, persistenceNetmask: 24, flags: ['persistent'], ops: false})
    expect(s.loc.line).toBe(lineOf('virtual_server 192.168.1.110 80'))
    expect(s.dests.map((d) => [formatIp(d.ip), d.port, d.method, d.weight])).toEqual([
      ['192.168.1.11', 80, 'route', 3],
      ['192.168.1.12', 80, 'route', 1],
    ])
    expect(s.dests[0]!.loc.line).toBe(lineOf('real_server 192.168.1.11 80'))
    expect(s.notModelled).toBeUndefined()
  })

  test('LVS-NAT: port change, thresholds, sorry_server not modelled', () => {
    const s = k.services[1]!
    expect(s).toMatchObject({proto: 'tcp', vip: ip('192.168.1.111'), port: 8080, scheduler: 'rr'})
    expect(s.persistence).toBeUndefined()
    expect(s.dests[0]).toMatchObject({ip: ip('10.1.1.2'), port: 80, method: 'masq', weight: 1, upperThreshold: 1000, lowerThreshold: 800})
    expect(s.dests[1]).toMatchObject({port: 8080, weight: 2})
    expect(s.notModelled?.map((n) => n.what)).toEqual([expect.stringContaining('sorry_server 10.1.1.99 8080')])
  })

  test('virtual_server fwmark: TUN defaults, per-real-server method, sched flags, bare persistence_timeout', () => {
    const s = k.services[2]!
    expect(s).toMatchObject({proto: 'fwmark', fwmark: 1, family: 4, scheduler: 'sh', schedFlags: ['sh-port', 'sh-fallback'], persistence: 360, persistenceNetmask: 32})
    expect(s.vip).toBeUndefined()
    expect(s.dests[0]).toMatchObject({method: 'tunnel', tunnelType: 'gue', tunnelPort: 6080, tunnelCsum: 'nocsum', port: 0})
    expect(s.dests[1]).toMatchObject({method: 'tunnel', tunnelType: 'ipip', port: 0})
    expect(s.dests[1]!.tunnelPort).toBeUndefined()
  })

  test('virtual_server group: a range and a fwmark resolved into services', () => {
    const g = k.services.filter((s) => s.loc.line === lineOf('virtual_server group DNS'))
    expect(g.map((s) => (s.fwmark !== undefined ? `fwmark ${s.fwmark}` : `${s.proto} ${formatIp(s.vip!)}:${s.port}`))).toEqual([
      'udp 192.168.1.120:53', 'udp 192.168.1.121:53', 'udp 192.168.1.122:53', 'fwmark 7',
    ])
    expect(g.every((s) => s.ops && s.scheduler === 'rr' && s.dests.length === 1 && s.dests[0]!.method === 'route')).toBe(true)
    expect(g[0]!.dests[0]!.port).toBe(53)
    expect(g[3]!.dests[0]!.port).toBe(0)
  })

  test('IPv6 SCTP service with an IPv6 granularity', () => {
    const s = k.services.at(-1)!
    expect(s).toMatchObject({family: 6, proto: 'sctp', vip: ip('2001:db8:1::110'), port: 443, scheduler: 'mh', schedFlags: ['mh-port'], persistence: 360, persistenceNetmask: 64})
    expect(s.dests[0]).toMatchObject({ip: ip('2001:db8:2::11'), port: 443, method: 'route'})
    expect(k.services).toHaveLength(8)
  })

  test('defaults: NAT, wlc and UDP, noted; groups: small ranges resolved, big ranges and prefixes recorded', () => {
    const d = parseKeepalived(
      'virtual_server 10.0.0.1 80 {\n  real_server 10.0.1.1 8080 {\n    weight 2\n  }\n}\nvirtual_server_group BIG {\n  10.0.0.1-3 80\n  2001:db8::1-ffff 80\n  10.0.1.0/24 80\n  10.0.2.1 443\n}\nvirtual_server group BIG {\n  lb_algo rr\n  protocol TCP\n  real_server 10.0.1.2 80 {\n  }\n}\n',
      'x',
    )
    expect(d.services[0]).toMatchObject({proto: 'udp', scheduler: 'wlc'})
    expect(d.services[0]!.dests[0]).toMatchObject({method: 'masq', port: 8080, weight: 2})
    expect(d.services[0]!.notModelled?.map((n) => n.what)).toEqual([expect.stringContaining('lb_algo'), expect.stringContaining('protocol')])
    expect(d.services.slice(1).map((s) => `${s.proto} ${formatIp(s.vip!)}:${s.port}`)).toEqual(['tcp 10.0.0.1:80', 'tcp 10.0.0.2:80', 'tcp 10.0.0.3:80', 'tcp 10.0.2.1:443'])
    expect(d.notModelled?.map((n) => [n.line, n.what])).toEqual([
      [8, expect.stringContaining('range 2001:db8::1-ffff (65535 addresses)')],
      [9, expect.stringContaining('prefix 10.0.1.0/24')],
      [12, expect.stringContaining('only the simple entries')],
    ])
  })

  test('comments with # and !, braces on their own lines and on one line', () => {
    const d = parseKeepalived('! c\nvirtual_server 10.0.0.1 80   # trailing\n{\n  lb_algo rr ! note\n  lb_kind DR\n  protocol TCP\n  real_server 10.0.1.1 80 { weight 4 }\n}\n', 'x')
    expect(d.services[0]).toMatchObject({scheduler: 'rr', port: 80})
    expect(d.services[0]!.dests[0]).toMatchObject({method: 'route', weight: 4})
    expect(d.services[0]!.loc.line).toBe(2)
  })

  test('an empty keepalived.conf has no services', () => {
    expect(parseKeepalived('', 'x').services).toEqual([])
  })

  test.each([
    ['virtual_server 10.0.0.1 80 {\n  lb_algo rr\n  real_server 10.0.1.1 80 {\n    weight 1\n', 4, 'truncated'],
    // an unknown lb_kind or a non-numeric address is a config error keepalived runs with: real-world.test.ts
    ['virtual_server 10.0.0.1 80 {\n  lb_kind TUN type sideways\n}\n', 2, 'a tunnel type'],
    ['virtual_server 10.0.0.1 80 {\n  real_server 10.0.1.1 80 {\n  }\n  weight heavy\n}\n', 4, 'a default real server weight'],
    ['virtual_server 10.0.0.1 80 {\n  real_server 10.0.1.1 80 {\n    weight lots\n  }\n}\n', 3, 'a weight'],
    ['}\n', 1, 'close an open block'],
    ['virtual_server group NOPE {\n}\n', 1, 'virtual_server_group named NOPE'],
  ])('malformed input %#: line %d', (t, line, expected) => {
    const e = parseError(() => parseKeepalived(t, 'keepalived.conf'))
    expect(e.file).toBe('keepalived.conf')
    expect(e.line).toBe(line)
    expect(e.message).toContain(expected)
  })
})
