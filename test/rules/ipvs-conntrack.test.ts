// nat-stateful-output and ipvs-conntrack-off as the IPVS lab's 6.1 kernel showed them (test/ipvs-lab): with
// net.ipv4.vs.conntrack=0 a stateful OUTPUT chain kills the first SYN and a stateful INPUT chain the client's
// FIN/ACK; with =1 both chains pass everything; and =1 is never the fix when a DR/TUN service shares the
// director (dr-state-new-ct1: it breaks a stateful DR director).
import {describe, expect, test} from 'vitest'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {checkHosts} from '../../src/services/check.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {loadScenario} from './helpers.js'

/** The scenario with some of the director's files rewritten. */
function edited(name: string, edit: (file: string, text: string) => string): HostSnapshot[] {
  return loadScenario(name).map((h) => {
    if (h.name !== 'director') return h
    const files = new Map([...h.raw].map(([f, t]) => [f, edit(f, t)] as [string, string]))
    return hostFromFiles(h.name, h.source, files)
  })
}

const findings = (hosts: HostSnapshot[]) => checkHosts(hosts, {version: 't'}).findings

describe('nat-stateful-output', () => {
  test('29.15 with vs.conntrack=0: the first SYN, UNTRACKED, dies in OUTPUT', () => {
    const f = findings(loadScenario('lvs-howto-29.15-nat-output')).find((x) => x.rule === 'nat-stateful-output')!
    expect(f.message).toMatch(/toward 10\.0\.0\.11:80\), SYN \(ctstate UNTRACKED\) dropped at OUTPUT/)
    expect(f.message).toMatch(/first SYN never reaches a realserver/)
    expect(f.fix?.commands).toEqual([
      'iptables -t filter -A OUTPUT -d 10.0.0.11/32 -p tcp -m tcp --dport 80 -j ACCEPT',
      'iptables -t filter -A OUTPUT -d 10.0.0.12/32 -p tcp -m tcp --dport 80 -j ACCEPT',
    ])
  })

  test('the same chain with vs.conntrack=1 passes everything (lab: nat-output-stateful-ct1): silent', () => {
    const hosts = edited('lvs-howto-29.15-nat-output', (f, t) => (f === 'sysctl.txt' ? t.replace('net.ipv4.vs.conntrack = 0', 'net.ipv4.vs.conntrack = 1') : t))
    expect(findings(hosts).map((x) => x.rule)).toEqual([])
  })

  test('OUTPUT accepting UNTRACKED too: the FIN/ACK, INVALID again at LOCAL_OUT (lab: nat-output-untracked)', () => {
    const hosts = edited('lvs-howto-29.15-nat-output', (f, t) => (f === 'iptables-save.txt' ? t.replace('--state NEW,RELATED,ESTABLISHED', '--state NEW,RELATED,ESTABLISHED,UNTRACKED') : t))
    const f = findings(hosts).find((x) => x.rule === 'nat-stateful-output')!
    expect(f.message).toMatch(/toward 10\.0\.0\.11:80\), last FIN\/ACK \(ctstate INVALID\) dropped at OUTPUT/)
    expect(f.message).not.toMatch(/first SYN/)
    expect(f.message).toMatch(/LAST_ACK/)
  })

  test('a stateful INPUT chain: the last FIN/ACK, INVALID, before IPVS (lab: nat-input-stateful)', () => {
    const hosts = edited('lvs-howto-29.15-nat-output', (f, t) =>
      f === 'iptables-save.txt'
        ? t
            .replace(':INPUT ACCEPT [0:0]', ':INPUT DROP [0:0]')
            .replace(':OUTPUT DROP [0:0]', ':OUTPUT ACCEPT [0:0]')
            .replace('-A OUTPUT -m state --state NEW,RELATED,ESTABLISHED -j ACCEPT', '-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -d 192.0.2.100/32 -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT')
        : t,
    )
    const fs = findings(hosts)
    const f = fs.find((x) => x.rule === 'nat-stateful-output')!
    expect(f.message).toMatch(/before IPVS, last FIN\/ACK \(ctstate INVALID\) dropped at INPUT/)
    expect(f.fix?.commands).toEqual(['iptables -t filter -A INPUT -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j ACCEPT'])
    expect(fs.map((x) => x.rule).sort()).toEqual(['ipvs-conntrack-off', 'nat-stateful-output'])
  })
})

describe('ipvs-conntrack-off', () => {
  test('LVS-NAT alone: vs.conntrack=1 is the fix', () => {
    const f = findings(loadScenario('lvs-howto-29.6-nat-conntrack-off')).find((x) => x.rule === 'ipvs-conntrack-off')!
    expect(f.fix?.commands).toEqual(['sysctl -w net.ipv4.vs.conntrack=1'])
  })

  test('an LVS-DR service on the same director that vs.conntrack=1 would break: stateless accepts instead', () => {
    // 29.6's LVS-NAT ftp director, plus an LVS-DR service on :80 accepted only as NEW (LVS-HOWTO 29.1): with
    // vs.conntrack=1 its ACKs would be INVALID (entry stuck in SYN_SENT), as in the lab's dr-state-new-ct1
    const hosts = edited('lvs-howto-29.6-nat-conntrack-off', (f, t) => {
      if (f === 'ipvsadm-Sn.txt') return t + '-A -t 192.0.2.100:80 -s rr\n-a -t 192.0.2.100:80 -r 10.0.0.12:80 -g -w 1\n'
      if (f === 'iptables-save.txt') return t.replace('-A INPUT -d 192.0.2.100/32 -p tcp -j DROP', '-A INPUT -d 192.0.2.100/32 -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT\n-A INPUT -d 192.0.2.100/32 -p tcp -j DROP')
      return t
    })
    const fs = findings(hosts)
    const f = fs.find((x) => x.rule === 'ipvs-conntrack-off')!
    expect(f.message).toMatch(/vs\.conntrack=1 is not the way out here/)
    expect(f.message).toMatch(/TCP 192\.0\.2\.100:80 \(LVS-DR\): with vs\.conntrack=1, handshake ACK \(ctstate INVALID\) dropped at INPUT/)
    const cmds = f.fix?.commands ?? []
    expect(cmds.some((c) => c.includes('vs.conntrack'))).toBe(false)
    expect(cmds.length).toBeGreaterThan(0)
    expect(cmds.every((c) => c.startsWith('iptables ') && !c.includes('--state'))).toBe(true)
    // and no other rule proposes it for this director either
    expect(fs.flatMap((x) => x.fix?.commands ?? []).filter((c) => c.includes('vs.conntrack=1'))).toEqual([])
  })
})
