// `snapshot --capture-seconds N [--iface IF]` without a kernel: a fake runner for the collection commands and a
// fake live capture. The capture starts once everything else is collected, with the filter of the host's own
// services (or none) on the default route's interface; it is recorded in the manifest; a capture that cannot
// run is a gap, never a failure of the snapshot.
import {mkdirSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {RunResult, Runner} from '../../src/snapshot/exec.js'
import {runSnapshot, takeSnapshot} from '../../src/services/snapshot.js'
import {CaptureUnavailableError, INSTALL_HINT} from '../../src/capture/errors.js'
import type {LiveOptions, LiveResult} from '../../src/capture/live.js'
import {PcapWriter} from '../../src/capture/writer.js'
import {analyseCaptureFile} from '../../src/capture/analyse.js'
import {defaultRouteInterface} from '../../src/snapshot/capture.js'
import {parseIpRoute} from '../../src/snapshot/parsers/ip-json.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {conversation} from '../capture/helpers.js'

const work = mkdtempSync(join(tmpdir(), 'ldk-snapcap-'))
afterAll(() => rmSync(work, {recursive: true, force: true}))
let seq = 0
const fresh = (name: string) => join(work, `${++seq}-${name}`)

const ROUTES = '[{"dst":"default","gateway":"10.77.0.254","dev":"ldk-eth9","flags":[]},{"dst":"10.77.0.0/24","dev":"ldk-eth9","protocol":"kernel","scope":"link","prefsrc":"10.77.0.1","flags":[]}]\n'
const ADDR = '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},' +
  '{"ifindex":2,"ifname":"ldk-eth9","flags":["UP"],"addr_info":[{"family":"inet","local":"10.77.0.1","prefixlen":24,"scope":"global"}]}]\n'
const DNAT = '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.77.0.10:8080\nCOMMIT\n'

function fakeRunner(o: {routes?: string | null; iptables?: string} = {}): Runner & {calls: string[]} {
  const table: Record<string, string> = {
    'iptables -V': 'iptables v1.8.9 (nf_tables)\n',
    'iptables-save': o.iptables ?? '',
    'ip6tables-save': '',
    'ip -j addr show': ADDR,
    'ip -j rule show': '[{"priority":0,"src":"all","table":"local"}]\n',
    'sysctl net.ipv4 net.ipv6.conf': 'net.ipv4.ip_forward = 1\n',
  }
  if (o.routes !== null) table['ip -j route show table all'] = o.routes ?? ROUTES
  const calls: string[] = []
  const runner = async (argv: readonly string[], opts?: {timeoutMs?: number}): Promise<RunResult> => {
    const key = argv.join(' ')
    calls.push(key)
    const base = {argv: [...argv], stderr: '', durationMs: 1, timedOut: false, timeoutMs: opts?.timeoutMs ?? 5000, maxBuffer: false}
    const out = table[key]
    if (out === undefined) return {...base, stdout: Buffer.alloc(0), exitCode: null, errorCode: 'ENOENT'}
    return {...base, stdout: Buffer.from(out), exitCode: 0}
  }
  return Object.assign(runner, {calls})
}

function fakeProc(): string {
  const p = fresh('proc')
  mkdirSync(join(p, 'net'), {recursive: true})
  mkdirSync(join(p, 'sys/net/ipv4'), {recursive: true})
  mkdirSync(join(p, 'sys/net/ipv6/conf'), {recursive: true})
  return p
}

/** A live capture that writes one healthy conversation, and remembers what it was asked (and when). */
function fakeLive(runner: {calls: string[]}, fail?: Error): ((o: LiveOptions) => Promise<LiveResult>) & {asked: LiveOptions[]; callsBefore: number[]} {
  const asked: LiveOptions[] = []
  const callsBefore: number[] = []
  const live = async (o: LiveOptions): Promise<LiveResult> => {
    asked.push(o)
    callsBefore.push(runner.calls.length)
    if (fail) throw fail
    const w = new PcapWriter(o.out, {linkType: 101, snaplen: o.snaplen ?? 262144})
    const pkts = conversation('203.0.113.10', '192.0.2.100', 40000, 80)
    for (const p of pkts) w.write(Math.floor(p.time), Math.round((p.time % 1) * 1e6), Buffer.from(p.packet), p.packet.length)
    w.close()
    return {packets: pkts.length, out: o.out, linkType: 101, stoppedBy: 'seconds', drops: 0, durationMs: (o.seconds ?? 0) * 1000, warnings: []}
  }
  return Object.assign(live, {asked, callsBefore})
}

const base = {progress: 'silent' as const, keepalivedPath: '/nonexistent/keepalived.conf', version: 't', name: 'ldk-h'}

describe('snapshot --capture-seconds', () => {
  it('captures once the rest is collected, with the filter of the host\'s DNAT service, on the default route\'s interface', async () => {
    const runner = fakeRunner({iptables: DNAT})
    const live = fakeLive(runner)
    const out = fresh('snap')
    const r = await takeSnapshot({...base, output: out, runner, proc: fakeProc(), capture: {seconds: 2, live}})
    expect(live.asked).toHaveLength(1)
    expect(live.asked[0]).toMatchObject({iface: 'ldk-eth9', seconds: 2, snaplen: 512, filter: '(host 192.0.2.100 and port 80) or host 10.77.0.10 or icmp or icmp6 or ip proto 4 or ip proto 41 or ip proto 47 or udp dst port 6080'})
    // every collection command had run before the capture started
    expect(live.callsBefore[0]).toBe(runner.calls.length)
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))
    expect(m.commands['capture.pcap']).toEqual({
      argv: ['libpcap', '--iface', 'ldk-eth9', '--seconds', '2', '--snaplen', '512', '--filter', '(host 192.0.2.100 and port 80) or host 10.77.0.10 or icmp or icmp6 or ip proto 4 or ip proto 41 or ip proto 47 or udp dst port 6080'],
      iface: 'ldk-eth9', filter: '(host 192.0.2.100 and port 80) or host 10.77.0.10 or icmp or icmp6 or ip proto 4 or ip proto 41 or ip proto 47 or udp dst port 6080', seconds: 2, snaplen: 512,
      exitCode: 0, durationMs: 2000, stderr: '', packets: 8, stoppedBy: 'seconds', drops: 0,
    })
    expect(r.summary.files).toContain('capture.pcap')
    expect(r.summary.capture).toMatchObject({packets: 8, iface: 'ldk-eth9'})
    const a = await analyseCaptureFile(join(out, 'capture.pcap'))
    expect([a.packets, a.flows, a.symptoms]).toEqual([8, 1, []])
    // and check finds it there
    expect(loadSnapshots([out])[0]!.capturePath).toBe(join(out, 'capture.pcap'))
  })

  it('without services: a capture of every packet; --iface wins over the default route', async () => {
    const runner = fakeRunner()
    const live = fakeLive(runner)
    const out = fresh('snap')
    await takeSnapshot({...base, output: out, runner, proc: fakeProc(), capture: {seconds: 1, iface: 'any', live}})
    expect(live.asked[0]).toMatchObject({iface: 'any', filter: ''})
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))
    expect(m.commands['capture.pcap'].argv).toEqual(['libpcap', '--iface', 'any', '--seconds', '1', '--snaplen', '512'])
  })

  it('no default route and no --iface: a gap that says to give --iface, and no capture file', async () => {
    const runner = fakeRunner({routes: '[]\n'})
    const live = fakeLive(runner)
    const out = fresh('snap')
    const r = await takeSnapshot({...base, output: out, runner, proc: fakeProc(), capture: {seconds: 1, live}})
    expect(live.asked).toEqual([])
    expect(r.summary.files).not.toContain('capture.pcap')
    expect(r.summary.gaps.find((g) => g.file === 'capture.pcap')?.gap).toMatch(/no default route in ip-route.json .*give --iface IF/)
    const noRoutes = await takeSnapshot({...base, output: fresh('snap'), runner: fakeRunner({routes: null}), proc: fakeProc(), capture: {seconds: 1, live}})
    expect(noRoutes.summary.gaps.find((g) => g.file === 'capture.pcap')?.gap).toMatch(/no routes collected/)
  })

  it('a capture that cannot run is a gap in the manifest and the output, not a failure (exit 0)', async () => {
    for (const [err, expected] of [
      [new CaptureUnavailableError(`Cannot find module 'pcap': ${INSTALL_HINT}`), /apt-get install libpcap-dev/],
      [new CaptureUnavailableError('cannot capture on ldk-nosuch0: No such device exists'), /^cannot capture on ldk-nosuch0/],
      [new CaptureUnavailableError("cannot capture on eth0: eth0: You don't have permission to perform this capture on that device (socket: Operation not permitted)"), /^permission denied \(run as root\): cannot capture on eth0/],
    ] as const) {
      const runner = fakeRunner()
      const out = fresh('snap')
      const lines: string[] = []
      const code = await runSnapshot({...base, output: out, runner, proc: fakeProc(), json: false, capture: {seconds: 1, live: fakeLive(runner, err)}, out: (s) => void lines.push(s), err: () => {}})
      expect(code).toBe(0)
      const rec = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).commands['capture.pcap']
      expect(rec).toMatchObject({exitCode: null, iface: 'ldk-eth9'})
      expect(rec.gap).toMatch(expected)
      expect(lines.join('')).toMatch(/gap {2}capture\.pcap: /)
    }
  })

  it('a bug in the capture is not hidden as a gap', async () => {
    const runner = fakeRunner()
    await expect(takeSnapshot({...base, output: fresh('snap'), runner, proc: fakeProc(), capture: {seconds: 1, live: fakeLive(runner, new TypeError('boom'))}})).rejects.toThrow('boom')
  })

  it('the text summary names the capture', async () => {
    const runner = fakeRunner({iptables: DNAT})
    const lines: string[] = []
    await runSnapshot({...base, output: fresh('snap'), runner, proc: fakeProc(), json: false, capture: {seconds: 2, live: fakeLive(runner)}, out: (s) => void lines.push(s), err: () => {}})
    expect(lines.join('')).toMatch(/ {2}capture\.pcap: 8 packets on ldk-eth9 in 2\.0 s, stopped by seconds; filter: \(host 192\.0\.2\.100 and port 80\)/)
  })

  it('the default route interface: main table, IPv4 first, lowest metric, multipath', () => {
    const routes = parseIpRoute(
      '[{"dst":"default","gateway":"fe80::1","dev":"v6if","metric":1,"flags":[]},{"dst":"default","gateway":"10.0.0.1","dev":"slow","metric":200,"flags":[]},' +
        '{"dst":"default","gateway":"10.0.1.1","dev":"fast","metric":100,"flags":[]},{"dst":"default","gateway":"10.9.0.1","dev":"other","table":"100","flags":[]}]\n',
      'ip-route.json',
    )
    expect(defaultRouteInterface(routes)).toBe('fast')
    expect(defaultRouteInterface(parseIpRoute('[{"dst":"default","flags":[],"nexthops":[{"gateway":"10.0.0.1","dev":"nh0","weight":1,"flags":[]}]}]\n', 'ip-route.json'))).toBe('nh0')
    expect(defaultRouteInterface([])).toBeUndefined()
  })
})
