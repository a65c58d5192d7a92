// `ipvsadm -Ln --timeout` (ipvsadm.c print_timeout: "Timeout (tcp tcpfin udp): %d %d %d") and keepalived's
// global_defs `lvs_timeouts`, and how a snapshot takes them.
import {describe, expect, it} from 'vitest'
import {parseIpvsTimeout} from '../../src/snapshot/parsers/ipvs-timeout.js'
import {parseKeepalived} from '../../src/snapshot/parsers/keepalived.js'
import {detectFileType, hostFromFiles} from '../../src/snapshot/store.js'
import {ParseError} from '../../src/model/source.js'

const err = (f: () => unknown): ParseError => {
  try {
    f()
  } catch (e) {
    if (e instanceof ParseError) return e
    throw e
  }
  throw new Error('no error')
}

describe('ipvsadm -Ln --timeout', () => {
  it('reads the three timeouts with their line', () => {
    expect(parseIpvsTimeout('Timeout (tcp tcpfin udp): 900 120 300\n', 'ipvsadm-timeout.txt')).toEqual({tcp: 900, tcpfin: 120, udp: 300, loc: {file: 'ipvsadm-timeout.txt', line: 1, text: 'Timeout (tcp tcpfin udp): 900 120 300'}})
  })
  it('refuses anything else with file and line', () => {
    expect(err(() => parseIpvsTimeout('', 'ipvsadm-timeout.txt')).message).toBe('ipvsadm-timeout.txt:1: expected the `ipvsadm -Ln --timeout` line `Timeout (tcp tcpfin udp): TCP TCPFIN UDP`, found "an empty file"')
    expect(err(() => parseIpvsTimeout('Timeout (tcp tcpfin udp): 900 120\n', 'f')).line).toBe(1)
    expect(err(() => parseIpvsTimeout('\nTimeout (tcp tcpfin udp): 900 120 300\nTimeout (tcp tcpfin udp): 1 2 3\n', 'f')).line).toBe(3)
  })
  it('is recognised as a bare file', () => {
    expect(detectFileType(Buffer.from('Timeout (tcp tcpfin udp): 900 120 300\n'))).toBe('ipvsadm-timeout.txt')
  })
})

describe("keepalived's lvs_timeouts", () => {
  const conf = (line: string) => `global_defs {\n  router_id lb1\n  ${line}\n}\nvirtual_server 192.0.2.100 80 {\n  lb_kind DR\n  protocol TCP\n  real_server 192.0.2.11 80 {\n  }\n}\n`
  it('reads the timeouts it names (the others stay as they are)', () => {
    const k = parseKeepalived(conf('lvs_timeouts tcp 7200 udp 60'), 'keepalived.conf')
    expect(k.lvsTimeouts).toEqual({tcp: 7200, udp: 60, loc: {file: 'keepalived.conf', line: 3, text: '  lvs_timeouts tcp 7200 udp 60'}})
    expect(k.notModelled ?? []).toEqual([])
  })
  it('reports what it cannot read', () => {
    const k = parseKeepalived(conf('lvs_timeouts tcp 7200 sctp 30 udp 60'), 'keepalived.conf')
    expect(k.lvsTimeouts).toMatchObject({tcp: 7200, udp: 60})
    expect(k.notModelled?.map((n) => n.what)).toEqual(['lvs_timeouts sctp 30: not a timeout keepalived reads (tcp|tcpfin|udp SECONDS)'])
  })
  it('takes a 0 as "unchanged", as the kernel does', () => {
    const k = parseKeepalived(conf('lvs_timeouts tcp 0 udp 60'), 'keepalived.conf')
    expect(k.lvsTimeouts?.tcp).toBeUndefined()
    expect(k.lvsTimeouts?.udp).toBe(60)
  })
  it('stands in for ipvsadm-timeout.txt, which wins when both are given', () => {
    const files = (extra: [string, string][]) => new Map<string, Buffer>([['keepalived.conf', Buffer.from(conf('lvs_timeouts tcp 3600'))], ...extra.map(([n, t]) => [n, Buffer.from(t)] as [string, Buffer])])
    expect(hostFromFiles('lb1', 'lb1', files([])).ipvsTimeouts?.tcp).toBe(3600)
    expect(hostFromFiles('lb1', 'lb1', files([['ipvsadm-timeout.txt', 'Timeout (tcp tcpfin udp): 900 120 300\n']])).ipvsTimeouts?.tcp).toBe(900)
  })
})
