// A service on the balancer itself, published with a PREROUTING DNAT to one of its own addresses (127.0.0.1 or
// another port): localhost-dnat's martian-destination case, and filter-blocks-vip's fix written for the packet
// filter INPUT sees (after the DNAT), not the VIP the client asked for. Found by the random local kernel
// scenarios (test/kernel/random-local-scenarios.ts).
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {runRules} from '../../src/rules/index.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {loadScenario} from './helpers.js'

const flow = {vip: parseEndpoint('192.0.2.5:80')!, proto: 'tcp' as const, client: parseIp('198.51.100.7')!, clientPort: 40000}
const ok = (c: {connected: boolean; reply: boolean; closed: boolean}) => c.connected && c.reply && c.closed

function edited(h: HostSnapshot, files: Record<string, string>): HostSnapshot {
  const raw = new Map(h.raw)
  for (const [k, v] of Object.entries(files)) raw.set(k, v)
  return hostFromFiles(h.name, h.source, raw)
}

describe('localhost-dnat: outside clients DNATed to 127.0.0.1', () => {
  test('without route_localnet on the arriving interface: fires with the sysctl for that interface; trace --fix connects', async () => {
    const hosts = loadScenario('dnat-to-loopback')
    expect(traceConnection(hosts, flow).firstFailure?.reason).toMatch(/martian destination 127\.0\.0\.1 arrived on ldr-eth0/)
    const f = runRules({hosts})
    expect(f.map((x) => [x.rule, x.fix?.commands])).toEqual([['localhost-dnat', ['sysctl -w net.ipv4.conf.ldr-eth0.route_localnet=1']]])
    expect(f[0]!.message).toMatch(/route_localnet is 0: the kernel drops a 127\/8 destination arriving on a real interface as a martian/)
    const fixed = await traceWithFixes(hosts, flow, f)
    expect(ok(fixed.result.connection)).toBe(true)
  })

  test('route_localnet on the interface (fixed fixture) or on all: quiet; on lo only: still fires', () => {
    expect(runRules({hosts: loadScenario('dnat-to-loopback-fixed')})).toEqual([])
    const [h] = loadScenario('dnat-to-loopback')
    const sys = h!.raw.get('sysctl.txt')!
    const all = edited(h!, {'sysctl.txt': sys.replace('net.ipv4.conf.all.route_localnet = 0', 'net.ipv4.conf.all.route_localnet = 1')})
    expect(runRules({hosts: [all]})).toEqual([])
    const lo = edited(h!, {'sysctl.txt': sys.replace('net.ipv4.conf.lo.route_localnet = 0', 'net.ipv4.conf.lo.route_localnet = 1')})
    expect(runRules({hosts: [lo]}).map((x) => x.rule)).toEqual(['localhost-dnat'])
    expect(ok(traceConnection([lo], flow).connection)).toBe(false)
  })

  test('without -i: quiet when one interface with an address has route_localnet (the clients may come in there)', () => {
    const [h] = loadScenario('dnat-to-loopback-fixed')
    const noIif = edited(h!, {'iptables-save.txt': h!.raw.get('iptables-save.txt')!.replace(' -i ldr-eth0', '')})
    expect(runRules({hosts: [noIif]})).toEqual([])
    const [bad] = loadScenario('dnat-to-loopback')
    const noIifBad = edited(bad!, {'iptables-save.txt': bad!.raw.get('iptables-save.txt')!.replace(' -i ldr-eth0', '')})
    expect(runRules({hosts: [noIifBad]}).map((x) => [x.rule, x.fix?.commands])).toEqual([['localhost-dnat', ['sysctl -w net.ipv4.conf.all.route_localnet=1']]])
  })
})

describe('filter-blocks-vip: a DNAT to the host itself meets filter INPUT after the DNAT', () => {
  test('the accept is written for the translated destination, and trace --fix connects', async () => {
    const [h] = loadScenario('dnat-to-loopback-fixed')
    const rules = h!.raw.get('iptables-save.txt')!.replace(':INPUT ACCEPT [0:0]', ':INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT')
    const hosts = [edited(h!, {'iptables-save.txt': rules})]
    expect(traceConnection(hosts, flow).firstFailure?.hook).toBe('INPUT')
    const f = runRules({hosts}).filter((x) => x.rule === 'filter-blocks-vip')
    expect(f).toHaveLength(1)
    const cmds = f[0]!.fix?.commands ?? []
    expect(cmds).toHaveLength(1)
    expect(cmds[0]).toMatch(/-d 127\.0\.0\.1\/32 -p tcp -m tcp --dport 8080 -j ACCEPT$/)
    const fixed = await traceWithFixes(hosts, flow, f)
    expect(fixed.result.connection).toEqual({connected: true, reply: true, closed: true})
  })
})

describe('a REDIRECT is a service of the host itself', () => {
  test("INPUT accepting the client's port 80 misses the REDIRECTed 8080: the accept names the device's address and port 8080", async () => {
    const [h] = loadScenario('dnat-to-loopback-fixed')
    const rules = h!
      .raw.get('iptables-save.txt')!
      .replace(/-A PREROUTING .*/, '-A PREROUTING -i ldr-eth0 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 8080')
      .replace(':INPUT ACCEPT [0:0]', ':INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT')
    const hosts = [edited(h!, {'iptables-save.txt': rules})]
    const t = traceConnection(hosts, flow)
    expect(t.firstFailure?.hook).toBe('INPUT')
    expect(t.packets[0]!.steps.some((s) => s.packet.includes('> 192.0.2.5:8080'))).toBe(true)
    const f = runRules({hosts})
    expect(f.map((x) => [x.rule, x.fix?.commands])).toEqual([['filter-blocks-vip', ['iptables -t filter -A INPUT -d 192.0.2.5/32 -p tcp -m tcp --dport 8080 -j ACCEPT']]])
    const fixed = await traceWithFixes(hosts, flow, f)
    expect(fixed.result.connection).toEqual({connected: true, reply: true, closed: true})
    // with the accept for 8080 already there: quiet
    const good = [edited(h!, {'iptables-save.txt': rules.replace('--dport 80 -j ACCEPT', '--dport 8080 -j ACCEPT')})]
    expect(runRules({hosts: good})).toEqual([])
    expect(traceConnection(good, flow).connection).toEqual({connected: true, reply: true, closed: true})
  })
})

describe("realserver-filter-blocks-service: the host's own service behind its DNAT", () => {
  const [h] = loadScenario('dnat-to-loopback-fixed')
  const base = h!.raw.get('iptables-save.txt')!

  test('OUTPUT drops the answers from 127.0.0.1:8080 (filter OUTPUT sees them before the un-DNAT): fires with an accept for that source; trace --fix connects', async () => {
    const hosts = [edited(h!, {'iptables-save.txt': base.replace(':OUTPUT ACCEPT [0:0]\nCOMMIT', ':OUTPUT DROP [0:0]\n-A OUTPUT -p tcp -m tcp --sport 80 -j ACCEPT\nCOMMIT')})]
    expect(traceConnection(hosts, flow).firstFailure?.hook).toBe('OUTPUT')
    const f = runRules({hosts})
    expect(f.map((x) => [x.rule, x.fix?.commands])).toEqual([['realserver-filter-blocks-service', ['iptables -t filter -A OUTPUT -s 127.0.0.1/32 -p tcp -m tcp --sport 8080 -j ACCEPT']]])
    expect(f[0]!.message).toMatch(/^127\.0\.0\.1:8080 on web is the local service of /)
    const fixed = await traceWithFixes(hosts, flow, f)
    expect(fixed.result.connection).toEqual({connected: true, reply: true, closed: true})
  })

  test('INPUT dropping the SYN is filter-blocks-vip alone (one fix, not two)', () => {
    const hosts = [edited(h!, {'iptables-save.txt': base.replace(':INPUT ACCEPT [0:0]', ':INPUT DROP [0:0]')})]
    expect(runRules({hosts}).map((x) => x.rule)).toEqual(['filter-blocks-vip'])
  })
})

describe("localhost-dnat: a PREROUTING DNAT of 127.0.0.1 next to a local server of that address (Docker's -p 127.0.0.1:8080:80)", () => {
  const json = readFileSync(join(import.meta.dirname, '../../fixtures/real-world/open/docker-usernet-portmap-lo.json'), 'utf8')
  const dockerHost = (files: Record<string, string>) => hostFromFiles('docker', 'docker', new Map(Object.entries({'nft-ruleset.json': json, ...files})))
  const mine = (h: HostSnapshot) => runRules({hosts: [h]}).filter((f) => f.rule === 'localhost-dnat')

  test('without the listening sockets: a warning that says what it could not verify', () => {
    const f = mine(dockerHost({}))
    expect(f.map((x) => x.severity)).toEqual(['warning'])
    expect(f[0]!.unverified?.join(' ')).toMatch(/whether a local process serves 127\.0\.0\.1:8080 itself/)
  })

  test('docker-proxy listening on 127.0.0.1:8080 (ss-ltnu.txt): quiet; something on another port: still said', () => {
    expect(mine(dockerHost({'ss-ltnu.txt': 'tcp LISTEN 0 4096 127.0.0.1:8080 0.0.0.0:*\n'}))).toEqual([])
    expect(mine(dockerHost({'ss-ltnu.txt': 'tcp LISTEN 0 4096 127.0.0.1:9090 0.0.0.0:*\n'})).map((x) => x.severity)).toEqual(['error'])
  })
})
