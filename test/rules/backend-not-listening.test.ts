// backend-not-listening: a realserver (with ss-ltnu.txt) where nothing listens where the balanced connections
// arrive. Fixture nat-backend-not-listening (namespaces: rs1's daemon bound to 127.0.0.1:8080); DR variants edited
// from keepalived-check-vip-only-fixed (a DR pair whose daemons listen on 0.0.0.0:80). trace agrees: the SYN that
// reaches such a realserver is answered with a reset.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {editedScenario, findingsOf, loadScenario} from './helpers.js'

const mine = findingsOf('backend-not-listening')
const ss = (line: string) => (f: string, t: string) => (f === 'ss-ltnu.txt' ? `${line}\n` : t)

describe('backend-not-listening', () => {
  test('a quiesced destination (weight 0) gets no new connections: not judged', () => {
    const hosts = editedScenario('nat-backend-not-listening', 'director', (f, t) => (f === 'ipvsadm-Sn.txt' ? t.replace('-r 10.0.0.11:8080 -m -w 1', '-r 10.0.0.11:8080 -m -w 0') : t))
    expect(mine(hosts)).toEqual([])
  })

  test('LVS-NAT: rs1 bound to 127.0.0.1 only: fires for rs1 alone, with the loopback hint and no command', () => {
    const f = mine(loadScenario('nat-backend-not-listening'))
    expect(f).toHaveLength(1)
    expect(f[0]!.message).toMatch(/10\.0\.0\.11:8080: the connections arrive at 10\.0\.0\.11:8080 on rs1, where no TCP socket listens \(port 8080 is open on 127\.0\.0\.1 only\)/)
    expect(f[0]!.message).not.toMatch(/rs2/)
    expect(f[0]!.fix).toEqual({summary: expect.stringMatching(/bound to the loopback address/), commands: []})
    expect(mine(loadScenario('nat-backend-not-listening-fixed'))).toEqual([])
  })

  test('LVS-DR: a daemon bound to the realserver\'s own address misses the VIP; trace: the SYN to rs1 is reset', () => {
    const hosts = editedScenario('keepalived-check-vip-only-fixed', 'rs1', ss('tcp LISTEN 0      128    192.0.2.11:80 0.0.0.0:*'))
    const f = mine(hosts)
    expect(f.map((x) => x.message)).toEqual([expect.stringMatching(/the connections arrive at 192\.0\.2\.100:80 on rs1, where no TCP socket listens \(port 80 is open on 192\.0\.2\.11 only\)/)])
    expect(f[0]!.fix?.summary).toMatch(/let the daemon listen on 192\.0\.2\.100 too \(or on 0\.0\.0\.0\): an LVS-DR\/TUN realserver receives the packets for the VIP/)
    // only rs1 as destination, so that trace's connection goes there
    const one = hosts.map((h) => (h.name === 'director' ? editedScenario('keepalived-check-vip-only-fixed', 'director', (file, t) => (file === 'keepalived.conf' ? t.replace(/real_server 192\.0\.2\.12 80 \{[\s\S]*?\n {4}\}\n/, '') : t)).find((x) => x.name === 'director')! : h))
    const r = traceConnection(one, {vip: parseEndpoint('192.0.2.100:80')!, proto: 'tcp', client: parseIp('203.0.113.10')!, clientPort: 40000})
    expect(r.connection.connected).toBe(false)
    expect(r.firstFailure?.reason).toMatch(/nothing listens there on TCP port 80/)
  })

  test('quiet: a listener on the VIP or on 0.0.0.0, a realserver without ss-ltnu.txt, and a port the realserver REDIRECTs to a listener', () => {
    expect(mine(loadScenario('keepalived-check-vip-only-fixed'))).toEqual([])
    // iproute2 of RHEL/CentOS 7 prints a dual-stack wildcard (httpd's default) as :::80, as netstat does
    expect(mine(editedScenario('keepalived-check-vip-only-fixed', 'rs1', ss('tcp    LISTEN     0      128      :::80                   :::*')))).toEqual([])
    // a v6only wildcard (today's ss: [::]) takes no IPv4 connection: fires, and says so
    expect(mine(editedScenario('keepalived-check-vip-only-fixed', 'rs1', ss('tcp LISTEN 0      128    [::]:80 [::]:*'))).map((x) => x.message)).toEqual([expect.stringMatching(/port 80 is open on \[::\] \(IPv6 only\) only/)])
    expect(mine(editedScenario('keepalived-check-vip-only-fixed', 'rs1', ss('tcp LISTEN 0      128    192.0.2.100:80 0.0.0.0:*')))).toEqual([])
    const noSs = editedScenario('keepalived-check-vip-only-fixed', 'rs1', (f, t) => t)
    for (const h of noSs) if (h.name === 'rs1') delete (h as {listeners?: unknown}).listeners
    expect(mine(noSs)).toEqual([])
    const redirect = '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 8080\nCOMMIT\n'
    const listening8080 = (f: string, t: string) => (f === 'ss-ltnu.txt' ? 'tcp LISTEN 0      128    0.0.0.0:8080 0.0.0.0:*\n' : t)
    expect(mine(editedScenario('keepalived-check-vip-only-fixed', 'rs1', listening8080, {'iptables-save.txt': redirect}))).toEqual([])
    // without the REDIRECT, 80 has no listener: fires, naming the port that is open
    expect(mine(editedScenario('keepalived-check-vip-only-fixed', 'rs1', listening8080)).map((x) => x.message)).toEqual([expect.stringMatching(/192\.0\.2\.100:80 on rs1, where no TCP socket listens/)])
  })
})
