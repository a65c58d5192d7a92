// ipvsadm 1.31's tunnel options (--tun-type ipip|gue|gre, --tun-port, --tun-nocsum/--tun-csum/--tun-remcsum) in
// `ipvsadm -Sn` and `ipvsadm -Ln --tun-info` (fixtures/parsers/ipvsadm/TUN.md cites the formats).
import {describe, expect, test} from 'vitest'
import {formatIp} from '../../src/model/ip.js'
import {mergeIpvsList, parseIpvsadmList, parseIpvsadmSave} from '../../src/snapshot/parsers/ipvsadm.js'
import {fixtureReader, parseError} from './helpers.js'

const read = fixtureReader('fixtures/parsers/ipvsadm/')
const EXPECTED = [
  ['192.168.2.21', 'ipip', undefined, undefined],
  ['192.168.2.22', 'gue', 6080, 'nocsum'],
  ['192.168.2.23', 'gue', 6081, 'csum'],
  ['192.168.2.24', 'gue', 6082, 'remcsum'],
  ['192.168.2.25', 'gre', undefined, 'nocsum'],
  ['192.168.2.26', 'gre', undefined, 'csum'],
  ['2001:db8:2::27', 'ipip', undefined, undefined],
]

describe('ipvsadm tunnel options', () => {
  test('-Sn: every tunnel type and checksum option, an IPv6 realserver of an IPv4 service', () => {
    const [s] = parseIpvsadmSave(read('ipvsadm-Sn-tun.txt'), 'ipvsadm-Sn-tun.txt')
    expect(s!.family).toBe(4)
    expect(s!.dests.map((d) => [formatIp(d.ip), d.tunnelType, d.tunnelPort, d.tunnelCsum])).toEqual(EXPECTED)
    expect(s!.dests.every((d) => d.method === 'tunnel' && d.port === 80 && d.weight === 1)).toBe(true)
    expect(s!.dests[6]!.ip.family).toBe(6)
    expect(s!.notModelled ?? []).toEqual([])
  })

  test('-Ln --tun-info: the same, with connection counts; merged with -Sn the values agree', () => {
    const [l] = parseIpvsadmList(read('ipvsadm-Ln-tun-info-gre.txt'), 'ipvsadm-Ln-tun-info-gre.txt')
    expect(l!.dests.map((d) => [formatIp(d.ip), d.tunnelType, d.tunnelPort, d.tunnelCsum])).toEqual(EXPECTED)
    expect(l!.dests.map((d) => d.inactiveConns)).toEqual([0, 2, 4, 6, 8, 10, 12])
    const merged = mergeIpvsList(parseIpvsadmSave(read('ipvsadm-Sn-tun.txt'), 'x'), [l!])
    expect(merged[0]!.dests.map((d) => [formatIp(d.ip), d.tunnelType, d.tunnelPort, d.tunnelCsum, d.activeConns])).toEqual(EXPECTED.map((e, i) => [...e, i]))
  })

  test('a tunnel type ipvsadm does not have is a parse error naming the line', () => {
    const text = '-A -t 192.168.1.114:80 -s wrr\n-a -t 192.168.1.114:80 -r 192.168.2.21:80 -i -w 1 --tun-type vxlan\n'
    expect(parseError(() => parseIpvsadmSave(text, 'ipvsadm-Sn.txt'))).toMatchObject({file: 'ipvsadm-Sn.txt', line: 2})
    const info = read('ipvsadm-Ln-tun-info-gre.txt').replace('gre:+c ', 'gre:?c ')
    expect(parseError(() => parseIpvsadmList(info, 'ipvsadm-Ln.txt'))).toMatchObject({file: 'ipvsadm-Ln.txt', line: 10})
  })
})
