// ipvsadm 1.31's tunnel options (--tun-type ipip|gue|gre, --tun-port, --tun-nocsum/--tun-csum/--tun-remcsum) in
// `ipvsadm -Sn` and `ipvsadm -Ln --tun-info` (fixtures/parsers/ipvsadm/tun/README.md cites the formats).
import {describe, expect, test} from 'vitest'
import {formatIp} from '../../src/model/ip.js'
import {mergeIpvsList, parseIpvsadmList, parseIpvsadmSave} from '../../src/snapshot/parsers/ipvsadm.js'
import {fixtureReader, parseError} from './helpers.js'

const read = fixtureReader('fixtures/parsers/ipvsadm/tun/')
const EXPECTED = [
  ['192.168.2.21', 'ipip', undefined, undefined],
  ['192.168.2.22', 'gue', 6080, 'nocsum'],
  ['192.168.2.23', 'gue', 6081, 'csum'],
  ['192.168.2.24', 'gue', 6082, 'remcsum'],
  ['192.168.2.25', 'gre', undefined, 'nocsum'],
  ['192.168.2.26', 'gre', undefined, 'csum'],
  ['2001:db8:2::27', 'ipip', undefined, undefined],
]

/** C's `%-Ns` / `%-Nd` / `%-Nu` */
const left = (v: string | number, n: number): string => String(v).padEnd(n)

describe('ipvsadm tunnel options', () => {
  test('the fixtures are what ipvsadm 1.31 prints for these destinations', () => {
    const svc = '-t 192.168.1.114:80'
    const dests: [string, 'ipip' | 'gue' | 'gre', number, number][] = [
      ['192.168.2.21:80', 'ipip', 0, 0], ['192.168.2.22:80', 'gue', 6080, 0], ['192.168.2.23:80', 'gue', 6081, 1],
      ['192.168.2.24:80', 'gue', 6082, 2], ['192.168.2.25:80', 'gre', 0, 0], ['192.168.2.26:80', 'gre', 0, 1], ['[2001:db8:2::27]:80', 'ipip', 0, 0],
    ]
    const opts = ['--tun-nocsum', '--tun-csum', '--tun-remcsum'] // tun_flags_opts[]
    const flags = ['-c', '+c', 'r+c'] // tunflags[]
    // print_service_entry(FMT_RULE): "-A %s -s %s", then print_tunnel_rule() per destination
    const sn = [`-A ${svc} -s wrr`, ...dests.map(([d, t, port, f]) =>
      t === 'gue' ? `-a ${svc} -r ${d} -i -w 1 --tun-type gue --tun-port ${port} ${opts[f]}`
        : t === 'gre' ? `-a ${svc} -r ${d} -i -w 1 --tun-type gre ${opts[f]}` : `-a ${svc} -r ${d} -i -w 1 --tun-type ipip`)]
    expect(read('ipvsadm-Sn.txt')).toBe(sn.join('\n') + '\n')
    // print_title(FMT_TUN_INFO), "%-4s %s" service line, "  -> %-28s %-7s %-13s %-6d %-10u %-10u" with fwd_tun_info()
    const ln = ['IP Virtual Server version 1.2.1 (size=4096)', 'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn', `${left('TCP', 4)} 192.168.1.114:80 wrr`,
      ...dests.map(([d, t, port, f], i) => `  -> ${left(d, 28)} ${left('Tunnel', 7)} ${left(t === 'ipip' ? 'ipip' : t === 'gue' ? `gue:${port}:${flags[f]}` : `gre:${flags[f]}`, 13)} ${left(1, 6)} ${left(i, 10)} ${left(2 * i, 10)}`)]
    expect(read('ipvsadm-Ln-tun-info.txt')).toBe(ln.join('\n') + '\n')
  })

  test('-Sn: every tunnel type and checksum option, an IPv6 realserver of an IPv4 service', () => {
    const [s] = parseIpvsadmSave(read('ipvsadm-Sn.txt'), 'ipvsadm-Sn.txt')
    expect(s!.family).toBe(4)
    expect(s!.dests.map((d) => [formatIp(d.ip), d.tunnelType, d.tunnelPort, d.tunnelCsum])).toEqual(EXPECTED)
    expect(s!.dests.every((d) => d.method === 'tunnel' && d.port === 80 && d.weight === 1)).toBe(true)
    expect(s!.dests[6]!.ip.family).toBe(6)
    expect(s!.notModelled ?? []).toEqual([])
  })

  test('-Ln --tun-info: the same, with connection counts; merged with -Sn the values agree', () => {
    const [l] = parseIpvsadmList(read('ipvsadm-Ln-tun-info.txt'), 'ipvsadm-Ln-tun-info.txt')
    expect(l!.dests.map((d) => [formatIp(d.ip), d.tunnelType, d.tunnelPort, d.tunnelCsum])).toEqual(EXPECTED)
    expect(l!.dests.map((d) => d.inactiveConns)).toEqual([0, 2, 4, 6, 8, 10, 12])
    const merged = mergeIpvsList(parseIpvsadmSave(read('ipvsadm-Sn.txt'), 'x'), [l!])
    expect(merged[0]!.dests.map((d) => [formatIp(d.ip), d.tunnelType, d.tunnelPort, d.tunnelCsum, d.activeConns])).toEqual(EXPECTED.map((e, i) => [...e, i]))
  })

  test('a tunnel type ipvsadm does not have is a parse error naming the line', () => {
    const text = '-A -t 192.168.1.114:80 -s wrr\n-a -t 192.168.1.114:80 -r 192.168.2.21:80 -i -w 1 --tun-type vxlan\n'
    expect(parseError(() => parseIpvsadmSave(text, 'ipvsadm-Sn.txt'))).toMatchObject({file: 'ipvsadm-Sn.txt', line: 2})
    const info = read('ipvsadm-Ln-tun-info.txt').replace('gre:+c ', 'gre:?c ')
    expect(parseError(() => parseIpvsadmList(info, 'ipvsadm-Ln.txt'))).toMatchObject({file: 'ipvsadm-Ln.txt', line: 10})
  })
})
