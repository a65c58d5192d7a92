// `check --vip IP:PORT`: the rules also check that this very flow is served (what trace --fix tells them).
import {spawnSync} from 'node:child_process'
import {join, resolve} from 'node:path'
import {describe, expect, test} from 'vitest'

const ROOT = resolve(import.meta.dirname, '../..')
const FIXED = join(ROOT, 'fixtures/rules/fwmark-policy-route-unmarked-fixed') // marks TCP :80 of 198.51.100.100 only
const check = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/run.js'), 'check', '--json', '--fail-on', 'none', ...args], {encoding: 'utf8'})
  return {status: r.status, stderr: r.stderr, report: r.stdout ? (JSON.parse(r.stdout) as {findings: {rule: string; message: string; fix?: {commands: string[]}}[]}) : undefined}
}
const hosts = ['director', 'rs1'].map((h) => join(FIXED, h))

describe('check --vip', () => {
  test('without a flow the MARK rule for port 80 is fine; told a flow to port 8080 it is a finding with the MARK rule for 8080', () => {
    expect(check(...hosts).report!.findings).toEqual([])
    expect(check('--vip', '198.51.100.100:80', ...hosts).report!.findings).toEqual([])
    const f = check('--vip', '198.51.100.100:8080', ...hosts).report!.findings
    expect(f.map((x) => [x.rule, x.fix?.commands])).toEqual([['fwmark-service-unmarked', ['iptables -t mangle -A PREROUTING -d 198.51.100.100/32 -p tcp -m tcp --dport 8080 -j MARK --set-mark 0x1']]])
  })
  test('several flows, each checked', () => {
    const f = check('--vip', '198.51.100.100:80', '--vip', '198.51.100.100:8080', ...hosts).report!.findings
    expect(f.map((x) => x.rule)).toEqual(['fwmark-service-unmarked'])
    expect(f[0]!.message).toMatch(/198\.51\.100\.100:8080/)
  })
  test('bad values are usage errors (exit 2)', () => {
    expect(check('--vip', '198.51.100.100', ...hosts)).toMatchObject({status: 2, stderr: expect.stringMatching(/--vip "198.51.100.100": expected IP:PORT/)})
    expect(check('--vip', '[2001:db8::1]:80', ...hosts)).toMatchObject({status: 2, stderr: expect.stringMatching(/check's rules read IPv4 services only; IPv6 is not modelled/)})
    expect(check('--client', '203.0.113.7', ...hosts)).toMatchObject({status: 2, stderr: expect.stringMatching(/--client needs --vip/)})
  })
})
