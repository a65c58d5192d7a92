// Content detection on real-world files (fixtures/real-world/README.md names each source).
import {readFileSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {detectFileType} from '../../src/snapshot/store.js'
import {parseConntrack} from '../../src/snapshot/parsers/conntrack.js'

const F = 'fixtures/real-world/'

describe('detectFileType on real-world files', () => {
  test('a conntrack -L of GRE entries only is conntrack.txt', () => {
    const data = readFileSync(F + 'conntrack/gre-only.conntrack.txt')
    expect(detectFileType(data)).toBe('conntrack.txt')
    const [e] = parseConntrack(data.toString(), 'conntrack.txt')
    expect(e).toMatchObject({proto: 'gre', protoNum: 47, timeout: 29, flags: ['UNREPLIED']})
  })

  test('a headerless rules.v6 with no IPv6 address is ip6tables-save.txt (from -p ipv6-icmp); its rules.v4 stays IPv4', () => {
    expect(detectFileType(readFileSync(F + 'iptables/laduke-zt-iptables-rules.v6'))).toBe('ip6tables-save.txt')
    expect(detectFileType(readFileSync(F + 'iptables/laduke-zt-iptables-rules.v4'))).toBe('iptables-save.txt')
    for (const [rule, type] of [
      ['-A INPUT -p icmpv6 --icmpv6-type 128 -j ACCEPT', 'ip6tables-save.txt'],
      ['-A INPUT -j REJECT --reject-with icmp6-adm-prohibited', 'ip6tables-save.txt'],
      ['-A INPUT -m rt --rt-type 0 -j DROP', 'ip6tables-save.txt'],
      ['-A INPUT -p icmp -j ACCEPT', 'iptables-save.txt'],
      ['-A INPUT -j REJECT --reject-with icmp-host-prohibited', 'iptables-save.txt'],
    ]) expect(detectFileType(Buffer.from(`*filter\n:INPUT ACCEPT [0:0]\n${rule}\nCOMMIT\n`))).toBe(type)
  })

  test.each([
    ['ipvsadm/proc-net-ip_vs.txt', 'ipvsadm-Ln.txt'],
    ['ipvsadm/dpvs-tutorial-fullnat-Ln.txt', 'ipvsadm-Ln.txt'],
    ['keepalived/xusxlinux-k8s-master02.keepalived.conf', 'keepalived.conf'],
    ['keepalived/dpvs-tutorial-fnat.keepalived.conf', 'keepalived.conf'],
    ['nft/nftlb-031_snat_ipv4_tcp_weight_newrtlimit.json', 'nft-ruleset.json'],
    ['ip/ip-route.json', 'ip-route.json'],
    ['ip/ip-rule.json', 'ip-rule.json'],
  ])('%s is %s', (f, type) => {
    expect(detectFileType(readFileSync(F + f))).toBe(type)
  })
})
