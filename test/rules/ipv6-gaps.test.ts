// The service model and the rules read IPv4. An IPv6 virtual service or an ip6tables ruleset in a snapshot is
// listed as not evaluated, so a quiet report never reads as "IPv6 checked and fine".
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {checkPaths} from '../../src/services/check.js'

function host(files: Record<string, string>): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'ldi-v6-')), 'director')
  mkdirSync(dir)
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

const IPVS = [
  '-A -t [2001:db8::100]:80 -s rr',
  '-a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -g -w 1',
  '-A -f 7 -6 -s wlc',
  '-a -f 7 -6 -r [2001:db8::12]:0 -g -w 1',
  '-A -t 198.51.100.100:80 -s rr',
  '-a -t 198.51.100.100:80 -r 10.0.0.11:80 -g -w 1',
  '',
].join('\n')
const IP6T = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  '-A INPUT -d 2001:db8::100/128 -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT',
  '-A INPUT -j REJECT --reject-with icmp6-adm-prohibited', 'COMMIT', ''].join('\n')

describe('IPv6 in a snapshot is said to be unchecked', () => {
  test('IPv6 IPVS services (VIP:port and fwmark) and ip6tables rules are listed as not evaluated', () => {
    const r = checkPaths([host({'ipvsadm-Sn.txt': IPVS, 'ip6tables-save.txt': IP6T})], {version: 't'})
    const nm = r.hosts[0]!.notModelled
    expect(nm).toContainEqual({file: 'ipvsadm-Sn.txt', line: 1, what: 'IPv6 virtual service TCP [2001:db8::100]:80: not evaluated by the load-balancer checks (they read IPv4 services)'})
    expect(nm).toContainEqual({file: 'ipvsadm-Sn.txt', line: 3, what: 'IPv6 virtual service fwmark 7: not evaluated by the load-balancer checks (they read IPv4 services)'})
    expect(nm).toContainEqual({file: 'ip6tables-save.txt', line: 1, what: '2 ip6tables rule(s): not evaluated by the load-balancer checks (they read IPv4: iptables-save and nft ip/inet tables)'})
    // the IPv4 service beside them is still checked
    expect(r.findings.some((f) => f.message.includes('198.51.100.100'))).toBe(true)
    expect(r.findings.some((f) => f.message.includes('2001:db8'))).toBe(false)
  })
  test('NAT to IPv6 in an nft inet table is listed, and never read as an IPv4 service with an IPv6 backend', () => {
    const r = checkPaths([join(import.meta.dirname, '../../fixtures/nft/kitchen-sink')], {version: 't'})
    const what = r.hosts[0]!.notModelled.map((n) => n.what)
    expect(what).toContain('NAT to IPv6 (ip6 daddr 2001:db8::10 tcp dport 80 dnat ip6 to [2001:db8:1::10]:8080): not evaluated by the load-balancer checks (they read IPv4)')
    expect(what).toContain('NAT to IPv6 (ip6 saddr fd00::/64 snat ip6 to 2001:db8::1): not evaluated by the load-balancer checks (they read IPv4)')
    // the IPv4 DNAT services of the same table are still checked
    expect(r.findings.some((f) => f.message.includes('203.0.113.10:80'))).toBe(true)
    for (const f of r.findings) expect(f.message, f.rule).not.toMatch(/2001:db8/)
  })
  test('an IPv4-only snapshot lists nothing of the kind', () => {
    const r = checkPaths([host({'ipvsadm-Sn.txt': IPVS.split('\n').slice(4).join('\n')})], {version: 't'})
    expect(r.hosts[0]!.notModelled.filter((n) => /IPv6|ip6tables/.test(n.what))).toEqual([])
  })
})

describe('a listing without forwarding methods is said to be unchecked', () => {
  test('ipvsadm -Ln --stats: the NAT and DR checks say they could not evaluate its destinations', () => {
    const stats = [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes',
      '  -> RemoteAddress:Port',
      'TCP  198.51.100.100:80                  105     827      774    55260    51457',
      '  -> 10.0.0.11:8080                      92     729      711    49472    47539',
      '  -> 10.0.0.12:8080                      13      98       63     5788     3918',
      '',
    ].join('\n')
    const r = checkPaths([host({'ipvsadm-Ln.txt': stats})], {version: 't'})
    expect(r.hosts[0]!.notModelled).toContainEqual({file: 'ipvsadm-Ln.txt', line: 4, what: expect.stringContaining('virtual service TCP 198.51.100.100:80: the listing does not show how its 2 destination(s) are forwarded')})
    // the plain listing names the method: nothing to say
    const plain = ['IP Virtual Server version 1.2.1 (size=4096)', 'Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  198.51.100.100:80 rr', '  -> 10.0.0.11:8080                Masq    1      0          0', ''].join('\n')
    expect(checkPaths([host({'ipvsadm-Ln.txt': plain})], {version: 't'}).hosts[0]!.notModelled).toEqual([])
  })
})
