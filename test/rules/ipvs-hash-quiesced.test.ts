// ipvs-hash-quiesced: sh without sh-fallback and dh keep a weight-0 realserver's buckets and refuse the clients
// that hash to them (the IPVS lab's nat-sh-quiesced-bucket: the kernel refused such a client, and check was silent).
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {runRules} from '../../src/rules/index.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {connectionOk, editedScenario, findingsOf, loadScenario} from './helpers.js'

const RULE = 'ipvs-hash-quiesced'
const vip = parseEndpoint('192.0.2.100:443')!
const mine = findingsOf(RULE)
const withIpvs = (text: string) => editedScenario('ipvs-sh-quiesced', 'director', (f, t) => (f === 'ipvsadm-Sn.txt' ? text : t))
const ok = connectionOk

describe('ipvs-hash-quiesced', () => {
  test('sh with a weight-0 realserver: half the buckets; the clients trace refuses are about half, and -b sh-fallback serves them', async () => {
    const hosts = loadScenario('ipvs-sh-quiesced')
    const f = mine(hosts)
    expect(f.map((x) => [x.host, x.fix?.commands])).toEqual([['director', ['ipvsadm -E -t 192.0.2.100:443 -s sh -b sh-fallback']]])
    expect(f[0]!.message).toMatch(/holds 128 of its 256 buckets.*50% of client addresses/)
    const clients = Array.from({length: 40}, (_, i) => parseIp(`203.0.113.${i + 1}`)!)
    const refused = clients.filter((c) => !traceConnection(hosts, {vip, proto: 'tcp', client: c}).connection.connected)
    expect(refused.length).toBeGreaterThan(8)
    expect(refused.length).toBeLessThan(32)
    const t = traceConnection(hosts, {vip, proto: 'tcp', client: refused[0]!})
    expect(JSON.stringify(t.firstFailure)).toMatch(/no sh-fallback/)
    const fixed = await traceWithFixes(hosts, {vip, proto: 'tcp', client: refused[0]!}, f)
    expect(ok(fixed.result.connection)).toBe(true)
    expect(mine(loadScenario('ipvs-sh-quiesced-fixed'))).toEqual([])
  })

  test('the fix keeps the service options (-E sets them all anew): persistence, its netmask, sh-port, one-packet', () => {
    const f = mine(withIpvs('-A -t 192.0.2.100:443 -s sh -b sh-port -p 600 -M 255.255.255.0 -o\n-a -t 192.0.2.100:443 -r 192.0.2.11:443 -g -w 1\n-a -t 192.0.2.100:443 -r 192.0.2.12:443 -g -w 0\n'))
    expect(f[0]!.fix?.commands).toEqual(['ipvsadm -E -t 192.0.2.100:443 -s sh -b sh-fallback,sh-port -p 600 -M 255.255.255.0 -o'])
  })

  test('dh: buckets dealt one per realserver whatever the weights; no fallback, so no command', () => {
    const f = mine(withIpvs('-A -t 192.0.2.100:443 -s dh\n-a -t 192.0.2.100:443 -r 192.0.2.11:443 -g -w 5\n-a -t 192.0.2.100:443 -r 192.0.2.12:443 -g -w 0\n-a -t 192.0.2.100:443 -r 192.0.2.13:443 -g -w 5\n'))
    expect(f.map((x) => x.fix?.commands ?? [])).toEqual([[]])
    expect(f[0]!.message).toMatch(/dh \(destination hashing\).*holds 85 of its 256 buckets.*about 33%/)
    expect(f[0]!.fix?.summary).toMatch(/remove the realserver/)
  })

  test('mh: a warning (a realserver quiesced after it was added keeps its Maglev slots, one added with weight 0 has none) with -b mh-fallback; quiet with it', () => {
    const two = (sched: string, w2 = 0) => `-A -t 192.0.2.100:443 -s ${sched}\n-a -t 192.0.2.100:443 -r 192.0.2.11:443 -g -w 1\n-a -t 192.0.2.100:443 -r 192.0.2.12:443 -g -w ${w2}\n`
    const f = mine(withIpvs(two('mh -b mh-port')))
    expect(f.map((x) => [x.severity, x.fix?.commands])).toEqual([['warning', ['ipvsadm -E -t 192.0.2.100:443 -s mh -b mh-fallback,mh-port']]])
    expect(f[0]!.message).toMatch(/keeps its slots.*added with weight 0 takes no slot/)
    expect(mine(withIpvs(two('mh -b mh-fallback')))).toEqual([])
  })

  test('quiet: sh-fallback, wlc, every realserver quiesced (ipvs-no-available-realserver), all available', () => {
    const two = (sched: string, w2 = 0, w1 = 1) => `-A -t 192.0.2.100:443 -s ${sched}\n-a -t 192.0.2.100:443 -r 192.0.2.11:443 -g -w ${w1}\n-a -t 192.0.2.100:443 -r 192.0.2.12:443 -g -w ${w2}\n`
    expect(mine(withIpvs(two('sh -b sh-fallback')))).toEqual([])
    expect(mine(withIpvs(two('wlc')))).toEqual([])
    expect(mine(withIpvs(two('sh', 1)))).toEqual([])
    const all = runRules({hosts: withIpvs(two('sh', 0, 0))})
    expect(all.map((x) => x.rule)).toEqual(['ipvs-no-available-realserver'])
  })

  test('keepalived: the fix is a line of keepalived.conf, no command', () => {
    const conf = `virtual_server 192.0.2.100 443 {\n  lb_algo sh\n  lb_kind DR\n  protocol TCP\n  real_server 192.0.2.11 443 {\n    weight 1\n  }\n  real_server 192.0.2.12 443 {\n    weight 0\n  }\n}\n`
    const [d, ...rest] = loadScenario('ipvs-sh-quiesced')
    const raw = new Map([...d!.raw].filter(([k]) => k !== 'ipvsadm-Sn.txt'))
    raw.set('keepalived.conf', conf)
    const f = mine([hostFromFiles(d!.name, d!.source, raw), ...rest])
    expect(f.map((x) => x.fix?.commands ?? [])).toEqual([[]])
    expect(f[0]!.fix?.summary).toMatch(/add `sh-fallback` to the virtual_server block/)
    expect(mine([hostFromFiles(d!.name, d!.source, new Map([...raw, ['keepalived.conf', conf.replace('lb_algo sh', 'lb_algo sh\n  sh-fallback')]])), ...rest])).toEqual([])
    // before lb_algo sh, keepalived ignores sh-fallback (lbflags_handler): still refused, and said so in not-modelled
    const early = hostFromFiles(d!.name, d!.source, new Map([...raw, ['keepalived.conf', conf.replace('  lb_algo sh', '  sh-fallback\n  lb_algo sh')]]))
    expect(mine([early, ...rest]).length).toBe(1)
    expect(early.keepalived!.services[0]!.notModelled!.map((n) => n.what)).toContain('sh-fallback before lb_algo sh: keepalived applies it only after lb_algo sh and ignores it here')
  })
})
