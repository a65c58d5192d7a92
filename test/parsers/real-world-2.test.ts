// Real-world inputs of the second hunt (fixtures/real-world/README.md names each source): what iptables-nft-save
// says about rules it does not print, and the human-readable outputs people paste instead of the ones lvsdoctor reads.
import {readFileSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseIptablesSave} from '../../src/snapshot/parsers/iptables-save.js'
import {parseNftJson} from '../../src/snapshot/parsers/nft-json.js'
import {parseIpAddr, parseIpRoute, parseIpRule} from '../../src/snapshot/parsers/ip-json.js'
import {detectFileType, formatHint, hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'
import {UsageError} from '../../src/model/source.js'
import {checkHosts} from '../../src/services/check.js'
import {connectionOk, traceConnection, traceToJson} from '../../src/services/trace.js'
import {traceOptions} from '../../src/services/trace-command.js'
import {formatNftExpr} from '../../src/model/nft.js'
import {fixtureReader} from './helpers.js'

const F = 'fixtures/real-world/'
const read = fixtureReader(F)

describe('iptables-nft-save: the rules it does not print are said, not silently missing', () => {
  test('the legacy-tables warning at the end of an xtables-save v1.8.2 dump (Debian 10) is listed', () => {
    const r = parseIptablesSave(read('iptables/devsec-274-debian10-xtables-save.iptables-save'), 'iptables-save.txt', 4)
    expect(r.legacyTablesPresent).toBe(true)
    expect(r.notModelled.map((n) => `${n.line} ${n.what}`)).toEqual([
      expect.stringMatching(/^8 iptables-legacy tables are present on this host and are not in this dump .*iptables-legacy-save.txt/),
    ])
  })

  test('`iptables-nft-save > f 2>&1`: the warning cut into a rule (stdout buffered) is taken out and the rule read whole', () => {
    const text = read('iptables/iptables-nft-save-2to1-legacy-warning.txt')
    expect(text.split('\n')[123]).toMatch(/--dport 1011# Warning: iptables-legacy tables present/)
    const r = parseIptablesSave(text, 'iptables-save.txt', 4)
    const input = r.tables.get('filter')!.chains.get('INPUT')!.rules
    expect(input).toHaveLength(120)
    const cut = input[118]!
    expect(cut.loc.line).toBe(124)
    expect(cut.matches).toContainEqual(expect.objectContaining({kind: 'port', dir: 'dst', ranges: [[10119, 10119]]}))
    expect(cut.loc.text).toBe('-A INPUT -p tcp -m comment --comment "kubernetes health check port 119" -m tcp --dport 10119 -j ACCEPT')
    // the lines after it keep their numbers
    expect(input[119]!.loc.line).toBe(126)
    expect(r.notModelled.map((n) => `${n.line} ${n.what}`)).toEqual([expect.stringMatching(/^125 iptables-legacy tables are present /)])
  })

  test('the warning is not listed when iptables-legacy-save.txt is beside', () => {
    const files = new Map([
      ['iptables-save.txt', read('iptables/devsec-274-debian10-xtables-save.iptables-save')],
      ['iptables-legacy-save.txt', '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n'],
    ])
    expect(loadFrom(files).notModelled).toEqual([])
  })

  test('a table iptables-nft-save calls incompatible is listed; beside nft -j, the JSON is where its rules are read', () => {
    const alone = parseIptablesSave(read('iptables/incompatible-nat/iptables-save.txt'), 'iptables-save.txt', 4)
    expect(alone.incompatibleTables).toEqual(['nat'])
    expect(alone.tables.has('nat')).toBe(false)
    expect(alone.notModelled.map((n) => `${n.line} ${n.what}`)).toEqual([
      expect.stringMatching(/^10 table nat: iptables-nft-save could not print it .*nft -j list ruleset/),
    ])
    const [h] = loadSnapshots([F + 'iptables/incompatible-nat'])
    expect(h!.errors).toEqual([])
    const nat = h!.nft!.tables.find((t) => t.family === 'ip' && t.name === 'nat')!
    // it was taken for iptables-nft's (evaluated from iptables-save, where it is not): the numgen DNAT was lost
    expect(nat.xtables).toBe(false)
    const dnat = nat.chains.get('PREROUTING')!.rules.find((r) => r.stmts.some((s) => s.kind === 'nat' && s.type === 'dnat' && r.loc.text.includes('numgen')))
    expect(dnat).toBeDefined()
    const filter = h!.nft!.tables.find((t) => t.family === 'ip' && t.name === 'filter')!
    expect(filter.xtables).toBe(true)
    // the iptables note is answered by the JSON; the JSON says which of the table's rules it cannot show
    const what = h!.notModelled.map((n) => n.what)
    expect(what.some((w) => w.startsWith('table nat: iptables-nft-save could not print it'))).toBe(false)
    expect(what).toContainEqual(expect.stringMatching(/^nft table ip nat: 2 rules made by iptables-nft hold xt expressions \(DNAT, MASQUERADE\).*iptables-nft-save could not print the table/))
    expect(h!.nft!.fullyAnalysable).toBe(false)
  })
})

/** a snapshot directory held in memory: the loader of a directory */
function loadFrom(files: Map<string, string>) {
  return hostFromFiles('h', 'mem', files)
}

describe('the human-readable forms people paste: the error says what to run instead', () => {
  test.each([
    ['nft list ruleset (kube-proxy nftables mode)', 'nft/kube-proxy-nft-overall.nft', 'nft -j list ruleset', 'nft-ruleset.json'],
    ['iptables -t nat -S (flannel)', 'iptables/k8s-flannel-nat-S.txt', 'iptables-save', 'iptables-save.txt'],
    ['iptables -nvL -t nat (moby#30233)', 'iptables/moby-30233-nat-nvL.txt', 'iptables-save', 'iptables-save.txt'],
    ['conntrack -E (weaveworks/scope)', 'conntrack/weave-scope-conntrack-E.txt', 'conntrack -L', 'conntrack.txt'],
  ])('%s', (_name, file, run, snapshotFile) => {
    const hint = formatHint(read(file))
    expect(hint).toMatchObject({run, file: snapshotFile})
    expect(() => loadSnapshots([F + file])).toThrow(UsageError)
    expect(() => loadSnapshots([F + file])).toThrow(new RegExp(`lvsdoctor reads the output of \`${run}\``))
  })

  test('in a snapshot directory, the file of the wrong form names the command to run', () => {
    const h = loadFrom(
      new Map([
        ['nft-ruleset.json', read('nft/kube-proxy-nft-overall.nft')],
        ['iptables-save.txt', read('iptables/k8s-flannel-nat-S.txt')],
      ]),
    )
    expect(h.errors.map((e) => `${e.file}:${e.line} ${e.expected}`)).toEqual([
      expect.stringMatching(/^iptables-save.txt:1 the output of `iptables-save` \(this is the output of `iptables -S`/),
      expect.stringMatching(/^nft-ruleset.json:1 the output of `nft -j list ruleset` \(this is the text of `nft list ruleset`/),
    ])
  })

  test('what lvsdoctor reads gets no hint (ip -j, iptables-save, nft -j)', () => {
    for (const f of ['ip/ip-route.json', 'ip/ip-rule.json', 'iptables/incompatible-nat/iptables-save.txt', 'iptables/incompatible-nat/nft-ruleset.json']) {
      expect(formatHint(readFileSync(F + f, 'utf8'))).toBeUndefined()
    }
  })
})

describe('rewrites the trace does not make are listed', () => {
  test('-j CT --zone (the Proxmox VE admin guide\'s masquerading setup): conntrack zones are not modelled', () => {
    const r = parseIptablesSave(read('iptables/pve-network-nat-ct-zone.iptables-save'), 'iptables-save.txt', 4)
    expect(r.notModelled.map((n) => `${n.line} ${n.what}`)).toEqual(['5 -j CT --zone 1: conntrack zones are not modelled (every entry is taken as zone 0\'s)'])
    // the other CT options stay as they were: --notrack modelled, --helper kept quietly
    const other = parseIptablesSave('*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp\n-A PREROUTING -p udp -j CT --notrack\nCOMMIT\n', 'f', 4)
    expect(other.notModelled).toEqual([])
  })

  test('nft: a mangle of anything but meta mark / ct mark (nftlb stateless DNAT: ip daddr set numgen ... map, ether daddr set) is listed', () => {
    const r = parseNftJson(read('nft/nftlb-016_stlsdnat_ipv4_tcp_weighted_rr.json'), 'nft-ruleset.json')
    const what = r.notModelled.map((n) => n.what)
    expect(what).toContainEqual(expect.stringMatching(/^nft netdev nftlb lb01 handle \d+: ip daddr set numgen random mod 7 map \{ 0-1 : 192\.168\.0\.10, .*rewriting ip daddr is not modelled/))
    expect(what).toContainEqual(expect.stringMatching(/^nft netdev nftlb lb01-back handle \d+: ip saddr set 192\.168\.56\.101: rewriting ip saddr is not modelled/))
    expect(what.filter((w) => w.includes('ether daddr set'))).toHaveLength(2)
    // a mark is rewritten by the trace: not listed (kube-proxy's mark set mark or 0x4000, nftlb's ct mark set)
    const kp = parseNftJson(read('nft/kube-proxy-nft-overall.json'), 'nft-ruleset.json')
    expect(kp.notModelled).toEqual([])
    const lb = parseNftJson(read('nft/nftlb-001_snat_ipv4_tcp_weight.json'), 'nft-ruleset.json')
    expect(lb.notModelled.some((n) => n.what.includes('rewriting'))).toBe(false)
  })
})

describe('rules nft added to a table of iptables-nft: iptables-nft-save prints them without what iptables cannot express', () => {
  // iptables-nft-save v1.8.9 printed `ip saddr { 198.51.100.7, 198.51.100.9 } drop` as `-A FORWARD -j DROP`
  test('the printed rule is marked unsure and both texts are named; the DNAT is no longer an ERROR', () => {
    const dir = F + 'iptables/nft-set-in-iptables-table'
    expect(read('iptables/nft-set-in-iptables-table/iptables-save.txt').split('\n')[5]).toBe('-A FORWARD -j DROP')
    const [h] = loadSnapshots([dir])
    expect(h!.errors).toEqual([])
    const rule = h!.iptables!.tables.get('filter')!.chains.get('FORWARD')!.rules[0]!
    expect(rule.loc.line).toBe(6)
    expect(rule.matches).toEqual([{kind: 'unknown', module: 'nft', args: ['ip saddr { 198.51.100.7, 198.51.100.9 } drop']}])
    expect(h!.notModelled.map((n) => `${n.file}:${n.line} ${n.what}`)).toEqual([
      expect.stringMatching(/^iptables-save.txt:6 -A FORWARD -j DROP: this is how iptables-nft-save printed nft's `ip saddr \{ 198.51.100.7, 198.51.100.9 \} drop` \(nft ip filter FORWARD handle \d+\), leaving out .*an anonymous set/),
    ])
    const report = checkHosts(loadSnapshots([dir]), {version: 'test'})
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([])
  })

  test('a table with no xt expression of iptables-nft is read from the JSON instead (kube-proxy-like native rules)', () => {
    const files = new Map([
      ['iptables-save.txt', read('iptables/nft-set-in-iptables-table/iptables-save.txt')],
      // the same JSON without its two xt rules: every rule of the tables is native nft
      ['nft-ruleset.json', JSON.stringify({nftables: (JSON.parse(read('iptables/nft-set-in-iptables-table/nft-ruleset.json')) as {nftables: {rule?: {expr: {xt?: unknown}[]}}[]}).nftables.filter((e) => !e.rule || !e.rule.expr.some((x) => x.xt))})],
    ])
    const h = loadFrom(files)
    const filter = h.nft!.tables.find((t) => t.family === 'ip' && t.name === 'filter')!
    expect(filter.xtables).toBe(false)
    expect(h.notModelled.map((n) => n.what)).toEqual([expect.stringMatching(/^nft table ip filter: 1 rule added with nft holds what iptables cannot express \(FORWARD handle \d+ \(an anonymous set\)\).*read from this JSON/)])
  })
})

describe('ip -j of iproute2 4.17 to 5.0 (Debian 10, Ubuntu 18.10/19.04): its JSON quirks are read as iproute2 meant them', () => {
  test('a route type printed with no key ({"broadcast","dst":...}, iproute2#37) is the route\'s type', () => {
    const routes = parseIpRoute(read('ip/iproute2-issue-37-route-table-local.json'), 'ip-route.json')
    expect(routes.map((r) => `${r.type} ${r.dst.len} ${r.dev}`)).toEqual(['broadcast 32 lo', 'local 8 lo', 'local 32 lo', 'broadcast 32 lo'])
    expect(routes.every((r) => (r.notModelled ?? []).length === 0)).toBe(true)
  })

  test('"to_tbl" (the name of a rule\'s non-table action until f5f8e969) is its action', () => {
    const [r] = parseIpRule(read('ip/iproute2-f5f8e969-rule-to_tbl.json'), 'ip-rule.json')
    expect(r).toMatchObject({priority: 0, action: 'blackhole'})
    expect(r!.notModelled ?? []).toEqual([])
  })

  test('an empty object before the interfaces (iproute2 4.20 ip -j addr) is skipped', () => {
    const ifs = parseIpAddr(read('ip/iproute2-4.20-addr-empty-first.json'), 'ip-addr.json')
    expect(ifs.map((i) => i.name)).toEqual(['lo'])
  })
})

describe('nft map elements with counters (a map declared with `counter`)', () => {
  // moby's nftables load-balancer prototype: `map nat-service-vip { typeof ip daddr . numgen random mod 1024 : ip daddr; counter; flags interval }`
  test('each element is read with its key and value; the counters and the set\'s counter statement are not listed', () => {
    const r = parseNftJson(read('open/moby-nftlb-lb-sbox/nft-ruleset.json'), 'nft-ruleset.json')
    const m = r.tables.find((t) => t.family === 'ip' && t.name === 'moby-lb-nat')!.sets.get('nat-service-vip')!
    expect(m.elements.map((e) => `${formatNftExpr(e.key)} : ${formatNftExpr(e.value!)}`)).toEqual([
      '10.255.0.10 . 0-341 : 10.255.0.11',
      '10.255.0.10 . 342-682 : 10.255.0.12',
      '10.255.0.10 . 683-1023 : 10.255.0.13',
    ])
    const what = r.notModelled.map((n) => n.what)
    expect(what.filter((w) => w.includes('moby-lb-nat'))).toEqual([])
    expect(what.some((w) => w.includes('"elem" expression') || w.includes('set statements'))).toBe(false)
  })
})

describe('a rules file shared by iptables-restore and ip6tables-restore (-4/-6 on the rules of one family)', () => {
  // iptables(8): a rule with -6 given to iptables-restore (-4 to ip6tables-restore) is silently ignored; the
  // .after-* fixtures are what iptables-save / ip6tables-save printed after restoring the file (iptables 1.8.9)
  const shape = (r: ReturnType<typeof parseIptablesSave>) =>
    [...r.tables.values()].map((t) => [...t.chains.values()].map((c) => `${t.name}/${c.name}: ${c.rules.map((x) => JSON.stringify([x.matches, x.target], (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).join(' ')}`)).flat().sort()

  test.each([
    [4, 'iptables/shared-46.after-iptables-restore.iptables-save'],
    [6, 'iptables/shared-46.after-ip6tables-restore.ip6tables-save'],
  ] as const)('read as IPv%s it holds what the restore kept', (family, after) => {
    const shared = parseIptablesSave(read('iptables/shared-46.rules'), 'f', family)
    const kept = parseIptablesSave(read(after), 'f', family)
    expect(shared.ruleCount).toBe(kept.ruleCount)
    expect(shape(shared)).toEqual(shape(kept))
    expect(shared.notModelled.map((n) => n.what)).toEqual(
      Array(family === 4 ? 4 : 3).fill(`${family === 4 ? '-6' : '-4'}: iptables-restore leaves out a rule for the other address family (iptables(8) -4/-6: ignored, not an error), so it is not in the ruleset`),
    )
  })

  test('as a bare file it is IPv4 (its IPv6-only rules carry -6), and the DNAT is not reported blocked', () => {
    expect(detectFileType(Buffer.from(read('iptables/shared-46.rules')))).toBe('iptables-save.txt')
    const report = checkHosts(loadSnapshots([F + 'iptables/shared-46.rules']), {version: 'test'})
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([])
  })
})

describe('iptables 1.8.8+: "# Table `filter\' contains incompatible base-chains" (a base chain added with nft to an iptables-nft table)', () => {
  // iptables-nft-save v1.8.9 printed the table without the nft chain `lrw2-blocklist` (hook forward, priority -10:
  // ip saddr 198.51.100.0/24 drop); the JSON has it, in a table otherwise evaluated from iptables-save
  const dir = F + 'iptables/tainted-filter'

  test('alone, the dump says its base chains are missing', () => {
    const r = parseIptablesSave(read('iptables/tainted-filter/iptables-save.txt'), 'iptables-save.txt', 4)
    expect(r.taintedTables).toEqual(['filter'])
    expect(r.notModelled.map((n) => `${n.line} ${n.what}`)).toEqual([expect.stringMatching(/^1 table filter: iptables-nft-save left out base chains of it/)])
  })

  test('beside nft -j, the nft base chain is evaluated from the JSON and the rest from iptables-save', () => {
    const [h] = loadSnapshots([dir])
    expect(h!.errors).toEqual([])
    expect(h!.notModelled).toEqual([])
    const filters = h!.nft!.tables.filter((t) => t.family === 'ip' && t.name === 'filter')
    expect(filters.map((t) => `${t.xtables} ${[...t.chains.keys()].join(',')}`)).toEqual(['true FORWARD,lrw2-blocklist', 'false lrw2-blocklist'])
    expect(h!.nft!.ruleCount - h!.nft!.xtRules).toBe(1)
    const flow = traceOptions('192.0.2.10:80', 'tcp', '198.51.100.7')
    const blocked = traceConnection(loadSnapshots([dir]), flow)
    expect(connectionOk(blocked)).toBe(false)
    const ok = traceConnection(loadSnapshots([dir]), traceOptions('192.0.2.10:80', 'tcp', '203.0.113.9'))
    expect(connectionOk(ok)).toBe(true)
  })
})

describe('ip -j link show given for ip -j addr show', () => {
  test('is refused with what it is: read as ip -j addr, the host had no address (a false vip-not-local ERROR)', () => {
    const text = read('ip/ip-j-link-show.json')
    expect(detectFileType(Buffer.from(text))).toBe('ip-addr.json')
    expect(() => parseIpAddr(text, 'ip-addr.json')).toThrow(/ip-addr.json:1: expected the output of `ip -j addr show` \(each interface with its "addr_info"\), found "interfaces without \\"addr_info\\" \(`ip -j link show` lists no address\)"/)
    const h = loadFrom(new Map([['ip-addr.json', text], ['ipvsadm-Sn.txt', '-A -t 192.0.2.80:80 -s rr\n-a -t 192.0.2.80:80 -r 10.9.0.11:80 -g -w 1\n']]))
    expect(h.interfaces).toBeUndefined()
    const report = checkHosts([h], {version: 'test'})
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([])
  })

  test('an interface with no address still has "addr_info": [] in ip -j addr (iproute2 6.1)', () => {
    expect(parseIpAddr(read('ip/ip-j-link-show.json').replace('"ifname":"lo",', '"ifname":"lo","addr_info":[],'), 'ip-addr.json').length).toBeGreaterThan(0)
  })
})

describe('ip -j route show (the main table) given for ip -j route show table all', () => {
  // a REDIRECT of 192.0.2.10:80 to the host's own port 8080; ip-route.json is `ip -j route show` of iproute2 6.1
  const dir = F + 'ip/main-table-only'

  test('the local routes of ip-addr.json are taken (the kernel keeps one per address) and the gap is said', () => {
    const [h] = loadSnapshots([dir])
    expect(h!.notModelled.map((n) => `${n.file}:${n.line} ${n.what}`)).toEqual([
      'ip-route.json:1 ip-route.json holds the main table only (`ip -j route show`, not `ip -j route show table all`): the local routes the kernel keeps for the addresses of ip-addr.json are assumed (3)',
    ])
    expect(h!.routes!.filter((r) => r.table === 'local').map((r) => r.loc.text)).toEqual([
      'local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1 (from ip-addr.json)',
      'local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1 (from ip-addr.json)',
      'local 192.0.2.10 dev lrw2-e0 table local proto kernel scope host src 192.0.2.10 (from ip-addr.json)',
    ])
  })

  test('a packet to the host\'s own address is delivered locally, not forwarded (it was dropped by FORWARD policy DROP)', () => {
    const r = traceToJson(traceConnection(loadSnapshots([dir]), traceOptions('192.0.2.10:80', 'tcp', '203.0.113.9'))) as {packets: {steps: {hook: string}[]}[]}
    const hooks = r.packets[0]!.steps.map((s) => s.hook)
    expect(hooks).toContain('INPUT')
    expect(hooks).not.toContain('FORWARD')
  })

  test('a table all dump is left as it is', () => {
    const [h] = loadSnapshots([F + 'iptables/tainted-filter'])
    expect(h!.notModelled).toEqual([])
    expect(h!.routes!.every((r) => !r.loc.text.endsWith('(from ip-addr.json)'))).toBe(true)
  })
})
