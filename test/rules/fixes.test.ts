// The fixes of one report as a whole: no command twice, no rule the ruleset already has, vs.conntrack=1 never
// proposed where it breaks a DR/TUN service of the director, and an fwmark service nothing marks gets a MARK
// rule derived from what the snapshot holds (or is told plainly what could not be derived). Messages name nft
// rules by table, chain and handle.
import {describe, expect, test} from 'vitest'
import type {Finding} from '../../src/model/finding.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {checkHosts} from '../../src/services/check.js'
import {renderFixes} from '../../src/rules/engine/fix.js'
import {runRuleChecks} from '../../src/rules/index.js'
import {applyFixes, editedScenario, loadScenario, scenarioNames} from './helpers.js'

const check = (hosts: HostSnapshot[]): Finding[] => checkHosts(hosts, {version: 't'}).findings
const commands = (fs: readonly Finding[]) => fs.flatMap((f) => (f.fix?.commands ?? []).map((c) => `${f.host}: ${c}`))

/** LVS-NAT to a realserver that answers around the director, with MASQUERADE in place and vs.conntrack=0 (the lab's nat-gw-router-snat-ct0). */
const MASQ = '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -d 10.0.0.11/32 -p tcp -m tcp --dport 8080 -j MASQUERADE\nCOMMIT\n'

describe('nat-reply-bypasses-director with SNAT in place and net.ipv4.vs.conntrack=0', () => {
  const hosts = editedScenario('lvs-users-nat-unnat', 'director', (f, t) => (f === 'iptables-save.txt' ? t + MASQ : t))
  const fs = check(hosts)

  test('no second MASQUERADE, no second sysctl: the finding refers to ipvs-conntrack-off', () => {
    expect(fs.map((f) => f.rule)).toEqual(['ipvs-conntrack-off', 'nat-reply-bypasses-director'])
    expect(commands(fs)).toEqual(['director: sysctl -w net.ipv4.vs.conntrack=1'])
    const nat = fs.find((f) => f.rule === 'nat-reply-bypasses-director')!
    expect(nat.fix?.commands).toEqual([])
    expect(nat.fix?.summary).toMatch(/masquerading that is there \(iptables-save\.txt:\d+\) apply with net\.ipv4\.vs\.conntrack=1/)
    expect(nat.fix?.summary).toMatch(/same fix as ipvs-conntrack-off above, nothing more to run$/)
    expect(nat.message).toMatch(/The masquerading is there \(iptables-save\.txt:\d+\), but with net\.ipv4\.vs\.conntrack=0/)
  })

  test('applied, the fixes leave neither finding', () => {
    const again = check(applyFixes(hosts, fs))
    expect(again.filter((f) => f.severity !== 'info').map((f) => `${f.rule}: ${f.message}`)).toEqual([])
  })

  test('in the other order the first finding gives the command and the second refers to it', () => {
    const raw = runRuleChecks({hosts}).filter((f) => f.rule === 'ipvs-conntrack-off' || f.rule === 'nat-reply-bypasses-director')
    const out = renderFixes([...raw].sort((a, b) => b.rule.localeCompare(a.rule)))
    expect(out.map((f) => [f.rule, f.fix?.commands])).toEqual([
      ['nat-reply-bypasses-director', ['sysctl -w net.ipv4.vs.conntrack=1']],
      ['ipvs-conntrack-off', []],
    ])
    expect(out[1]!.fix?.summary).toMatch(/same fix as nat-reply-bypasses-director above, nothing more to run$/)
  })
})

describe('nat-reply-bypasses-director on a director that also has a stateful LVS-DR service', () => {
  // the DR service's INPUT rule accepts only NEW: with vs.conntrack=1 its ACKs are INVALID (lab: dr-state-new-ct1)
  const hosts = editedScenario('lvs-users-nat-unnat', 'director', (f, t) => {
    if (f === 'ipvsadm-Sn.txt') return t + '-A -t 192.0.2.100:443 -s rr\n-a -t 192.0.2.100:443 -r 192.0.2.11:443 -g -w 1\n'
    if (f === 'iptables-save.txt') return t.replace(':INPUT ACCEPT [0:0]', ':INPUT DROP [0:0]').replace('COMMIT', '-A INPUT -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j ACCEPT\n-A INPUT -d 192.0.2.100/32 -p tcp -m state --state NEW -m tcp --dport 443 -j ACCEPT\nCOMMIT')
    return t
  })
  const fs = check(hosts)

  test('vs.conntrack=1 is not proposed, and the message says why', () => {
    const nat = fs.find((f) => f.rule === 'nat-reply-bypasses-director')!
    expect(nat.message).toMatch(/vs\.conntrack=1 is not the way out here/)
    expect(nat.message).toMatch(/TCP 192\.0\.2\.100:443 \(LVS-DR\): with vs\.conntrack=1, handshake ACK \(ctstate INVALID\) dropped at INPUT/)
    expect(nat.fix?.commands).toEqual([])
    expect(nat.fix?.summary).toMatch(/^make director the realservers' gateway .* would break the LVS-DR\/TUN service of director/)
    expect(commands(fs).filter((c) => c.includes('vs.conntrack'))).toEqual([])
  })
})

describe('no rule twice: a fix moves the chain\'s own copy of a rule instead of adding another', () => {
  test('29.8: the unreached MARK rules are moved before the ACCEPT, not copied', () => {
    const fs = check(loadScenario('lvs-howto-29.8-fwmark-after-accept'))
    expect(fs[0]!.fix?.commands).toEqual([
      'iptables -t mangle -D PREROUTING 2',
      'iptables -t mangle -I PREROUTING 1 -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x3/0xffffffff',
      'iptables -t mangle -D PREROUTING 3',
      'iptables -t mangle -I PREROUTING 2 -d 192.0.2.100/32 -p tcp -m tcp --dport 443 -j MARK --set-xmark 0x3/0xffffffff',
    ])
    expect(fs[0]!.fix?.summary).toMatch(/move the MARK rules before the rule that ends mangle PREROUTING/)
  })

  test('no report of the fixtures repeats a command on a host', () => {
    for (const name of scenarioNames()) {
      const cmds = commands(check(loadScenario(name)))
      expect(cmds, name).toEqual([...new Set(cmds)])
    }
  })
})

describe('fwmark-service-unmarked: an IPVS fwmark service nothing marks', () => {
  const unmarked = (edit: (f: string, t: string) => string = (_f, t) => t) =>
    editedScenario('lvs-howto-29.8-fwmark-after-accept', 'director', (f, t) => edit(f, f === 'iptables-save.txt' ? t.replace(/^-A PREROUTING .*MARK.*\n/gm, '') : t))

  test('the VIP its DR realservers hold: a MARK rule for every TCP port of it, before the rule that ends the chain', () => {
    const f = check(unmarked()).find((x) => x.rule === 'fwmark-service-unmarked')!
    expect(f.fix?.commands).toEqual(['iptables -t mangle -I PREROUTING 1 -d 192.0.2.100/32 -p tcp -j MARK --set-mark 0x3'])
    expect(f.message).toMatch(/its realservers hold 192\.0\.2\.100 \(rs1, rs2\)/)
    expect(f.message).toMatch(/marks every TCP port of the VIP/)
    expect(f.fix?.summary).toMatch(/on the packets to 192\.0\.2\.100, every TCP port/)
    expect(f.evidence.some((e) => e.host === 'rs1' && e.file === 'ip-addr.json')).toBe(true)
  })

  test('without the realservers: the director\'s only VIP-shaped address', () => {
    const director = unmarked().filter((h) => h.name === 'director')
    const f = check(director).find((x) => x.rule === 'fwmark-service-unmarked')!
    expect(f.fix?.commands).toEqual(['iptables -t mangle -I PREROUTING 1 -d 192.0.2.100/32 -p tcp -j MARK --set-mark 0x3'])
    expect(f.message).toMatch(/192\.0\.2\.100 \(a \/32 on ldr-eth0\) is director's only address that looks like a VIP/)
  })

  test('the connection table names VIP and port', () => {
    const lnc = 'IPVS connection entries\npro expire state       source             virtual            destination\nTCP 14:59  ESTABLISHED 203.0.113.10:40000 192.0.2.100:8443  192.0.2.11:0\n'
    const hosts = editedScenario('lvs-howto-29.8-fwmark-after-accept', 'director', (f, t) => (f === 'iptables-save.txt' ? t.replace(/^-A PREROUTING .*MARK.*\n/gm, '') : t), {'ipvsadm-Lnc.txt': lnc})
    const f = check(hosts).find((x) => x.rule === 'fwmark-service-unmarked')!
    expect(f.fix?.commands).toEqual(['iptables -t mangle -I PREROUTING 1 -d 192.0.2.100/32 -p tcp -m tcp --dport 8443 -j MARK --set-mark 0x3'])
    expect(f.message).toMatch(/connection table shows what it served: 192\.0\.2\.100:8443/)
  })

  test('two candidate VIPs and no realserver: no guess, said plainly', () => {
    const director = unmarked((f, t) => (f === 'ip-addr.json' ? t.replace('"local":"192.0.2.100","prefixlen":32', '"local":"192.0.2.100","prefixlen":32},{"family":"inet","local":"192.0.2.101","prefixlen":32,"scope":"global","label":"ldr-eth0","valid_life_time":4294967295,"preferred_life_time":4294967295') : t)).filter((h) => h.name === 'director')
    const f = check(director).find((x) => x.rule === 'fwmark-service-unmarked')!
    expect(f.fix?.commands).toEqual([])
    expect(f.message).toMatch(/does not say which VIP and ports it is for: 192\.0\.2\.100 \(a \/32 on ldr-eth0\), 192\.0\.2\.101 \(a \/32 on ldr-eth0\) could all be, so no command is proposed/)
  })
})

describe('messages name nft rules by table, chain and handle', () => {
  test('no nft finding cites nft-ruleset.json:LINE in its message or summary', () => {
    for (const name of scenarioNames().filter((n) => n.startsWith('nft-'))) {
      for (const f of check(loadScenario(name))) {
        expect(`${f.message}\n${f.fix?.summary ?? ''}`, `${name} ${f.rule}`).not.toMatch(/nft-ruleset\.json:\d/)
      }
    }
    const fw = check(loadScenario('nft-lvs-howto-29.14-rh-firewall')).find((f) => f.rule === 'dr-stateful-filter')!
    expect(fw.message).toMatch(/rejected at INPUT by nft rule ip filter rh_firewall_1_input handle \d+ \(REJECT with icmp-host-prohibited\)/)
  })
})
