// health-check-blocked: keepalived's checks of a real server are connections of the director's own stack; where
// they fail, keepalived takes a serving real server out.
import {describe, expect, test} from 'vitest'
import {editedScenario, findingsOf, loadScenario} from './helpers.js'

const RULE = 'health-check-blocked'
const mine = findingsOf(RULE)
const FILTER = (input: string, output = '') => `*filter\n:INPUT ${input.startsWith(':') ? input.slice(1) : 'ACCEPT'} [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${input.startsWith(':') ? '' : input}${output}COMMIT\n`

describe('health-check-blocked', () => {
  test('a DR daemon listening on the VIP only: the check to the real address finds no listener (manual fix); the fixed fixture is quiet', () => {
    const f = mine(loadScenario('keepalived-check-vip-only'))
    expect(f.map((x) => [x.host, x.fix?.commands ?? []])).toEqual([['rs1', []]])
    expect(f[0]!.message).toMatch(/TCP_CHECK \(keepalived\.conf:9\): TCP to 192\.0\.2\.11:80; nothing listens on 192\.0\.2\.11:80 on rs1/)
    expect(f[0]!.fix?.summary).toMatch(/listen on 192\.0\.2\.11 too/)
    expect(mine(loadScenario('keepalived-check-vip-only-fixed'))).toEqual([])
  })

  test("the director's INPUT without an ESTABLISHED accept drops the answers: an ESTABLISHED accept on the director", () => {
    const hosts = editedScenario('keepalived-check-vip-only-fixed', 'director', (f, t) => t, {'iptables-save.txt': FILTER(':DROP').replace(':INPUT DROP [0:0]\n', ':INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n')})
    const f = mine(hosts)
    // one finding per real server; the second shares the first's command
    expect(f.map((x) => [x.host, x.fix?.commands])).toEqual([['director', ['iptables -t filter -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT']], ['director', []]])
    expect(f[0]!.message).toMatch(/the answer from 192\.0\.2\.11:80 is dropped at INPUT by the DROP policy/)
    expect(f[1]!.message).toMatch(/the answer from 192\.0\.2\.12:80 is dropped/)
  })

  test("the realserver's INPUT accepts the VIP only: the check to its own address is dropped there", () => {
    const rules = FILTER(':DROP').replace(':INPUT DROP [0:0]\n', ':INPUT DROP [0:0]\n-A INPUT -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j ACCEPT\n')
    const hosts = editedScenario('keepalived-check-vip-only-fixed', 'rs1', (f, t) => t, {'iptables-save.txt': rules})
    const f = mine(hosts)
    expect(f.map((x) => [x.host, x.fix?.commands])).toEqual([['rs1', ['iptables -t filter -A INPUT -s 192.0.2.1/32 -d 192.0.2.11/32 -p tcp -m tcp --dport 80 -j ACCEPT']]])
  })

  test("the director's OUTPUT drops the check (connect_port 8080 not allowed out)", () => {
    const d = editedScenario('keepalived-check-vip-only-fixed', 'director', (f, t) => (f === 'keepalived.conf' ? t.replace('connect_timeout 3', 'connect_timeout 3\n            connect_port 8080') : t), {
      'iptables-save.txt': '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A OUTPUT -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n',
    })
    const f = mine(d)
    // first the director's OUTPUT; once that lets the check out, nothing listens on 8080 on rs1 (hidden behind it)
    expect(f.map((x) => [x.host, x.hiddenBehind])).toEqual([['director', undefined], ['rs1', ['health-check-blocked@director']]])
    expect(f[0]!.message).toMatch(/director's SYN to 192\.0\.2\.11:8080 is dropped at OUTPUT by the DROP policy/)
    expect(f[0]!.fix?.commands).toEqual(['iptables -t filter -A OUTPUT -d 192.0.2.11/32 -p tcp -m tcp --dport 8080 -j ACCEPT'])
    expect(f[1]!.message).toMatch(/nothing listens on 192\.0\.2\.11:8080 on rs1/)
  })

  test('a realserver publishing the port with a DNAT to a container (Docker without userland proxy): no socket expected there, quiet', () => {
    const nat = '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -d 192.0.2.11/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:80\nCOMMIT\n'
    const hosts = editedScenario('keepalived-check-vip-only', 'rs1', (f, t) => t, {'iptables-save.txt': nat})
    expect(mine(hosts)).toEqual([])
  })

  test('UDP_CHECK: a silent DROP is a success for keepalived without require_reply; a REJECT, or a DROP with require_reply, fails it', () => {
    const udp = (t: string, extra = '') => t.replace(/TCP_CHECK \{\n(\s+)connect_timeout 3/g, `UDP_CHECK {\n$1connect_timeout 3${extra}`).replace('protocol TCP', 'protocol UDP')
    const input = (target: string) => ({'iptables-save.txt': `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p udp -m udp --dport 80 -j ${target}\nCOMMIT\n`})
    const withRs1 = (conf: (t: string) => string, target: string) => {
      const base = editedScenario('keepalived-check-vip-only-fixed', 'director', (f, t) => (f === 'keepalived.conf' ? conf(t) : t))
      const rs1 = editedScenario('keepalived-check-vip-only-fixed', 'rs1', (f, t) => (f === 'ss-ltnu.txt' ? 'udp UNCONN 0 0 0.0.0.0:80 0.0.0.0:*\n' : t), input(target)).find((h) => h.name === 'rs1')!
      return base.map((h) => (h.name === 'rs1' ? rs1 : h))
    }
    expect(mine(withRs1((t) => udp(t), 'DROP')).filter((f) => f.host === 'rs1')).toEqual([])
    expect(mine(withRs1((t) => udp(t), 'REJECT')).map((f) => f.host)).toContain('rs1')
    expect(mine(withRs1((t) => udp(t, '\n            require_reply'), 'DROP')).map((f) => f.host)).toContain('rs1')
  })

  test('an ipvsadm listing says nothing of checks: quiet', () => {
    expect(mine(loadScenario('dr-realserver-arp-fixed'))).toEqual([])
  })
})
