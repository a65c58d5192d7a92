// nat-reply-bypasses-director and a raw NOTRACK for an LVS-NAT VIP (the IPVS lab's random scenarios recorded it:
// check proposed the MASQUERADE, which never applied). IPVS balances untracked packets with its own connection
// table, but nat POSTROUTING is consulted only for tracked ones, so a masquerade (there, or proposed) does nothing
// until the service's packets are spared from the NOTRACK. trace agrees: with the MASQUERADE alone the replies
// still bypass the director; with the exemption too, the connection works.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {applyFixes} from '../../src/dataplane/apply-fix.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {connectionOk, editedScenario, findingsOf} from './helpers.js'

const flow = {vip: parseEndpoint('192.0.2.100:80')!, proto: 'tcp' as const, client: parseIp('198.51.100.7')!, clientPort: 40000}
const mine = findingsOf('nat-reply-bypasses-director')
const RAW = '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -d 192.0.2.0/24 -j NOTRACK\nCOMMIT\n'
const MASQ = 'iptables -t nat -A POSTROUTING -d 10.0.0.11/32 -p tcp -m tcp --dport 8080 -j MASQUERADE'

/** lvs-users-nat-unnat (LVS-NAT, the realserver routes around the director), with a raw table */
const scenario = (raw: string) => editedScenario('lvs-users-nat-unnat', 'director', (f, t) => (f === 'iptables-save.txt' ? raw + t : t))

describe('nat-reply-bypasses-director: an LVS-NAT VIP taken out of connection tracking', () => {
  test('the MASQUERADE comes with an exemption from the NOTRACK; without it trace still fails, with it the connection works', async () => {
    const hosts = scenario(RAW)
    const f = mine(hosts)
    expect(f).toHaveLength(1)
    expect(f[0]!.message).toMatch(/iptables-save\.txt:4 takes the client's packets out of connection tracking: IPVS balances them all the same, but nat POSTROUTING is consulted only for tracked packets/)
    expect(f[0]!.fix?.commands).toEqual([MASQ, 'sysctl -w net.ipv4.vs.conntrack=1', 'iptables -t raw -I PREROUTING 1 -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j ACCEPT'])
    const director = hosts.find((h) => h.name === 'director')!
    const masqOnly = hosts.map((h) => (h === director ? applyFixes(h, [MASQ, 'sysctl -w net.ipv4.vs.conntrack=1']).host : h))
    expect(connectionOk(traceConnection(masqOnly, flow).connection)).toBe(false)
    // judged again with only the masquerade: still the same problem, the exemption is what is left
    expect(mine(masqOnly).map((x) => x.fix?.commands)).toEqual([['iptables -t raw -I PREROUTING 1 -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j ACCEPT']])
    expect(connectionOk((await traceWithFixes(hosts, flow, f)).result.connection)).toBe(true)
  })

  test('quiet about NOTRACK where the raw rule spares the service (and the finding is the plain masquerade one)', () => {
    const f = mine(scenario(RAW.replace('-A PREROUTING -d 192.0.2.0/24 -j NOTRACK', '-A PREROUTING -d 192.0.2.0/24 -p udp -j NOTRACK')))
    expect(f.map((x) => x.fix?.commands)).toEqual([[MASQ, 'sysctl -w net.ipv4.vs.conntrack=1']])
    expect(f[0]!.message).not.toMatch(/connection tracking/)
  })

  test('a port-0 persistent service: no --dport 0 (a rule that matches port 0 only would never apply); trace --fix connects', async () => {
    const hosts = editedScenario('lvs-users-nat-unnat', 'director', (f, t) =>
      f === 'iptables-save.txt' ? RAW + t : f === 'ipvsadm-Sn.txt' ? '-A -t 192.0.2.100:0 -s rr -p 300\n-a -t 192.0.2.100:0 -r 10.0.0.11:0 -m -w 1\n' : t,
    )
    const f = mine(hosts)
    expect(f.map((x) => x.fix?.commands)).toEqual([['iptables -t nat -A POSTROUTING -d 10.0.0.11/32 -p tcp -j MASQUERADE', 'sysctl -w net.ipv4.vs.conntrack=1', 'iptables -t raw -I PREROUTING 1 -d 192.0.2.100/32 -p tcp -j ACCEPT']])
    expect(connectionOk((await traceWithFixes(hosts, flow, f)).result.connection)).toBe(true)
  })

  test("a NOTRACK of the backends' replies: they are never un-masqueraded; the exemption spares them, and trace --fix connects", async () => {
    const hosts = scenario(RAW.replace('-A PREROUTING -d 192.0.2.0/24 -j NOTRACK', '-A PREROUTING -s 10.0.0.0/24 -j NOTRACK'))
    const f = mine(hosts)
    expect(f[0]!.message).toMatch(/iptables-save\.txt:4 takes the backends' replies out of connection tracking: an untracked reply is never un-masqueraded/)
    expect(f[0]!.fix?.commands).toEqual([MASQ, 'sysctl -w net.ipv4.vs.conntrack=1', 'iptables -t raw -I PREROUTING 1 -s 10.0.0.11/32 -p tcp -m tcp --sport 8080 -j ACCEPT'])
    expect(connectionOk((await traceWithFixes(hosts, flow, f)).result.connection)).toBe(true)
  })

  test('an nft notrack: the exemption is an nft insert before it; trace --fix connects', async () => {
    const base = editedScenario('lvs-users-nat-unnat', 'director', (f, t) => t)
    const hosts = base.map((h) => {
      if (h.name !== 'director') return h
      const raw = new Map(h.raw)
      raw.delete('iptables-save.txt')
      raw.set('nft-ruleset.json', NFT)
      return hostFromFiles(h.name, h.source, raw)
    })
    const f = mine(hosts)
    expect(f).toHaveLength(1)
    expect(f[0]!.fix?.commands).toContain("nft insert rule ip raw prerouting position 2 'ip daddr 192.0.2.100 tcp dport 80 accept'")
    expect(connectionOk((await traceWithFixes(hosts, flow, f)).result.connection)).toBe(true)
  })
})

/** `nft -j list ruleset` (nft 1.0.6, captured in a namespace) of an inet filter table and an ip raw prerouting chain (priority -300) with `ip daddr 192.0.2.0/24 notrack` */
const NFT = '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "filter", "handle": 1}}, {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 2, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}, {"chain": {"family": "inet", "table": "filter", "name": "output", "handle": 3, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}}, {"table": {"family": "ip", "name": "raw", "handle": 2}}, {"chain": {"family": "ip", "table": "raw", "name": "prerouting", "handle": 1, "type": "filter", "hook": "prerouting", "prio": -300, "policy": "accept"}}, {"rule": {"family": "ip", "table": "raw", "chain": "prerouting", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "192.0.2.0", "len": 24}}}}, {"notrack": null}]}}]}'
