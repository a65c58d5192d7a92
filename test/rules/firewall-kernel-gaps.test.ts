// check's own firewall evaluation where the kernel disagreed (src/rules/engine/firewall.ts, nft-firewall.ts):
//  - a DNAT cascade run on one nft table (its shadow ruleset) sees the marks the host's other tables set at the
//    same hook (the kernel runs every base chain of a hook in priority order, across tables; meta mark and ct
//    mark carry over): random nft scenarios rn11-15 and rn11-9 (fixtures/kernel-gaps);
//  - iptables' raw PREROUTING/OUTPUT run before conntrack: `--ctstate`/`--state` see INVALID there (UNTRACKED after
//    a NOTRACK), never NEW or ESTABLISHED (xt_conntrack.c conntrack_mt, xt_state.c state_mt: no ct attached). The
//    kernel, in two namespaces (a TCP connection to a listener, the raw rules' counters): raw PREROUTING `--ctstate
//    NEW` 0 packets, `--ctstate INVALID` and `--state INVALID` 6 of 6, after `-j NOTRACK` `--ctstate UNTRACKED`
//    5 of 5; raw OUTPUT `--ctstate ESTABLISHED` 0, `--ctstate INVALID` 4 of 4; mangle PREROUTING `--ctstate NEW` 1,
//    mangle OUTPUT `--ctstate ESTABLISHED` 4;
//  - the answers of a connection (and its later packets) are replayed with the ct mark its first packet left, not 0
//    (engine/connmark.ts): rn9-9 (fixtures/kernel-gaps), and rules reading `-m connmark` on the answers.
import {readdirSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'
import {runRules} from '../../src/rules/index.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {world} from '../../src/rules/engine/world.js'
import {backendOutcome} from '../../src/rules/engine/flows.js'
import {HostView} from '../../src/rules/engine/host.js'
import {ctView} from '../../src/rules/engine/ctmodel.js'
import {flowPacket} from '../../src/rules/engine/packets.js'
import {answerMark, requestCtMark} from '../../src/rules/engine/connmark.js'
import {sent} from '../../src/rules/engine/path.js'

const OK = {connected: true, reply: true, closed: true}
const FAILED = {connected: false, reply: false, closed: false}

function loadDir(dir: string): HostSnapshot[] {
  return loadSnapshots(readdirSync(dir, {withFileTypes: true}).filter((d) => d.isDirectory()).map((d) => `${dir}/${d.name}`))
}

/** The hosts with one host's file rewritten. */
function withFile(hosts: readonly HostSnapshot[], host: string, file: string, edit: (text: string) => string): HostSnapshot[] {
  return hosts.map((h) => {
    if (h.name !== host) return h
    const raw = new Map(h.raw)
    raw.set(file, edit(raw.get(file) ?? ''))
    return hostFromFiles(h.name, h.source, raw)
  })
}

/** nft-ruleset.json without the tables named. */
function withoutTables(hosts: readonly HostSnapshot[], host: string, names: readonly string[]): HostSnapshot[] {
  return withFile(hosts, host, 'nft-ruleset.json', (t) => {
    const j = JSON.parse(t) as {nftables: Record<string, {table?: string; name?: string}>[]}
    j.nftables = j.nftables.filter((it) => {
      const v = Object.values(it)[0]!
      const table = 'table' in it ? v.name : v.table
      return !names.includes(table ?? '')
    })
    return JSON.stringify(j)
  })
}

describe('a DNAT cascade in one nft table reads the marks of the host\'s other tables (rn11-15, rn11-9)', () => {
  const flow = {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}

  // d: inet lnf_dmark prerouting (priority mangle) `ip daddr 198.51.100.100 tcp dport 80 meta mark set 0x7`; inet
  // lnf_nat prerouting (-100) DNATs to 10.1.0.10:8080 (farm01 also sets ct mark 0x1); ip rule fwmark 0x7 -> unreachable
  const rn1115 = loadDir('fixtures/kernel-gaps/rn11-15')

  test('fires: the backend outcome carries lnf_dmark\'s mark 0x7 and lnf_nat\'s ct mark 0x1; trace agrees the marked SYN dies on the route', () => {
    const w = world({hosts: rn1115, flows: [flow]})
    const svc = w.services.find((s) => s.kind === 'dnat')!
    const b = svc.backends.find((x) => x.port === 8080)!
    expect(backendOutcome(svc, b)).toMatchObject({mark: 0x7, ctMark: 0x1})
    const t = traceConnection(rn1115, flow)
    expect(t.connection).toEqual(FAILED)
    expect(t.firstFailure).toMatchObject({host: 'd', hook: 'ROUTING'})
  })

  test('quiet: without lnf_dmark the packets are unmarked (the ct mark of lnf_nat\'s own chain stays)', () => {
    const hosts = withoutTables(rn1115, 'd', ['lnf_dmark'])
    const w = world({hosts, flows: [flow]})
    const svc = w.services.find((s) => s.kind === 'dnat')!
    expect(backendOutcome(svc, svc.backends[0]!)).toMatchObject({mark: 0, ctMark: 0x1})
    expect(traceConnection(hosts, flow).connection).toEqual(OK)
  })

  // d: ip lnf_mangle prerouting (priority mangle) marks the VIP's packets 0x10; ip lnf_nat postrouting `meta mark
  // 0x10 masquerade`: the replies come back through d. check used to read mark 0 in lnf_nat's cascade and ask for a
  // second MASQUERADE (nat-reply-bypasses-director); the kernel connected with check's other fixes (the suite ran
  // them in the namespaces: connected, reply, closed), and trace --fix agrees without that MASQUERADE.
  const rn119 = loadDir('fixtures/kernel-gaps/rn11-9')

  test('quiet: lnf_mangle\'s mark selects the masquerade, so the replies come back: no nat-reply-bypasses-director, and the other fixes repair', async () => {
    const f = runRules({hosts: rn119, flows: [flow]})
    expect(f.map((x) => x.rule)).not.toContain('nat-reply-bypasses-director')
    expect(f.map((x) => x.rule)).toContain('filter-blocks-vip')
    const r = await traceWithFixes(rn119, flow, f)
    expect(r.outcomes.filter((o) => !o.applied)).toEqual([])
    expect(r.result.connection).toEqual(OK)
  })

  test('fires: without lnf_mangle nothing masquerades the backends\' packets, and the replies bypass d', () => {
    const hosts = withoutTables(rn119, 'd', ['lnf_mangle'])
    const f = runRules({hosts, flows: [flow]})
    expect(f.find((x) => x.rule === 'nat-reply-bypasses-director')?.fix?.commands.join('\n')).toMatch(/masquerade/)
  })
})

describe('a ct mark another table sets before the nat table decides its DNAT', () => {
  // synthetic, from rn11-15's director: lnf_dmark sets the ct mark instead, and lnf_nat's vmap rule DNATs only
  // connections marked so (the kernel carries the ct mark from the mangle-priority chain to the nat chain)
  const rn1115 = loadDir('fixtures/kernel-gaps/rn11-15')
  const flow = {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
  const ctMarked = (hosts: readonly HostSnapshot[], value: number) =>
    withFile(hosts, 'd', 'nft-ruleset.json', (t) => {
      const j = JSON.parse(t) as {nftables: Record<string, Record<string, unknown>>[]}
      for (const it of j.nftables) {
        const r = it.rule as {table: string; chain: string; expr: Record<string, unknown>[]} | undefined
        if (!r) continue
        // lnf_dmark: `... ct mark set VALUE` instead of `meta mark set 0x7`
        if (r.table === 'lnf_dmark') r.expr = r.expr.map((e) => ('mangle' in e ? {mangle: {key: {ct: {key: 'mark'}}, value}} : e))
        // lnf_nat prerouting: the vmap only for connections whose ct mark is 0x5
        if (r.table === 'lnf_nat' && r.chain === 'prerouting') r.expr = [{match: {op: '==', left: {ct: {key: 'mark'}}, right: 5}}, ...r.expr]
      }
      return JSON.stringify(j)
    })

  const shares = (hosts: readonly HostSnapshot[]) =>
    world({hosts, flows: [flow]})
      .services.filter((s) => s.kind === 'dnat')
      .flatMap((s) => s.backends.map((b) => `${b.port}:${b.share}`))

  test('fires when the other table sets it: the backend takes every connection', () => {
    expect(shares(ctMarked(rn1115, 5))).toEqual(['8080:1'])
  })

  test('quiet when it sets another mark: the DNAT never applies (a backend with no share)', () => {
    expect(shares(ctMarked(rn1115, 6))).toEqual(['8080:0'])
  })
})

describe('iptables raw PREROUTING/OUTPUT see no conntrack state yet', () => {
  // a working DNAT balancer (fixtures/rules/dnat-forward-drop-fixed) with raw rules added to the director
  const DIR = 'fixtures/rules/dnat-forward-drop-fixed'
  const flow = {vip: parseEndpoint('192.0.2.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
  const withRaw = (rules: string) => withFile(loadDir(DIR), 'director', 'iptables-save.txt', (t) => `*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${rules}\nCOMMIT\n${t}`)

  test('engine: raw sees INVALID (UNTRACKED after a NOTRACK), mangle the modelled state', () => {
    // (a rule after the NOTRACK in the same raw chain is not asked about: the interpreter, src/dataplane/netfilter.ts,
    // changes the state the matches see only between tables)
    const hosts = withRaw('-A PREROUTING -p tcp --dport 80 -m conntrack --ctstate NEW -j MARK --set-mark 0x1\n-A PREROUTING -p tcp --dport 80 -m conntrack --ctstate INVALID -j MARK --set-mark 0x2\n-A PREROUTING -p tcp --dport 81 -j NOTRACK\n-A OUTPUT -p tcp --sport 80 -m state --state ESTABLISHED -j MARK --set-mark 0x4')
    const h = new HostView(hosts.find((x) => x.name === 'director')!)
    const e = {src: parseIp('203.0.113.10')!, sport: 40000, dst: parseIp('192.0.2.100')!, dport: 80, proto: 'tcp' as const}
    const pre = h.fw!.runHook('PREROUTING', flowPacket(e, 'SYN'), h.env({iif: 'eth0', ct: ctView('NEW')}), true)
    expect(pre.packet.mark).toBe(0x2)
    const pre81 = h.fw!.runHook('PREROUTING', flowPacket({...e, dport: 81}, 'SYN'), h.env({iif: 'eth0', ct: ctView('NEW')}), true)
    expect(pre81.notrack).toBe(true)
    // looped back: the packet keeps the entry it was sent with
    const lo = h.fw!.runHook('PREROUTING', flowPacket(e, 'SYN'), h.env({iif: 'lo', ct: ctView('NEW')}), true)
    expect(lo.packet.mark).toBe(0x1)
    const out = h.fw!.runHook('OUTPUT', flowPacket({src: e.dst, sport: 80, dst: e.src, dport: 40000, proto: 'tcp'}, 'SYNACK'), h.env({oif: 'eth0', ct: ctView('ESTABLISHED', 'REPLY')}), false)
    expect(out.packet.mark).toBe(0)
  })

  test('fires: `--ctstate INVALID -j DROP` in raw PREROUTING drops every packet; the fix moves it after conntrack and trace --fix connects', async () => {
    const hosts = withRaw('-A PREROUTING -m conntrack --ctstate INVALID -j DROP')
    expect(traceConnection(hosts, flow).connection).toEqual(FAILED)
    const f = runRules({hosts, flows: [flow]})
    const cmds = f.flatMap((x) => x.fix?.commands ?? [])
    expect(cmds).toContain('iptables -t raw -D PREROUTING 1')
    expect(cmds).toContain('iptables -t mangle -A PREROUTING -m conntrack --ctstate INVALID -j DROP')
    const r = await traceWithFixes(hosts, flow, f)
    expect(r.result.connection).toEqual(OK)
  })

  test('quiet: `--state NEW -j NOTRACK` in raw PREROUTING never matches, so the DNAT applies (no dnat-untracked)', () => {
    const hosts = withRaw('-A PREROUTING -m state --state NEW -j NOTRACK')
    expect(traceConnection(hosts, flow).connection).toEqual(OK)
    expect(runRules({hosts, flows: [flow]}).map((x) => x.rule)).toEqual([])
  })

  test('quiet: `--ctstate INVALID -j DROP` in mangle PREROUTING (after conntrack) drops nothing of the connection', () => {
    const hosts = withFile(loadDir(DIR), 'director', 'iptables-save.txt', (t) => `*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n${t}`)
    expect(traceConnection(hosts, flow).connection).toEqual(OK)
    expect(runRules({hosts, flows: [flow]}).map((x) => x.rule)).toEqual([])
  })
})

describe('the answers of a connection carry the ct mark its first packet left (engine/connmark.ts)', () => {
  // rn9-9's realserver r: inet lnf_rt prerouting (mangle) `iifname "lnf-r0" ct mark set 0x1`, output (type route)
  // `meta mark set ct mark`, `ip rule fwmark 0x1 lookup 101` with an unreachable default: the kernel dropped r's
  // SYN/ACK on the route (trace agrees); replayed with ct mark 0, the answer looked unmarked
  const rn99 = loadDir('fixtures/kernel-gaps/rn9-9')
  const flow = {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
  const r = new HostView(rn99.find((h) => h.name === 'r')!)
  const request = {src: parseIp('203.0.113.10')!, sport: 40000, dst: parseIp('10.1.0.10')!, dport: 8080, proto: 'tcp' as const}
  const answer = {src: request.dst, sport: 8080, dst: request.src, dport: 40000, proto: 'tcp' as const}

  test('fires: a request arriving on lnf-r0 leaves ct mark 0x1; the answer replayed with it is marked 0x1 and routed to the unreachable table', () => {
    const ctMark = requestCtMark(r, request, {local: true})
    expect(ctMark).toBe(0x1)
    const out = sent(r, flowPacket(answer, 'SYNACK'), {state: 'ESTABLISHED', dir: 'REPLY', ctMark})
    const mark = out.hooks.find((x) => x.hook === 'OUTPUT')!.packet.mark
    expect(mark).toBe(0x1)
    expect(r.route({dst: answer.dst, src: answer.src, mark})?.kind).toBe('unreachable')
    expect(traceConnection(rn99, flow).firstFailure).toMatchObject({host: 'r', hook: 'ROUTING'})
  })

  test('answerMark: the answer is routed with mark 0x1 (a route chain rerouted it); a filter chain\'s mark reroutes nothing', () => {
    expect(answerMark(r, answer)).toBe(0x1)
    const filterType = withFile(rn99, 'r', 'nft-ruleset.json', (t) => t.replace('"type": "route"', '"type": "filter"').replace('"type":"route"', '"type":"filter"'))
    const r2 = new HostView(filterType.find((h) => h.name === 'r')!)
    expect(r2.snap.nft!.tables.find((x) => x.name === 'lnf_rt')!.chains.get('output')!.base!.type).toBe('filter')
    expect(answerMark(r2, answer)).toBe(0)
    // a request from elsewhere leaves no ct mark: its answer is unmarked
    expect(answerMark(r, answer, {iif: 'lo'})).toBe(0)
  })

  test('quiet: a request arriving elsewhere is not marked, nor its answer', () => {
    expect(requestCtMark(r, request, {iif: 'lo', local: true})).toBe(0)
    const out = sent(r, flowPacket(answer, 'SYNACK'), {state: 'ESTABLISHED', dir: 'REPLY', ctMark: 0})
    expect(out.hooks.find((x) => x.hook === 'OUTPUT')!.packet.mark).toBe(0)
  })

  // a working DNAT balancer (fixtures/rules/dnat-forward-drop-fixed); the kernel, in two namespaces: a server whose
  // mangle PREROUTING sets `CONNMARK --set-xmark 0x1` on new connections from its interface and whose OUTPUT (policy
  // DROP) accepts `-m connmark --mark 0x1` answered (5 packets by that rule); with 0x2 instead it never answered
  const DIR = 'fixtures/rules/dnat-forward-drop-fixed'
  const dflow = {vip: parseEndpoint('192.0.2.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
  const rsConnmark = (v: string) =>
    withFile(loadDir(DIR), 'rs1', 'iptables-save.txt', () => `*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -i ldr-eth0 -m conntrack --ctstate NEW -j CONNMARK --set-xmark ${v}/0xffffffff\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT\n-A OUTPUT -m connmark --mark 0x1 -j ACCEPT\nCOMMIT\n`)

  test('realserver-filter-blocks-service quiet: the realserver\'s OUTPUT accepts the connections it marked 0x1', () => {
    const hosts = rsConnmark('0x1')
    expect(traceConnection(hosts, dflow).connection).toEqual(OK)
    expect(runRules({hosts, flows: [dflow]}).map((x) => x.rule)).toEqual([])
  })

  test('realserver-filter-blocks-service fires: marked 0x2, the answers meet the DROP policy; its fix connects', async () => {
    const hosts = rsConnmark('0x2')
    expect(traceConnection(hosts, dflow).connection).toEqual(FAILED)
    const f = runRules({hosts, flows: [dflow]})
    expect(f.map((x) => `${x.rule}@${x.host}`)).toEqual(['realserver-filter-blocks-service@rs1'])
    expect((await traceWithFixes(hosts, dflow, f)).result.connection).toEqual(OK)
  })

  // the balancer: mangle PREROUTING marks the VIP's new connections, FORWARD (policy DROP) accepts the requests to the
  // backend and the replies by `-m connmark --mark 0x1` (conntrack keeps the entry's mark for the reply direction)
  const dConnmark = (v: string) =>
    withFile(loadDir(DIR), 'director', 'iptables-save.txt', (t) => `*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate NEW -j CONNMARK --set-xmark ${v}/0xffffffff\nCOMMIT\n${t.replace('-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT', '-A FORWARD -m connmark --mark 0x1 -j ACCEPT')}`)

  test('forward-drops-nat-replies quiet: FORWARD accepts the replies of the connections marked 0x1', () => {
    const hosts = dConnmark('0x1')
    expect(traceConnection(hosts, dflow).connection).toEqual(OK)
    expect(runRules({hosts, flows: [dflow]}).map((x) => x.rule)).toEqual([])
  })

  test('forward-drops-nat-replies fires: marked 0x2, the replies meet the DROP policy; its fix connects', async () => {
    const hosts = dConnmark('0x2')
    expect(traceConnection(hosts, dflow).connection).toEqual(FAILED)
    const f = runRules({hosts, flows: [dflow]})
    expect(f.map((x) => `${x.rule}@${x.host}`)).toEqual(['forward-drops-nat-replies@director'])
    expect((await traceWithFixes(hosts, dflow, f)).result.connection).toEqual(OK)
  })
})

describe('a routed VIP the forwarding host masquerades reaches the realserver from that host\'s address (rn10-16)', () => {
  // d routes 198.51.100.100 to r and masquerades what leaves by lnf-d1 (ip lnf_nat postrouting `oifname "lnf-d1"
  // masquerade`); r's input accepts `ip saddr 203.0.113.10 tcp dport 80` and rejects the rest: the requests come from
  // 10.1.0.1. check judged r's filter with the client's address and said nothing about r; the kernel, with check's
  // other fixes, stayed unconnected (trace --fix: r rejects them)
  const flow = {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
  const rn1016 = loadDir('fixtures/kernel-gaps/rn10-16')

  test('fires: r\'s filter is judged with d\'s masquerade address, and the fixes together connect', async () => {
    const f = runRules({hosts: rn1016, flows: [flow]})
    const rs = f.find((x) => x.rule === 'realserver-filter-blocks-service')
    expect(rs?.host).toBe('r')
    expect(rs?.message).toMatch(/from d's address 10\.1\.0\.1:40000 \(.*masquerade/)
    const r = await traceWithFixes(rn1016, flow, f)
    expect(r.outcomes.filter((o) => !o.applied)).toEqual([])
    expect(r.result.connection).toEqual(OK)
  })

  test('quiet: without the masquerade r sees the client and accepts it', () => {
    const hosts = withFile(rn1016, 'd', 'nft-ruleset.json', (t) => {
      const j = JSON.parse(t) as {nftables: Record<string, {table?: string; chain?: string}>[]}
      j.nftables = j.nftables.filter((it) => !(it.rule && it.rule.table === 'lnf_nat' && it.rule.chain === 'postrouting'))
      return JSON.stringify(j)
    })
    expect(runRules({hosts, flows: [flow]}).map((x) => `${x.rule}@${x.host}`)).not.toContain('realserver-filter-blocks-service@r')
  })
})

describe('chains before conntrack at OUTPUT: IPVS-sent packets keep their entry', () => {
  // an nft chain at output priority raw with `ct state invalid drop`; a host's own packet has no entry there yet
  // (invalid: dropped), a packet IPVS transmits through LOCAL_OUT carries its entry (ip_vs_send_or_cont)
  const json = JSON.stringify({nftables: [
    {metainfo: {json_schema_version: 1}},
    {table: {family: 'inet', name: 't', handle: 1}},
    {chain: {family: 'inet', table: 't', name: 'out', handle: 2, type: 'filter', hook: 'output', prio: -300, policy: 'accept'}},
    {rule: {family: 'inet', table: 't', chain: 'out', handle: 3, expr: [{match: {op: 'in', left: {ct: {key: 'state'}}, right: 'invalid'}}, {drop: null}]}},
  ]})
  const h = new HostView(hostFromFiles('d', 'test:d', new Map([['manifest.json', JSON.stringify({format: 'lvsdoctor-snapshot/1', host: 'd', role: 'director'})], ['nft-ruleset.json', json]])))
  const e = {src: parseIp('203.0.113.10')!, sport: 40000, dst: parseIp('10.1.0.10')!, dport: 80, proto: 'tcp' as const}
  const ipvs = {vaddr: parseIp('198.51.100.100')!, vport: 80, vproto: 6, method: 'GATE' as const, dir: 'ORIGINAL' as const}

  test('fires: the host\'s own packet is invalid there and dropped', () => {
    expect(h.fw!.runHook('OUTPUT', flowPacket(e, 'ACK'), h.env({oif: 'eth0', ct: ctView('ESTABLISHED')}), false).verdict).toBe('DROP')
  })

  test('quiet: IPVS\'s transmitted packet keeps its ESTABLISHED entry', () => {
    expect(h.fw!.runHook('OUTPUT', flowPacket(e, 'ACK'), h.env({oif: 'eth0', ct: ctView('ESTABLISHED'), ipvs}), false).verdict).toBe('ACCEPT')
  })
})

describe('a raw NOTRACK of a DNAT backend\'s replies: they are never un-DNATed (udp41-6, dnat-untracked)', () => {
  // d DNATs 198.51.100.100:53 to 10.1.0.10:5353 and `-t raw -A PREROUTING -s 10.1.0.10/32 -p udp --sport 5353 -j
  // NOTRACK`: the replies come back through d untracked, keep 10.1.0.10:5353 as their source, and the client drops
  // them. check was silent (the requests are tracked and translated)
  const flow = {vip: parseEndpoint('198.51.100.100:53')!, proto: 'udp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
  const udp416 = loadDir('fixtures/kernel-gaps/udp41-6')

  test('fires: the NOTRACK of the replies is named and deleted, and trace --fix gets the answer', async () => {
    expect(traceConnection(udp416, flow).connection.reply).toBe(false)
    const f = runRules({hosts: udp416, flows: [flow]})
    const d = f.find((x) => x.rule === 'dnat-untracked')
    expect(d?.message).toMatch(/takes the replies of UDP 198\.51\.100\.100:53 .* out of connection tracking/)
    expect(d?.fix?.commands).toEqual(['iptables -t raw -D PREROUTING 1'])
    expect((await traceWithFixes(udp416, flow, f)).result.connection).toEqual(OK)
  })

  test('quiet: a NOTRACK of another source leaves the replies tracked', () => {
    const hosts = withFile(udp416, 'd', 'iptables-save.txt', (t) => t.replace('-A PREROUTING -s 10.1.0.10/32', '-A PREROUTING -s 10.1.0.99/32'))
    expect(traceConnection(hosts, flow).connection).toEqual(OK)
    expect(runRules({hosts, flows: [flow]}).map((x) => x.rule)).toEqual([])
  })
})
