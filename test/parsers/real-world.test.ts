// Real-world inputs (fixtures/real-world/README.md names each source): the parsers model them as the tool that
// reads them does (keepalived -t for keepalived.conf, ipvsadm/procfs for IPVS listings).
import {describe, expect, test} from 'vitest'
import {formatIp} from '../../src/model/ip.js'
import {parseKeepalived} from '../../src/snapshot/parsers/keepalived.js'
import {parseIpvsadmConns, parseIpvsadmList, parseIpvsadmSave} from '../../src/snapshot/parsers/ipvsadm.js'
import {parseNftJson} from '../../src/snapshot/parsers/nft-json.js'
import {parseIpRoute, parseIpRule} from '../../src/snapshot/parsers/ip-json.js'
import {parseSysctl} from '../../src/snapshot/parsers/sysctl.js'
import {parseConntrack} from '../../src/snapshot/parsers/conntrack.js'
import {fixtureReader, parseError} from './helpers.js'

const read = fixtureReader('fixtures/real-world/')

describe('keepalived.conf from the wild', () => {
  test('persistence_timeout 0 is no persistence; an unknown lb_algo leaves wlc (keepalived -t: both rejected)', () => {
    const k = parseKeepalived(read('keepalived/xusxlinux-k8s-master02.keepalived.conf'), 'keepalived.conf')
    expect(k.services).toHaveLength(1)
    const s = k.services[0]!
    expect(s.persistence).toBeUndefined()
    expect(s.flags).toEqual([])
    expect(s.scheduler).toBe('wlc')
    expect(s.dests.map((d) => `${formatIp(d.ip)}:${d.port} ${d.method} ${d.weight}`)).toEqual(['10.4.7.11:6443 route 1', '10.4.7.12:6443 route 1', '10.4.7.21:6443 route 1'])
    const what = (s.notModelled ?? []).map((n) => `${n.line} ${n.what}`)
    expect(what).toContainEqual(expect.stringMatching(/^21 lb_algo loadbalance: .*keeps wlc/))
    expect(what).toContainEqual(expect.stringMatching(/^23 virtual_server keyword net_mask/))
    // the rejected lb_algo is said once, not also as a missing one
    expect(what.some((w) => w.includes('without lb_algo'))).toBe(false)
    // 0 is what the author meant (no persistence): not listed
    expect(what.some((w) => w.includes('persistence_timeout'))).toBe(false)
  })

  test('the FNAT and `virtual_server match` of the dpvs fork are left out and listed, not a parse error', () => {
    const k = parseKeepalived(read('keepalived/dpvs-tutorial-fnat.keepalived.conf'), 'keepalived.conf')
    expect(k.services).toEqual([])
    expect(k.vrrpAddresses.map((v) => formatIp(v.ip))).toEqual(['192.168.100.254'])
    expect(k.notModelled?.map((n) => `${n.line} ${n.what}`)).toEqual([
      expect.stringMatching(/^13 keepalived keyword local_address_group/),
      expect.stringMatching(/^45 virtual_server group 192.168.100.254-80: lb_kind\/lvs_method FNAT .*not modelled/),
      expect.stringMatching(/^74 virtual_server match SNAT1: not a numeric address/),
    ])
  })

  // what keepalived -t (v2.2.7) reports for each, and does
  test.each([
    ['persistence_timeout 0 (rejected: no persistence)', '  persistence_timeout 0\n', {persistence: undefined}, undefined],
    ['persistence_timeout 99999999 (rejected)', '  persistence_timeout 99999999\n', {persistence: undefined}, /persistence_timeout 99999999: keepalived accepts 1 to 2678400 s/],
    ['lb_kind dr (case-sensitive: NAT kept)', '  lb_kind dr\n', {method: 'masq'}, /lb_kind dr: keepalived knows only NAT, DR and TUN/],
    ['protocol ICMP (ignored: UDP)', '  protocol ICMP\n', {proto: 'udp'}, /protocol ICMP: keepalived knows TCP, UDP and SCTP/],
    ['ops on TCP (reset)', '  protocol TCP\n  ops\n', {ops: false}, /ops on a TCP service/],
    ['weight on the virtual server is its real servers\' default', '  weight 5\n', {weight: 5}, undefined],
  ])('%s', (_name, extra, want, note) => {
    const t = `virtual_server 10.0.0.1 80 {\n  lb_algo rr\n${extra}  real_server 10.0.1.1 80 {\n  }\n}\n`
    const s = parseKeepalived(t, 'k').services[0]!
    const got = {persistence: s.persistence, method: s.dests[0]!.method, proto: s.proto, ops: s.ops, weight: s.dests[0]!.weight}
    expect(got).toMatchObject(want)
    const notes = (s.notModelled ?? []).map((n) => n.what)
    if (note) expect(notes).toContainEqual(expect.stringMatching(note))
  })

  test('a virtual_ipaddress entry that is not an address is skipped and listed (keepalived: "VRRP parsed invalid IP ... skipping IP")', () => {
    const k = parseKeepalived('vrrp_instance VI_1 {\n  interface eth0\n  virtual_ipaddress {\n    10.0.0.300\n    10.0.0.5/24 dev eth1 label eth1:1\n    10.0.0.6/33\n  }\n}\n', 'k')
    expect(k.vrrpAddresses.map((v) => `${formatIp(v.ip)}/${v.prefixlen} ${v.dev}`)).toEqual(['10.0.0.5/24 eth1'])
    expect(k.notModelled?.map((n) => `${n.line} ${n.what}`)).toEqual([
      expect.stringMatching(/^4 virtual_ipaddress entry 10.0.0.300: not an address/),
      expect.stringMatching(/^6 virtual_ipaddress entry 10.0.0.6\/33: not an address/),
    ])
  })

  test('parameter substitution (keepalived.conf(5) "Parameter substitution"): $NAME=VALUE, ${NAME}, multi-line values', () => {
    const t = [
      '$VIP=10.2.0.100',
      '$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}',
      '$ADDRESS_BASE_SUB=0',
      '$RS= \\',
      '    real_server ${ADDRESS_BASE}.${RS_NUM} 80 { \\',
      '        weight 1 \\',
      '    }',
      'vrrp_instance VI_0 {',
      '    virtual_ipaddress {',
      '        $VIP',
      '    }',
      '}',
      'virtual_server $VIP 80 {',
      '    lb_algo rr',
      '    lb_kind DR',
      '    protocol TCP',
      '    $RS_NUM=1',
      '    $RS',
      '    $RS_NUM=2',
      '    $RS',
      '    quorum_up "/bin/echo $UNDEFINED"',
      '}',
      '',
    ].join('\n')
    const k = parseKeepalived(t, 'k')
    expect(k.services.map((s) => `${formatIp(s.vip!)}:${s.port} L${s.loc.line}`)).toEqual(['10.2.0.100:80 L13'])
    expect(k.services[0]!.dests.map((d) => `${formatIp(d.ip)}:${d.port} L${d.loc.line}`)).toEqual(['10.2.0.1:80 L18', '10.2.0.2:80 L20'])
    expect(k.vrrpAddresses.map((v) => formatIp(v.ip))).toEqual(['10.2.0.100'])
    expect(k.notModelled).toBeUndefined()
  })

  test('no real_server: noted (keepalived ignores it); port 0 without persistence: made persistent; duplicate and non-numeric real servers dropped', () => {
    const k = parseKeepalived(
      'virtual_server 10.0.0.11 80 {\n  protocol TCP\n}\n' +
        'virtual_server 10.0.0.9 0 {\n  lb_algo rr\n  protocol TCP\n  real_server 10.0.1.1 80 {\n  }\n  real_server 10.0.1.1 80 {\n    weight 3\n  }\n  real_server rs1.example.com 80 {\n  }\n}\n',
      'k',
    )
    // the virtual_server without real_server: kept without destinations (ipvs-no-available-realserver reports it), noted
    expect(k.services.map((s) => `${formatIp(s.vip!)}:${s.port} p${s.persistence} ${s.dests.length}`)).toEqual(['10.0.0.11:80 pundefined 0', '10.0.0.9:0 p360 1'])
    expect(k.services[0]!.notModelled?.map((n) => `${n.line} ${n.what}`)).toEqual([expect.stringMatching(/^1 virtual_server without real_server: keepalived .* installs no IPVS service/), expect.stringMatching(/without lb_algo/)])
    expect(k.services[1]!.notModelled?.map((n) => n.line)).toEqual([9, 12, 4])
  })
})

describe('IPVS listings from the wild', () => {
  const show = (f: string): string[] =>
    parseIpvsadmList(read(f), 'ipvsadm-Ln.txt').flatMap((s) => [
      `${s.fwmark !== undefined ? `fwm ${s.fwmark}` : `${s.proto} ${formatIp(s.vip!)}:${s.port}`} ${s.scheduler}${s.persistence !== undefined ? ` p${s.persistence}/${s.persistenceNetmask}` : ''}`,
      ...s.dests.map((d) => `  ${formatIp(d.ip)}:${d.port} ${d.method} w${d.weight} a${d.activeConns} i${d.inactiveConns}`),
    ])

  test('/proc/net/ip_vs (hex addresses, ports, fwmark and persistence netmask) reads as ipvsadm -Ln', () => {
    expect(show('ipvsadm/proc-net-ip_vs.txt')).toEqual([
      'tcp 10.253.102.0:32429 rr',
      '  10.253.7.7:80 masq w1 a0 i0',
      '  10.253.35.7:80 masq w1 a0 i0',
      'tcp 10.254.0.1:443 rr p10800/32',
      '  172.16.16.81:6443 masq w1 a0 i0',
      '  172.16.16.82:6443 masq w1 a0 i0',
      'tcp 10.254.0.2:53 rr',
      '  10.253.7.5:53 masq w1 a0 i0',
      '  10.253.35.5:53 masq w1 a0 i0',
      'fwm 10 wlc',
      '  10.0.0.7:0 route w1 a0 i15',
    ])
  })

  test('/proc/net/ip_vs IPv6 (ip_vs_info_seq_show: [%pI6]:%04X, the prefix length printed through ntohl)', () => {
    const t = 'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n' +
      'TCP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0050 rr persistent 360 80000000\n  -> [2001:0db8:0000:0000:0000:0000:0000:0010]:0050      Route   1      0          0         \n'
    const [s] = parseIpvsadmList(t, 'ipvsadm-Ln.txt')
    expect(s).toMatchObject({family: 6, port: 80, persistence: 360, persistenceNetmask: 128})
    expect(formatIp(s!.vip!)).toBe('2001:db8::1')
    expect(s!.dests[0]).toMatchObject({port: 80, method: 'route'})
  })

  test('FullNat destinations of the dpvs/alibaba ipvsadm: kept with an unknown method and listed, not a parse error', () => {
    expect(show('ipvsadm/dpvs-tutorial-fullnat-Ln.txt')).toEqual(['tcp 192.168.100.254:80 rr', '  192.168.100.2:80 unknown w100 a0 i0', '  192.168.100.3:80 unknown w100 a0 i0'])
    const [s] = parseIpvsadmList(read('ipvsadm/dpvs-tutorial-fullnat-Ln.txt'), 'ipvsadm-Ln.txt')
    expect(s!.notModelled?.map((n) => `${n.line} ${n.what}`)).toEqual([expect.stringMatching(/^5 FullNat forwarding .* not modelled/)])
  })

  test('dpvs ipvsadm -Sn: -b on a destination is FULLNAT (not sched flags eating -w): method unknown, weight kept, listed', () => {
    const [s] = parseIpvsadmSave(read('ipvsadm/dpvs-fullnat-Sn.txt'), 'ipvsadm-Sn.txt')
    expect(s!.dests.map((d) => `${formatIp(d.ip)}:${d.port} ${d.method} w${d.weight}`)).toEqual(['192.168.100.2:80 unknown w100', '192.168.100.3:80 unknown w100'])
    expect(s!.notModelled?.map((n) => `${n.line} ${n.what}`)).toEqual([expect.stringMatching(/^2 FullNat forwarding .* not modelled/)])
    // on a service line -b is still the scheduler flags
    const [t] = parseIpvsadmSave('-A -t 10.0.0.1:80 -s sh -b sh-port\n', 'x')
    expect(t!.schedFlags).toEqual(['sh-port'])
  })

  test('the persistence template of an fwmark service (protocol IP) carries the mark, not a VIP: -Lnc and /proc/net/ip_vs_conn', () => {
    const c = parseIpvsadmConns(read('ipvsadm/fwmark-template/ipvsadm-Lnc.txt'), 'ipvsadm-Lnc.txt')
    expect(c.map((x) => `${x.proto} ${x.fwmark ?? '-'}`)).toEqual(['tcp -', 'tcp -', 'ip 10', 'tcp -'])
    const p = parseIpvsadmConns('Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\nIP  C0A80006 0000 0000000A 0000 0A000011 0000 NONE          948\n', 'x')
    expect(p[0]).toMatchObject({proto: 'ip', fwmark: 10, expire: 948})
  })

  test('dpvs MATCH services alone: a clear error naming them', () => {
    const e = parseError(() => parseIpvsadmList(read('ipvsadm/dpvs-issue-95-match-Ln.txt'), 'ipvsadm-Ln.txt'))
    expect(e.line).toBe(4)
    expect(e.message).toContain('MATCH services of the dpvs fork are not modelled')
    // after a kernel service they are listed and skipped
    const mixed = read('ipvsadm/dpvs-tutorial-fullnat-Ln.txt') + read('ipvsadm/dpvs-issue-95-match-Ln.txt').split('\n').slice(3).join('\n')
    const svcs = parseIpvsadmList(mixed, 'ipvsadm-Ln.txt')
    expect(svcs).toHaveLength(1)
    expect(svcs[0]!.dests).toHaveLength(2)
    expect(svcs[0]!.notModelled?.map((n) => n.line)).toEqual([5, 7, 10])
  })
})

describe('nft rulesets from the wild (re-captured with nft -j)', () => {
  test('a per-element meter (add @set { ip saddr limit rate over ... } drop) is listed: trace and check do not evaluate it', () => {
    const r = parseNftJson(read('nft/nftlb-031_snat_ipv4_tcp_weight_newrtlimit.json'), 'nft-ruleset.json', {iptablesSaveBeside: false})
    expect(r.notModelled).toEqual([
      {file: 'nft-ruleset.json', line: 1, what: expect.stringMatching(/^nft ip nftlb filter-lb01 handle \d+: add @new-rtlimit-lb01 with per-element statements \(limit\)/)},
    ])
    const rule = r.tables[0]!.chains.get('filter-lb01')!.rules[0]!
    expect(rule.stmts.map((s) => s.kind)).toEqual(['match', 'dynset', 'log', 'verdict'])
  })

  test('a counter inside a dynset is not listed', () => {
    const t = read('nft/nftlb-031_snat_ipv4_tcp_weight_newrtlimit.json').replace(/\{"limit": \{[^}]*\}\}/, '{"counter": null}')
    expect(t).toContain('"stmt": [{"counter": null}]')
    expect(parseNftJson(t, 'nft-ruleset.json', {iptablesSaveBeside: false}).notModelled).toEqual([])
  })
})

describe('ip -j output of iproute2 6.1 (one line of JSON)', () => {
  test('what is not modelled names its route, since every item is on line 1', () => {
    const routes = parseIpRoute(read('ip/ip-route.json'), 'ip-route.json')
    expect(routes.every((r) => r.loc.line === 1)).toBe(true)
    expect(routes.flatMap((r) => r.notModelled ?? [])).toEqual(['route 10.70.0.0/16: metrics', 'route 100.64.0.0/10: nhid 20', 'route 100.128.0.0/16: nhid 10'])
    // nhid routes: ip prints the resolved nexthops, which are modelled
    const grp = routes.find((r) => r.notModelled?.includes('route 100.64.0.0/10: nhid 20'))!
    expect(grp.nexthops?.map((h) => formatIp(h.gateway!))).toEqual(['10.9.0.3', '10.9.1.3'])
    expect(routes.filter((r) => ['blackhole', 'unreachable', 'prohibit', 'throw'].includes(r.type))).toHaveLength(4)
  })

  test('every rule of the capture is modelled', () => {
    const rules = parseIpRule(read('ip/ip-rule.json'), 'ip-rule.json')
    expect(rules.map((r) => `${r.priority} ${r.action}`)).toEqual([
      '0 lookup', '100 lookup', '110 lookup', '120 goto', '130 lookup', '140 lookup', '150 nop', '160 unreachable', '32000 lookup', '32766 lookup', '32767 lookup',
    ])
    expect(rules.filter((r) => r.notModelled)).toEqual([])
  })
})

describe('sysctl -a 2>&1 of an old procps (3.2)', () => {
  // the lines as an Ubuntu 8.04 `sudo sysctl -a` printed them (askubuntu/superuser pastes; procps 3.2 sysctl.c)
  test('its "error: permission denied on key" lines are skipped', () => {
    const t = "net.ipv4.ip_forward = 1\nerror: permission denied on key 'net.ipv4.route.flush'\nerror: \"Invalid argument\" reading key \"net.ipv6.conf.all.stable_secret\"\nnet.ipv4.conf.all.rp_filter = 1\n"
    const s = parseSysctl(t, 'sysctl.txt')
    expect([...s.keys()]).toEqual(['net.ipv4.ip_forward', 'net.ipv4.conf.all.rp_filter'])
  })
})

describe('conntrack -L -o extended,ktimestamp (captured with conntrack-tools 1.4.7)', () => {
  test('the [start=DATE] field (spaces inside) is skipped, the entry read', () => {
    const [e, ...rest] = parseConntrack(read('conntrack/ktimestamp-acct.conntrack.txt'), 'conntrack.txt')
    expect(rest).toEqual([])
    expect(e).toMatchObject({l3: 'ipv4', proto: 'udp', protoNum: 17, flags: ['UNREPLIED'], mark: 0, use: 1})
    expect(e!.orig).toMatchObject({sport: e!.orig.sport, dport: 9999})
    expect(e!.reply).toMatchObject({sport: 9999})
  })
})
