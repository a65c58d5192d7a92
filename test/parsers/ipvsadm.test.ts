// ipvsadm fixtures are printed with ipvsadm.c's formats (fixtures/parsers/ipvsadm/README.md).
import {readFileSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {formatIp} from '../../src/model/ip.js'
import type {IpvsService} from '../../src/model/ipvs.js'
import {mergeIpvsList, parseIpvsadmConns, parseIpvsadmList, parseIpvsadmSave} from '../../src/snapshot/parsers/ipvsadm.js'
import {fixtureReader, ip, parseError} from './helpers.js'

const dir = 'fixtures/parsers/ipvsadm/'
const read = fixtureReader(dir)
const name = (s: IpvsService): string => (s.fwmark !== undefined ? `fwm ${s.fwmark}/${s.family}` : `${s.proto} ${formatIp(s.vip!)}:${s.port}`)
const find = (svcs: IpvsService[], n: string): IpvsService => {
  const s = svcs.find((x) => name(x) === n)
  expect(s, n).toBeDefined()
  return s!
}

describe('ipvsadm -Sn', () => {
  const svcs = parseIpvsadmSave(read('ipvsadm-Sn.txt'), 'ipvsadm-Sn.txt')

  test('every service in the file, in file order', () => {
    expect(svcs.map(name)).toEqual([
      'tcp 192.168.1.110:80', 'tcp 192.168.1.110:443', 'tcp 192.168.1.111:80', 'tcp 192.168.1.112:80', 'tcp 192.168.1.113:21',
      'udp 192.168.1.110:53', 'udp 192.168.1.110:5060', 'sctp 192.168.1.110:3868', 'tcp 2001:db8:1::110:80', 'tcp 2001:db8:1::110:443',
      'fwm 1/4', 'fwm 2/6',
    ])
    expect(svcs.reduce((n, s) => n + s.dests.length, 0)).toBe(21)
  })

  test('LVS-DR service with two realservers', () => {
    const s = find(svcs, 'tcp 192.168.1.110:80')
    expect(s).toMatchObject({family: 4, proto: 'tcp', vip: ip('192.168.1.110'), port: 80, scheduler: 'wlc', flags: [], schedFlags: [], ops: false})
    expect(s.persistence).toBeUndefined()
    expect(s.loc).toEqual({file: 'ipvsadm-Sn.txt', line: 1, text: '-A -t 192.168.1.110:80 -s wlc'})
    expect(s.dests).toHaveLength(2)
    expect(s.dests[0]).toMatchObject({ip: ip('192.168.1.11'), port: 80, method: 'route', weight: 1, upperThreshold: 0, lowerThreshold: 0})
    expect(s.dests[1]!.loc).toEqual({file: 'ipvsadm-Sn.txt', line: 3, text: '-a -t 192.168.1.110:80 -r 192.168.1.12:80 -g -w 1'})
  })

  test('persistence with a granularity mask', () => {
    const s = find(svcs, 'tcp 192.168.1.110:443')
    expect(s.persistence).toBe(360)
    expect(s.persistenceNetmask).toBe(24)
    expect(s.flags).toEqual(['persistent'])
  })

  test('LVS-NAT with a port change and weights', () => {
    const s = find(svcs, 'tcp 192.168.1.111:80')
    expect(s.scheduler).toBe('rr')
    expect(s.dests.map((d) => [formatIp(d.ip), d.port, d.method, d.weight])).toEqual([
      ['10.1.1.2', 80, 'masq', 1],
      ['10.1.1.3', 8080, 'masq', 2],
    ])
  })

  test('LVS-Tun: ipip and gue with port and checksum mode', () => {
    const s = find(svcs, 'tcp 192.168.1.112:80')
    expect(s.dests[0]).toMatchObject({method: 'tunnel', weight: 3, tunnelType: 'ipip'})
    expect(s.dests[0]!.tunnelPort).toBeUndefined()
    expect(s.dests[1]).toMatchObject({method: 'tunnel', weight: 1, tunnelType: 'gue', tunnelPort: 6080, tunnelCsum: 'nocsum'})
  })

  test('scheduler flags, one-packet scheduling and a persistence engine', () => {
    expect(find(svcs, 'tcp 192.168.1.113:21').schedFlags).toEqual(['sh-fallback', 'sh-port'])
    const sip = find(svcs, 'udp 192.168.1.110:5060')
    expect(sip).toMatchObject({proto: 'udp', persistence: 60, persistenceNetmask: 32, pe: 'sip', ops: true, flags: ['persistent', 'ops']})
  })

  test('a quiesced destination keeps weight 0', () => {
    expect(find(svcs, 'udp 192.168.1.110:53').dests.map((d) => d.weight)).toEqual([1, 0])
  })

  test('SCTP, IPv6 and fwmark services', () => {
    expect(find(svcs, 'sctp 192.168.1.110:3868').dests.every((d) => d.method === 'masq')).toBe(true)
    const v6 = find(svcs, 'tcp 2001:db8:1::110:443')
    expect(v6).toMatchObject({family: 6, persistence: 300, persistenceNetmask: 64})
    expect(v6.dests[0]).toMatchObject({ip: ip('2001:db8:2::11'), port: 443})
    expect(find(svcs, 'tcp 2001:db8:1::110:80').schedFlags).toEqual(['mh-port'])
    const f1 = find(svcs, 'fwm 1/4')
    expect(f1).toMatchObject({proto: 'fwmark', fwmark: 1, family: 4, persistence: 1800, persistenceNetmask: 32})
    expect(f1.vip).toBeUndefined()
    expect(f1.dests.map((d) => `${formatIp(d.ip)}:${d.port}`)).toEqual(['192.168.1.11:0', '192.168.1.12:0'])
    expect(find(svcs, 'fwm 2/6').dests[0]!.ip).toEqual(ip('2001:db8:2::11'))
  })

  test('long options, thresholds, -p without a timeout, a destination without a port', () => {
    const text = [
      '--add-service --tcp-service 10.0.0.1:80 --scheduler lc --persistent',
      '--add-server --tcp-service 10.0.0.1:80 --real-server 10.0.1.1 --gatewaying --weight 5 --u-threshold 100 --l-threshold 50',
      '-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -m -x 10 -y 5',
      '-A -f 7 -s rr',
      '-a -f 7 -r 10.0.1.3:0 -i',
    ].join('\n')
    const [s, f] = parseIpvsadmSave(text, 'x')
    expect(s).toMatchObject({scheduler: 'lc', persistence: 360, persistenceNetmask: 32})
    expect(s!.dests[0]).toMatchObject({port: 80, method: 'route', weight: 5, upperThreshold: 100, lowerThreshold: 50})
    expect(s!.dests[1]).toMatchObject({port: 8080, method: 'masq', weight: 1, upperThreshold: 10, lowerThreshold: 5})
    expect(f!.dests[0]).toMatchObject({method: 'tunnel', tunnelType: 'ipip', port: 0})
  })

  test('an unknown option is kept as not modelled, -C clears, daemon lines are not modelled', () => {
    const [s] = parseIpvsadmSave('-A -t 10.0.0.9:1 -s rr\n-C\n-A -t 10.0.0.1:80 -s rr --new-thing\n--start-daemon master\n', 'x')
    expect(name(s!)).toBe('tcp 10.0.0.1:80')
    expect(s!.notModelled).toEqual([
      {file: 'x', line: 3, what: 'ipvsadm option --new-thing'},
      {file: 'x', line: 4, what: 'ipvsadm --start-daemon'},
    ])
  })

  test('an empty -Sn (IPVS with no services) is known-empty', () => {
    expect(parseIpvsadmSave('', 'x')).toEqual([])
  })

  test.each([
    ['-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.2:80 -r 10.0.1.1:80 -g -w 1\n', 2, 'the -A line'],
    ['-A -t www.example.com:http -s rr\n', 1, 'numeric'],
    ['-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w heavy\n', 2, 'a weight'],
    ['-A -t 10.0.0.1:80 -s rr\nTCP  10.0.0.1:80 rr\n', 2, '-Sn'],
    ['-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r', 2, 'a value after -r'],
  ])('malformed input %#: line %i', (text, line, expected) => {
    const e = parseError(() => parseIpvsadmSave(text, 'ipvsadm-Sn.txt'))
    expect(e.file).toBe('ipvsadm-Sn.txt')
    expect(e.line).toBe(line)
    expect(e.message).toContain(expected)
  })
})

describe('ipvsadm -Ln', () => {
  const plain = parseIpvsadmList(read('ipvsadm-Ln.txt'), 'ipvsadm-Ln.txt')
  const save = parseIpvsadmSave(read('ipvsadm-Sn.txt'), 'ipvsadm-Sn.txt')

  test('the same services and destinations as -Sn', () => {
    expect(plain.map(name)).toEqual(save.map(name))
    for (const [k, s] of plain.entries()) {
      const o = save[k]!
      expect([s.scheduler, s.persistence, s.persistenceNetmask, s.schedFlags, s.ops, s.pe], name(s)).toEqual([o.scheduler, o.persistence, o.persistenceNetmask, o.schedFlags, o.ops, o.pe])
      expect(s.dests.map((d) => [formatIp(d.ip), d.port, d.weight])).toEqual(o.dests.map((d) => [formatIp(d.ip), d.port, d.weight]))
    }
  })

  test('forwarding methods, Local, connection counts, lines', () => {
    const dr = find(plain, 'tcp 192.168.1.110:80')
    expect(dr.loc).toEqual({file: 'ipvsadm-Ln.txt', line: 4, text: 'TCP  192.168.1.110:80 wlc'})
    expect(dr.dests[0]).toMatchObject({method: 'route', weight: 1, activeConns: 12, inactiveConns: 40})
    expect(dr.dests[0]!.loc.line).toBe(5)
    expect(find(plain, 'tcp 192.168.1.111:80').dests[1]).toMatchObject({method: 'masq', weight: 2, activeConns: 6, inactiveConns: 17})
    expect(find(plain, 'tcp 192.168.1.112:80').dests.map((d) => d.method)).toEqual(['tunnel', 'tunnel'])
    expect(find(plain, 'tcp 192.168.1.113:21').dests[0]).toMatchObject({ip: ip('127.0.0.1'), method: 'local'})
    expect(find(plain, 'fwm 2/6').dests[0]).toMatchObject({method: 'route', activeConns: 0, inactiveConns: 1})
  })

  test('--tun-info gives tunnel type, port and checksum mode', () => {
    const t = parseIpvsadmList(read('ipvsadm-Ln-tun-info.txt'), 'x')
    const s = find(t, 'tcp 192.168.1.112:80')
    expect(s.dests[0]).toMatchObject({method: 'tunnel', tunnelType: 'ipip', weight: 3, activeConns: 2, inactiveConns: 1})
    expect(s.dests[1]).toMatchObject({tunnelType: 'gue', tunnelPort: 6080, tunnelCsum: 'nocsum', weight: 1})
    expect(find(t, 'tcp 192.168.1.110:80').dests[0]!.tunnelType).toBeUndefined()
  })

  test('--stats counters, with print_largenum suffixes', () => {
    const st = parseIpvsadmList(read('ipvsadm-Ln-stats.txt'), 'x')
    expect(st.map(name)).toEqual(save.map(name))
    expect(find(st, 'tcp 192.168.1.110:80').stats).toEqual({conns: 1234, inPkts: 98765, outPkts: 0, inBytes: 6172300, outBytes: 0})
    const big = find(st, 'tcp 192.168.1.110:443')
    expect(big.stats).toEqual({conns: 523412, inPkts: 123456000, outPkts: 0, inBytes: 1523000000, outBytes: 0})
    expect(big.dests[0]!.stats).toEqual({conns: 261706, inPkts: 61728394, outPkts: 0, inBytes: 761706000, outBytes: 0})
    // --stats does not print the forwarding method or the weight
    expect(big.dests[0]!.method).toBe('unknown')
    expect(big.dests[0]!.weight).toBeNaN()
    expect(find(st, 'fwm 2/6').dests[0]!.stats!.inPkts).toBe(10)
  })

  test('--rate', () => {
    const r = parseIpvsadmList(read('ipvsadm-Ln-rate.txt'), 'x')
    expect(find(r, 'tcp 192.168.1.111:80').rate).toEqual({cps: 1, inPps: 10, outPps: 9, inBps: 800, outBps: 12000})
    expect(find(r, 'udp 192.168.1.110:53').dests[0]!.rate).toEqual({cps: 120, inPps: 240, outPps: 0, inBps: 16800, outBps: 0})
  })

  test('--thresholds and --persistent-conn column sets', () => {
    const th = parseIpvsadmList(
      'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80 wlc\n  -> 10.0.1.1:80                  100        50         3          4         \n',
      'x',
    )
    expect(th[0]!.dests[0]).toMatchObject({upperThreshold: 100, lowerThreshold: 50, activeConns: 3, inactiveConns: 4, method: 'unknown'})
    const pc = parseIpvsadmList(
      'Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80 wlc persistent 300\n  -> 10.0.1.1:80                  2         7           3          4         \n',
      'x',
    )
    expect(pc[0]!.dests[0]).toMatchObject({weight: 2, persistConns: 7, activeConns: 3, inactiveConns: 4})
  })

  test('-Ln counters merge into the -Sn services', () => {
    const merged = mergeIpvsList(save, parseIpvsadmList(read('ipvsadm-Ln-stats.txt'), 'x'))
    const s = find(merged, 'tcp 192.168.1.110:443')
    expect(s.stats!.conns).toBe(523412)
    expect(s.dests[0]).toMatchObject({method: 'route', weight: 1})
    expect(s.dests[0]!.stats!.conns).toBe(261706)
    const withConns = mergeIpvsList(save, plain)
    expect(find(withConns, 'tcp 192.168.1.113:21').dests[0]!.method).toBe('local')
    expect(find(withConns, 'tcp 192.168.1.110:80').dests[1]!.activeConns).toBe(11)
  })

  test.each([
    ['', 1, 'an empty file'],
    ['TCP  10.0.0.1:80 wlc\n', 1, 'header'],
    ['IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n  -> 10.0.1.1:80   Route 1 0 0\n', 4, 'a service line before'],
    ['Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  10.0.0.1:80 wlc\n  -> 10.0.1.1:80   Sideways 1 0 0\n', 4, 'a forwarding method'],
    ['Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  10.0.0.1:80 wlc\n  -> 10.0.1.1:80   Route 1 0\n', 4, '4 columns'],
    ['Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80   1 2 3 4 5X\n', 3, 'K/M/G/T'],
    ['Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nICMP 10.0.0.1:80 wlc\n', 3, 'a service line'],
    ['Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  10.0.0.1:80 wlc\nTCP  10.0.0.1:80 rr\n', 4, 'listed once'],
  ])('malformed input %#: line %i', (text, line, expected) => {
    const e = parseError(() => parseIpvsadmList(text, 'ipvsadm-Ln.txt'))
    expect(e.line).toBe(line)
    expect(e.message).toContain(expected)
  })
})

describe('ipvsadm -Lnc', () => {
  const conns = parseIpvsadmConns(read('ipvsadm-Lnc.txt'), 'ipvsadm-Lnc.txt')

  test('every entry, field by field', () => {
    expect(conns).toHaveLength(10)
    expect(conns[0]).toEqual({
      proto: 'tcp',
      expire: 14 * 60 + 58,
      state: 'ESTABLISHED',
      client: {ip: ip('203.0.113.7'), port: 51234},
      virtual: {ip: ip('192.168.1.110'), port: 80},
      dest: {ip: ip('192.168.1.11'), port: 80},
      loc: {file: 'ipvsadm-Lnc.txt', line: 3, text: 'TCP 14:58  ESTABLISHED 203.0.113.7:51234  192.168.1.110:80   192.168.1.11:80'},
    })
    expect(conns.map((c) => c.state)).toEqual(['ESTABLISHED', 'FIN_WAIT', 'TIME_WAIT', 'SYN_RECV', 'NONE', 'ESTABLISHED', 'UDP', 'ESTABLISHED', 'NONE', 'ESTABLISHED'])
    expect(conns[5]!.expire).toBe(21600) // 360:00
    expect(conns[6]).toMatchObject({proto: 'udp', expire: 289})
    expect(conns[7]).toMatchObject({proto: 'sctp', expire: 3597, dest: {ip: ip('192.168.1.12'), port: 3868}})
    expect(conns[8]).toMatchObject({virtual: {ip: ip('0.0.0.1'), port: 0}, client: {port: 0}})
    expect(conns[9]).toMatchObject({client: {ip: ip('2001:db8:9::7'), port: 51000}, dest: {ip: ip('2001:db8:2::12'), port: 80}})
  })

  test('/proc/net/ip_vs_conn format', () => {
    const p = parseIpvsadmConns(
      'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\nTCP CB007107 C822 C0A8016E 0050 C0A8010B 0050 ESTABLISHED    898\n',
      'x',
    )
    expect(p[0]).toMatchObject({proto: 'tcp', expire: 898, state: 'ESTABLISHED', client: {ip: ip('203.0.113.7'), port: 51234}, virtual: {ip: ip('192.168.1.110'), port: 80}})
  })

  test.each([
    ['', 1, 'an empty file'],
    ['TCP 14:58  ESTABLISHED 1.2.3.4:5 1.2.3.4:80 1.2.3.5:80\n', 1, 'header'],
    ['IPVS connection entries\npro expire state       source             virtual            destination\nTCP 14:58  ESTABLISHED 1.2.3.4:5\n', 3, 'pro expire state'],
    ['IPVS connection entries\npro expire state       source             virtual            destination\nTCP 14m58  ESTABLISHED 1.2.3.4:5 1.2.3.4:80 1.2.3.5:80\n', 3, 'mm:ss'],
  ])('malformed input %#: line %i', (text, line, expected) => {
    const e = parseError(() => parseIpvsadmConns(text, 'ipvsadm-Lnc.txt'))
    expect(e.line).toBe(line)
    expect(e.message).toContain(expected)
  })
})

describe('the ipvsadm fixtures are what their script prints', () => {
  test('scripts/fixtures/ipvsadm-from-source.sh reproduces every file byte for byte', async () => {
    const {execFileSync} = await import('node:child_process')
    const {mkdtempSync, readdirSync, rmSync} = await import('node:fs')
    const {tmpdir} = await import('node:os')
    const {join, resolve} = await import('node:path')
    const out = mkdtempSync(join(tmpdir(), 'ldp-ipvsadm-'))
    try {
      execFileSync('bash', ['scripts/fixtures/ipvsadm-from-source.sh'], {env: {...process.env, OUT: resolve(out)}, stdio: 'pipe'})
      const made = readdirSync(out).sort()
      expect(made).toEqual(readdirSync(dir).filter((f) => f.endsWith('.txt')).sort())
      for (const f of made) expect(readFileSync(join(out, f), 'utf8'), f).toBe(read(f))
    } finally {
      rmSync(out, {recursive: true, force: true})
    }
  })
})
