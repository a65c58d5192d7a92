import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {parseEndpoint} from '../../src/model/ip.js'
import type {Finding} from '../../src/model/finding.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {applyFixes, splitWords} from '../../src/dataplane/apply-fix.js'
import {traceConnection} from '../../src/services/trace.js'
import {runTrace, traceWithFixes} from '../../src/services/trace-command.js'

const FX = join(import.meta.dirname, '../../fixtures/trace')
const load = (name: string) => loadSnapshots(['director', 'rs1', 'rs2'].map((h) => join(FX, name, h)).filter((p) => !p.endsWith('rs2') || name !== 'lvs-tun-no-tunl0'))
const VIP = parseEndpoint('198.51.100.100:80')!
const finding = (host: string, commands: string[]): Finding => ({rule: 'test', severity: 'error', host, title: 't', message: 'm', evidence: [], fix: {summary: 's', commands}})

test('splitWords reads quotes like a shell', () => {
  expect(splitWords(`iptables -A INPUT -m comment --comment "a b" -j ACCEPT`)).toEqual(['iptables', '-A', 'INPUT', '-m', 'comment', '--comment', 'a b', '-j', 'ACCEPT'])
  expect(splitWords(`x 'it''s' ""`)).toEqual(['x', 'its', ''])
})

describe('iptables edits on the iptables-save text', () => {
  const director = () => load('lvs-dr-input-state-new')[0]!
  test('-R replaces the numbered rule; the copy re-loads and the host is untouched', () => {
    const h = director()
    const before = h.raw.get('iptables-save.txt')
    const r = applyFixes(h, ['iptables -t filter -R INPUT 1 -p tcp -m tcp --dport 80 -j ACCEPT'])
    expect(r.outcomes[0]).toMatchObject({applied: true})
    const rules = r.host.iptables!.tables.get('filter')!.chains.get('INPUT')!.rules
    expect(rules).toHaveLength(1)
    expect(rules[0]!.matches.some((m) => m.kind === 'ctstate')).toBe(false)
    expect(h.raw.get('iptables-save.txt')).toBe(before)
    expect(r.host.role).toBe('director')
  })
  test('-I at a position, -A at the end, -D by number and by text, -P, -N', () => {
    const r = applyFixes(director(), [
      'iptables -I INPUT 1 -p tcp --dport 22 -j ACCEPT',
      'iptables -A INPUT -p icmp -j ACCEPT',
      'iptables -D INPUT 2',
      'iptables -D INPUT -p icmp -j ACCEPT',
      'iptables -P INPUT ACCEPT',
      'iptables -N ldt-NEW',
      'iptables -t nat -A POSTROUTING -d 10.1.0.0/24 -j MASQUERADE',
    ])
    expect(r.outcomes.map((o) => o.applied)).toEqual([true, true, true, true, true, true, true])
    const f = r.host.iptables!.tables.get('filter')!
    expect(f.chains.get('INPUT')!.rules.map((x) => x.loc.text)).toEqual(['-A INPUT -p tcp --dport 22 -j ACCEPT'])
    expect(f.chains.get('INPUT')!.policy).toBe('ACCEPT')
    expect(f.chains.has('ldt-NEW')).toBe(true)
    expect(r.host.iptables!.tables.get('nat')!.chains.get('POSTROUTING')!.rules).toHaveLength(1)
  })
  test('a command that cannot be applied is reported, not ignored', () => {
    const r = applyFixes(director(), ['iptables -R INPUT 9 -j ACCEPT', 'iptables -A NOSUCH -j ACCEPT', 'systemctl restart keepalived', 'iptables -Z'])
    expect(r.outcomes.every((o) => !o.applied && o.reason)).toBe(true)
    expect(r.outcomes[0]!.reason).toMatch(/has 1 rules/)
  })
})

test('sysctl -w, ip route replace and ipvsadm -e edit their files', () => {
  const [d, rs1] = load('lvs-nat-noreturn')
  const r = applyFixes(rs1!, ['ip route replace default via 10.1.0.1 dev eth0'])
  expect(r.outcomes[0]!.applied).toBe(true)
  expect(r.host.routes!.filter((x) => x.dst.len === 0).map((x) => x.gateway && x.gateway.value)).toEqual([0x0a010001n])
  const s = applyFixes(d!, ['sysctl -w net.ipv4.vs.conntrack=1', 'ipvsadm -e -t 198.51.100.100:80 -r 10.1.0.10:8080 -m -w 5', 'ip route add 10.9.0.0/24 via 10.1.0.254'])
  expect(s.outcomes.map((o) => o.applied)).toEqual([true, true, true])
  expect(s.host.sysctl!.get('net.ipv4.vs.conntrack')!.value).toBe('1')
  expect(s.host.ipvs!.services[0]!.dests[0]!.weight).toBe(5)
})

test('ip addr add/del: the address in ip-addr.json with the routes the kernel adds for it (local, and the subnet for a prefix)', () => {
  const [, rs1] = load('lvs-nat-noreturn')
  const r = applyFixes(rs1!, ['ip addr add 198.51.100.100/32 dev lo', 'ip addr add 10.7.0.5/24 dev eth0'])
  expect(r.outcomes.map((o) => o.applied)).toEqual([true, true])
  const lo = r.host.interfaces!.find((i) => i.name === 'lo')!
  expect(lo.addresses.map((a) => `${a.ip.value}/${a.prefixlen}`)).toContain(`${0xc6336464n}/32`)
  const local = r.host.routes!.filter((x) => x.type === 'local' && x.dst.len === 32 && (x.dst.value === 0xc6336464n || x.dst.value === 0x0a070005n))
  expect(local.length).toBe(2)
  expect(r.host.routes!.some((x) => x.type === 'unicast' && x.dst.len === 24 && x.dst.value === 0x0a070000n)).toBe(true)
  // the kernel's refusals: an address that exists, a device the snapshot has not, a removal of what is not there
  const bad = applyFixes(r.host, ['ip addr add 198.51.100.100/32 dev lo', 'ip addr add 192.0.2.9/32 dev nosuch0', 'ip addr del 192.0.2.9/32 dev lo', 'ip addr flush dev lo'])
  expect(bad.outcomes.map((o) => o.applied)).toEqual([false, false, false, false])
  expect(bad.outcomes[0]!.reason).toMatch(/File exists/)
  expect(bad.outcomes[1]!.reason).toMatch(/no device nosuch0/)
  const del = applyFixes(r.host, ['ip addr del 198.51.100.100/32 dev lo'])
  expect(del.outcomes[0]!.applied).toBe(true)
  expect(del.host.routes!.some((x) => x.type === 'local' && x.dst.value === 0xc6336464n)).toBe(false)
  expect(del.host.interfaces!.find((i) => i.name === 'lo')!.addresses.some((a) => a.ip.value === 0xc6336464n)).toBe(false)
})

test('--fix replays on copies: the fixes of the findings make the connection work', async () => {
  const hosts = load('lvs-dr-input-state-new')
  const o = {vip: VIP, proto: 'tcp' as const}
  expect(traceConnection(hosts, o).connection.closed).toBe(false)
  const fixed = await traceWithFixes(hosts, o, [finding('director', ['iptables -R INPUT 1 -p tcp -m tcp --dport 80 -j ACCEPT']), finding('nohost', ['true'])])
  expect(fixed.result.connection).toEqual({connected: true, reply: true, closed: true})
  expect(fixed.outcomes.find((x) => x.host === 'nohost')!.applied).toBe(false)
  // the originals are unchanged
  expect(traceConnection(hosts, o).connection.closed).toBe(false)
})

test('runTrace: the JSON contract, exit 1 on a failing connection, 0 after the fixes', async () => {
  let out = ''
  const paths = ['director', 'rs1', 'rs2'].map((h) => join(FX, 'lvs-nat-forward-estab-ct0', h))
  const code = await runTrace(paths, {vip: '198.51.100.100:80', proto: 'tcp', fix: false, json: true, out: (s) => (out += s)})
  expect(code).toBe(1)
  const j = JSON.parse(out)
  expect(Object.keys(j)).toEqual(['flow', 'connection', 'packets', 'firstFailure', 'assumptions', 'fixed'])
  expect(j.flow).toEqual({client: '203.0.113.10:40000', service: '198.51.100.100:80', proto: 'tcp'})
  expect(Object.keys(j.packets[0])).toEqual(['n', 'label', 'from', 'delivered', 'steps'])
  expect(Object.keys(j.packets[0].steps[0])).toEqual(['host', 'hook', 'table', 'chain', 'rule', 'verdict', 'ct', 'packet'])
  expect(j.firstFailure).toMatchObject({packet: 2, host: 'director', hook: 'FORWARD', chain: 'FORWARD', rule: {file: 'iptables-save.txt', line: 7}})
  expect(j.fixed).toBeNull()
  out = ''
  const fixedCode = await runTrace(paths, {vip: '198.51.100.100:80', proto: 'tcp', fix: true, json: false, out: (s) => (out += s), findings: () => [finding('director', ['sysctl -w net.ipv4.vs.conntrack=1'])]})
  expect(fixedCode).toBe(0)
  expect(out).toMatch(/before the fixes/)
  expect(out).toMatch(/after the fixes/)
  await expect(runTrace(paths, {vip: 'nonsense', proto: 'tcp', fix: false, json: true, out: () => {}})).rejects.toThrow(/--vip/)
})
