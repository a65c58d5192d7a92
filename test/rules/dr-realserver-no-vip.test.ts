// dr-realserver-no-vip: an LVS-DR/TUN realserver given to check that does not accept packets for the VIP (found by
// the IPVS lab's random scenarios: a DR realserver without the VIP, where the kernel never connected and check was
// silent). trace agrees on every case, and its --fix replays the connection with the address check proposes.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {runRules} from '../../src/rules/index.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {connectionOk, editedScenario, findingsOf, loadScenario} from './helpers.js'

const flow = {vip: parseEndpoint('192.0.2.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
const ok = connectionOk
const RULE = 'dr-realserver-no-vip'

/** the scenario with only rs2 as destination (so that trace's connection goes there), edited further on rs2 */
function onlyRs2(rs2: (file: string, text: string) => string = (_f, t) => t, extra: Record<string, string> = {}, ipvs: (t: string) => string = (t) => t) {
  const a = editedScenario('dr-realserver-no-vip', 'director', (f, t) => (f === 'ipvsadm-Sn.txt' ? ipvs(t.replace(/.*192\.0\.2\.11.*\n/, '')) : t))
  const b = editedScenario('dr-realserver-no-vip', 'rs2', rs2, extra)
  return a.map((h) => (h.name === 'rs2' ? b.find((x) => x.name === 'rs2')! : h))
}
const mine = findingsOf(RULE)

/** an ipip fallback device as `ip -j addr show` prints it (UP or not), with addresses */
function withTunl0(text: string, up: boolean, addrs: string[] = []): string {
  const links = JSON.parse(text) as unknown[]
  links.push({
    ifindex: 9, ifname: 'tunl0', flags: up ? ['NOARP', 'UP', 'LOWER_UP'] : ['NOARP'], mtu: 1480, qdisc: 'noqueue', operstate: up ? 'UNKNOWN' : 'DOWN', group: 'default', txqlen: 1000, link_type: 'ipip', address: '0.0.0.0', broadcast: '0.0.0.0',
    addr_info: addrs.map((a) => ({family: 'inet', local: a, prefixlen: 32, scope: 'global', label: 'tunl0', valid_life_time: 4294967295, preferred_life_time: 4294967295})),
  })
  return JSON.stringify(links)
}

describe('dr-realserver-no-vip', () => {
  test('an LVS-DR realserver without the VIP: fires for it alone, with the address and ARP settings; trace fails there and --fix connects', async () => {
    const f = mine(loadScenario('dr-realserver-no-vip'))
    expect(f.map((x) => [x.host, x.severity, x.fix?.commands])).toEqual([['rs2', 'error', ['ip addr add 192.0.2.100/32 dev lo']]])
    expect(f[0]!.message).toMatch(/192\.0\.2\.100 is not an address of rs2 .* forwarding is off, so it drops the packet/)
    const hosts = onlyRs2()
    const t = traceConnection(hosts, flow)
    expect(t.firstFailure?.host).toBe('rs2')
    expect(ok(t.connection)).toBe(false)
    const fixed = await traceWithFixes(hosts, flow, runRules({hosts}))
    expect(ok(fixed.result.connection)).toBe(true)
    expect(mine(loadScenario('dr-realserver-no-vip-fixed'))).toEqual([])
  })

  test('ARP settings left at their defaults: the fix adds arp_ignore and arp_announce with the address', () => {
    const hosts = onlyRs2((f, t) => (f === 'sysctl.txt' ? t.replace('net.ipv4.conf.all.arp_ignore = 1', 'net.ipv4.conf.all.arp_ignore = 0').replace('net.ipv4.conf.all.arp_announce = 2', 'net.ipv4.conf.all.arp_announce = 0') : t))
    expect(mine(hosts)[0]!.fix?.commands).toEqual(['ip addr add 192.0.2.100/32 dev lo', 'sysctl -w net.ipv4.conf.all.arp_ignore=1', 'sysctl -w net.ipv4.conf.all.arp_announce=2'])
  })

  test('forwarding on: the packet is routed on, not served; the message says so', () => {
    const hosts = onlyRs2((f, t) => (f === 'sysctl.txt' ? t.replace(/^net\.ipv4\.conf\.(all|ldr-eth0)\.forwarding = 0$/gm, 'net.ipv4.conf.$1.forwarding = 1').replace('net.ipv4.ip_forward = 0', 'net.ipv4.ip_forward = 1') : t))
    expect(mine(hosts)[0]!.message).toMatch(/forwarding is on .*routes the packet on/)
    expect(ok(traceConnection(hosts, flow).connection)).toBe(false)
  })

  test("the LVS-HOWTO's transparent-proxy realserver (a PREROUTING REDIRECT of the VIP, no VIP address): quiet, and trace connects", () => {
    const nat = '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j REDIRECT\nCOMMIT\n'
    const hosts = onlyRs2(undefined, {'iptables-save.txt': nat})
    expect(mine(hosts)).toEqual([])
    expect(ok(traceConnection(hosts, flow).connection)).toBe(true)
    // the REDIRECT for another port does not take the service's packets
    const other = onlyRs2(undefined, {'iptables-save.txt': nat.replace('--dport 80', '--dport 8080')})
    expect(mine(other).map((f) => f.host)).toEqual(['rs2'])
  })

  test('the transparent-proxy realserver is still held to its own firewall: an INPUT that drops the redirected SYN is reported (filter-blocks-vip: the REDIRECT is a service of rs2 itself), with the accept for the redirected address', () => {
    const rules = '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j REDIRECT\nCOMMIT\n*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n'
    const hosts = onlyRs2(undefined, {'iptables-save.txt': rules})
    const f = runRules({hosts})
    expect(f.map((x) => [x.rule, x.host])).toEqual([['filter-blocks-vip', 'rs2']])
    expect(f[0]!.fix?.commands).toEqual(['iptables -t filter -A INPUT -d 192.0.2.12/32 -p tcp -m tcp --dport 80 -j ACCEPT'])
    expect(ok(traceConnection(hosts, flow).connection)).toBe(false)
  })

  test('LVS-TUN with --tun-type gre: no ipip device is asked for (ip_gre unwraps it); the VIP still is', () => {
    const gre = onlyRs2(undefined, {}, (t) => t.replace(/ -g -w 1/g, ' -i -w 1 --tun-type gre'))
    expect(gre.find((h) => h.name === 'director')!.ipvs!.services[0]!.dests[0]!.tunnelType).toBe('gre')
    const f = mine(gre)
    expect(f.map((x) => x.message)).toEqual([expect.stringMatching(/is not an address of rs2/)])
    expect(f[0]!.message).not.toMatch(/ipip/)
  })

  test('a quiesced destination (weight 0) is not reported as it is; once the weight is restored (the fix of ipvs-no-available-realserver), it is', () => {
    const f = mine(onlyRs2(undefined, {}, (t) => t.replace(/-r 192\.0\.2\.12:80 -g -w 1/, '-r 192.0.2.12:80 -g -w 0')))
    // not in the first round: no connection goes to rs2 while its weight is 0
    expect(f.filter((x) => !x.hiddenBehind)).toEqual([])
    // the only destination at weight 0 is ipvs-no-available-realserver's error; its fix sends connections to rs2, which then drops them
    expect(f.map((x) => [x.host, x.hiddenBehind, x.fix?.commands])).toEqual([['rs2', ['ipvs-no-available-realserver@director'], ['ip addr add 192.0.2.100/32 dev lo']]])
  })

  test('LVS-TUN: no ipip device, a tunl0 that is down, the VIP missing on an up tunl0, and the VIP there (quiet); trace agrees', () => {
    const tun = (t: string) => t.replace(/ -g /g, ' -i ')
    const none = onlyRs2(undefined, {}, tun)
    expect(mine(none).map((f) => f.message)).toEqual([expect.stringMatching(/it has no ipip tunnel device \(tunl0: the ipip module is not loaded.*protocol unreachable/)])
    expect(ok(traceConnection(none, flow).connection)).toBe(false)
    const down = onlyRs2((f, t) => (f === 'ip-addr.json' ? withTunl0(t, false, ['192.0.2.100']) : t), {}, tun)
    expect(mine(down).map((f) => f.message)).toEqual([expect.stringMatching(/its ipip device tunl0 is down.*ICMP port unreachable/)])
    expect(traceConnection(down, flow).firstFailure?.reason).toMatch(/tunl0 is down/)
    const noVip = onlyRs2((f, t) => (f === 'ip-addr.json' ? withTunl0(t, true) : t), {}, tun)
    const f = mine(noVip)
    expect(f.map((x) => x.fix?.commands)).toEqual([['ip addr add 192.0.2.100/32 dev tunl0']])
    expect(f[0]!.message).toMatch(/unwrapped SYN arrives on tunl0/)
    expect(ok(traceConnection(noVip, flow).connection)).toBe(false)
    const good = onlyRs2((f, t) => (f === 'ip-addr.json' ? withTunl0(t, true, ['192.0.2.100']) : f === 'sysctl.txt' ? t.replace('net.ipv4.conf.all.rp_filter = 2', 'net.ipv4.conf.all.rp_filter = 0') : t), {}, tun)
    expect(mine(good)).toEqual([])
  })
})
