// ipvs-idle-timeout on edited copies of its fixture (director timeout 300 s, realservers' tcp_keepalive_time 7200):
// any realserver whose keepalive clock is at or above the timeout is named; the default 900 s is not reported.
import {describe, expect, it} from 'vitest'
import {checkHosts} from '../../src/services/check.js'
import {editedScenario} from './helpers.js'

const run = (timeout: string, keepalive: Record<string, number>) => {
  let hosts = editedScenario('ipvs-idle-timeout', 'director', (f, t) => (f === 'ipvsadm-timeout.txt' ? `Timeout (tcp tcpfin udp): ${timeout}\n` : t))
  for (const [rs, v] of Object.entries(keepalive)) {
    const edit = (f: string, t: string) => (f === 'sysctl.txt' ? t.replace(/^net\.ipv4\.tcp_keepalive_time = \d+$/m, `net.ipv4.tcp_keepalive_time = ${v}`) : t)
    const edited = editedScenario('ipvs-idle-timeout', rs, edit).find((h) => h.name === rs)!
    hosts = hosts.map((h) => (h.name === rs ? edited : h))
  }
  return checkHosts(hosts, {version: '0.0.0-test'}).findings.filter((f) => f.rule === 'ipvs-idle-timeout')
}

describe('ipvs-idle-timeout', () => {
  it('names every realserver whose keepalive starts at or after the timeout, and sizes the fix from the largest', () => {
    const f = run('300 120 300', {rs1: 120, rs2: 3600})
    expect(f).toHaveLength(1)
    expect(f[0]!.message).toContain('net.ipv4.tcp_keepalive_time of idleness: 3600 s on rs2.')
    expect(f[0]!.fix?.commands).toEqual(['ipvsadm --set 3675 0 0'])
  })
  it('is quiet when every realserver keeps alive more often than the timeout', () => {
    expect(run('300 120 300', {rs1: 120, rs2: 240})).toEqual([])
  })
  it('is quiet at the kernel default (every director has it) and above', () => {
    expect(run('900 120 300', {})).toEqual([])
    expect(run('7275 120 300', {})).toEqual([])
  })
})
