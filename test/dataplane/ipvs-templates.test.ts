// Persistence templates the snapshot's ipvsadm -Lnc lists: the kernel looks them up before it schedules a new
// connection of a persistent service (ip_vs_sched_persist), and keeps a template whose destination was quiesced
// (weight 0) unless net.ipv4.vs.expire_quiescent_template=1 (ip_vs_check_template). Before, trace ignored the
// listed templates and scheduled every connection afresh among the destinations with a weight.
import {expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {IpvsDest, IpvsService} from '../../src/model/ipvs.js'
import {DEFAULT_IPVS_SETTINGS, IpvsState} from '../../src/dataplane/ipvs.js'
import {PROTO, tcpFlags, type Packet} from '../../src/dataplane/packet.js'
import {parseIpvsadmConns} from '../../src/snapshot/parsers/ipvsadm.js'
import {traceConnection} from '../../src/services/trace.js'
import {hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'

const ip = (s: string) => parseIp(s)!
const loc = {file: 'ipvsadm-Sn.txt', line: 1, text: ''}
const dest = (a: string, weight = 1, port = 80): IpvsDest => ({ip: ip(a), port, method: 'route', weight, upperThreshold: 0, lowerThreshold: 0, loc})
const svc = (dests: IpvsDest[], o: Partial<IpvsService> = {}): IpvsService => ({family: 4, proto: 'tcp', vip: ip('10.0.0.100'), port: 80, scheduler: 'rr', persistence: 60, flags: [], schedFlags: [], ops: false, dests, loc, ...o})
const syn = (client: string, o: Partial<Packet> = {}): Packet => ({family: 4, src: ip(client), dst: ip('10.0.0.100'), proto: PROTO.tcp, sport: 40000, dport: 80, flags: tcpFlags('S'), mark: 0, ...o})
const lnc = (...lines: string[]) => parseIpvsadmConns(['IPVS connection entries', 'pro expire state       source             virtual            destination', ...lines].join('\n') + '\n', 'ipvsadm-Lnc.txt')

function pick(st: IpvsState, p: Packet): string {
  const r = st.in(p, 1000)
  return r.kind === 'forward' ? `${Number(r.conn.daddr.value & 0xffn)}` : r.kind
}

test('a listed template sends the client (and its -M network) to its destination, not where the scheduler would', () => {
  const s = svc([dest('10.0.0.11'), dest('10.0.0.12')], {persistenceNetmask: 24})
  const listed = lnc('TCP 00:52  NONE        198.51.100.0:0     10.0.0.100:80      10.0.0.12:80', 'TCP 01:45  FIN_WAIT    198.51.100.10:44607 10.0.0.100:80      10.0.0.12:80')
  // rr alone starts at the head: .11
  expect(pick(new IpvsState([s]), syn('198.51.100.10'))).toBe('11')
  expect(pick(new IpvsState([s], DEFAULT_IPVS_SETTINGS, listed), syn('198.51.100.10'))).toBe('12')
  // another client of the same /24 shares the template; one outside it is scheduled
  expect(pick(new IpvsState([s], DEFAULT_IPVS_SETTINGS, listed), syn('198.51.100.77'))).toBe('12')
  expect(pick(new IpvsState([s], DEFAULT_IPVS_SETTINGS, listed), syn('198.51.101.7'))).toBe('11')
  const r = new IpvsState([s], DEFAULT_IPVS_SETTINGS, listed).in(syn('198.51.100.10'), 1000)
  expect(r.kind === 'forward' && r.assumption).toMatch(/ipvsadm -Lnc holds a persistence template for 198\.51\.100\.0 \(ipvsadm-Lnc\.txt:3, 52 s left\)/)
})

test('a quiesced (weight 0) destination keeps its templated clients; expire_quiescent_template=1 reschedules them', () => {
  const s = svc([dest('10.0.0.11'), dest('10.0.0.12', 0)])
  const listed = lnc('TCP 00:40  NONE        198.51.100.10:0    10.0.0.100:80      10.0.0.12:80')
  expect(pick(new IpvsState([s], DEFAULT_IPVS_SETTINGS, listed), syn('198.51.100.10'))).toBe('12')
  const r = new IpvsState([s], DEFAULT_IPVS_SETTINGS, listed).in(syn('198.51.100.10'), 1000)
  expect(r.kind === 'forward' && r.assumption).toMatch(/has weight 0 \(quiesced\), which does not stop a template/)
  expect(pick(new IpvsState([s], {...DEFAULT_IPVS_SETTINGS, expireQuiescentTemplate: true}, listed), syn('198.51.100.10'))).toBe('11')
  // every destination quiesced: the templated client still connects, another one is refused
  const all0 = svc([dest('10.0.0.11', 0), dest('10.0.0.12', 0)])
  expect(pick(new IpvsState([all0], DEFAULT_IPVS_SETTINGS, listed), syn('198.51.100.10'))).toBe('12')
  expect(pick(new IpvsState([all0], DEFAULT_IPVS_SETTINGS, listed), syn('198.51.100.11'))).toBe('drop')
})

test('listed templates that do not apply: a removed destination, an invalidated template (port 65535), a non-persistent service, a connection', () => {
  const s = svc([dest('10.0.0.11'), dest('10.0.0.12')])
  const use = (line: string, service = s) => pick(new IpvsState([service], DEFAULT_IPVS_SETTINGS, lnc(line)), syn('198.51.100.10'))
  expect(use('TCP 00:40  NONE        198.51.100.10:0    10.0.0.100:80      10.0.0.13:80')).toBe('11')
  expect(use('TCP 00:40  NONE        198.51.100.10:0    10.0.0.100:65535   10.0.0.12:65535')).toBe('11')
  expect(use('TCP 00:40  NONE        198.51.100.10:0    10.0.0.100:80      10.0.0.12:80', {...s, persistence: undefined})).toBe('11')
  expect(use('TCP 01:40  FIN_WAIT    198.51.100.10:40000 10.0.0.100:80     10.0.0.12:80')).toBe('11')
})

test('fwmark and port-zero templates: <IPPROTO_IP, caddr, 0, mark, 0, daddr, 0> and <proto, caddr, 0, VIP, 0, daddr, 0>', () => {
  const fw = svc([dest('10.0.0.11', 1, 0), dest('10.0.0.12', 1, 0)], {proto: 'fwmark', fwmark: 1, vip: undefined, port: undefined})
  const st = new IpvsState([fw], DEFAULT_IPVS_SETTINGS, lnc('IP  00:40  ASSURED     198.51.100.10:0    0.0.0.1:0          10.0.0.12:0'))
  expect(pick(st, syn('198.51.100.10', {mark: 1}))).toBe('12')
  // the mark's template covers every VIP the mark is set for
  expect(pick(st, syn('198.51.100.10', {mark: 1, dst: ip('10.0.0.101'), dport: 443}))).toBe('12')
  const zero = svc([dest('10.0.0.11', 1, 0), dest('10.0.0.12', 1, 0)], {port: 0})
  expect(pick(new IpvsState([zero], DEFAULT_IPVS_SETTINGS, lnc('TCP 00:40  ASSURED     198.51.100.10:0    10.0.0.100:0       10.0.0.12:0')), syn('198.51.100.10', {dport: 443}))).toBe('12')
})

test('trace: a persistent client pinned by a listed template to a quiesced realserver connects there', () => {
  const dir = new URL('../../fixtures/trace/lvs-nat/', import.meta.url).pathname
  const hosts = loadSnapshots(['director', 'rs1', 'rs2'].map((h) => dir + h)).map((h) => {
    if (h.name !== 'director') return h
    const raw = new Map(h.raw)
    raw.set('ipvsadm-Sn.txt', '-A -t 198.51.100.100:80 -s rr -p 60\n-a -t 198.51.100.100:80 -r 10.1.0.10:8080 -m -w 1\n-a -t 198.51.100.100:80 -r 10.1.0.11:8080 -m -w 0\n')
    raw.set('ipvsadm-Lnc.txt', 'IPVS connection entries\npro expire state       source             virtual            destination\nTCP 00:50  NONE        203.0.113.10:0     198.51.100.100:80  10.1.0.11:8080\n')
    return hostFromFiles(h.name, h.source, raw)
  })
  const r = traceConnection(hosts, {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp', client: ip('203.0.113.10')})
  expect(r.connection).toEqual({connected: true, reply: true, closed: true})
  expect(r.ipvs.map((c) => c.dest)).toEqual(['10.1.0.11:8080'])
  // another client is scheduled among the destinations with a weight
  const other = traceConnection(hosts, {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp', client: ip('203.0.113.20')})
  expect(other.ipvs.map((c) => c.dest)).toEqual(['10.1.0.10:8080'])
})
