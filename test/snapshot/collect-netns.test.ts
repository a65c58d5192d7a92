// `lvsdoctor snapshot` run for real inside a network namespace: the snapshot parses to exactly the rules,
// routes, addresses and sysctls the namespace has; every kind of gap (program missing, IPVS absent, not root);
// a directory and a .tar.gz check the same; and how long it takes.
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {spawnSync} from 'node:child_process'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {formatIp, formatPrefix} from '../../src/model/ip.js'
import type {IptablesRuleset} from '../../src/model/iptables.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {cli, deleteNamespace, inNs, kernelSkipReason, makeNamespace, ROOT, SYSCTLS, which} from './collect-netns-setup.js'

const skip = kernelSkipReason()
if (skip) console.warn(`skipping the snapshot netns tests: ${skip}`)
const ipvsModule = skip === undefined && spawnSync('modinfo', ['ip_vs']).status === 0
if (ipvsModule) console.warn('skipping the real-ipvsadm gap test: ip_vs exists as a module here, and ipvsadm would load it')

/** a prefix with its length always (formatPrefix leaves /32 and /128 out) */
const pfx = (p: Parameters<typeof formatPrefix>[0]) => `${formatIp(p)}/${p.len}`

/** `table chain index: line` for every rule, as iptables-save printed it. */
function rulesOf(rs: IptablesRuleset | undefined): string[] {
  if (!rs) return []
  return [...rs.tables.values()].flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules.map((r) => `${t.name} ${c.name} ${r.index}: ${r.loc.text}`))).sort()
}

describe.skipIf(skip !== undefined)('snapshot in a network namespace', () => {
  let ns = ''
  let work = ''
  let dir = ''
  let host: HostSnapshot
  let snapMs = 0
  let collectMs = 0

  beforeAll(() => {
    ns = makeNamespace('c')
    work = mkdtempSync(join(tmpdir(), 'lds-snapns-'))
    dir = join(work, 'snap')
    const r = cli(ns, ['snapshot', '-o', dir, '--name', 'lds-d', '--role', 'director', '--json'])
    if (r.status !== 0) throw new Error(`snapshot failed (${r.status}): ${r.stderr}`)
    snapMs = r.ms
    collectMs = JSON.parse(r.stdout).durationMs
    host = loadSnapshots([dir])[0]!
  }, 60_000)

  afterAll(() => {
    if (ns) deleteNamespace(ns)
    if (work) rmSync(work, {recursive: true, force: true})
  })

  test('the files of the format, a manifest with every command, the name and role given', () => {
    expect(readdirSync(dir).sort()).toEqual(
      ['conntrack.txt', 'ip-addr.json', 'ip-route.json', 'ip-rule.json', 'ip6tables-save.txt', 'iptables-legacy-save.txt', 'iptables-save.txt', 'manifest.json', 'nft-ruleset.json', 'ss-ltnu.txt', 'sysctl.txt'].sort(),
    )
    expect(host.name).toBe('lds-d')
    expect(host.role).toBe('director')
    expect(host.errors.map((e) => e.message)).toEqual([])
    const m = host.manifest!
    expect(m.format).toBe('lvsdoctor-snapshot/1')
    expect(m.commands!['ip-route.json']).toMatchObject({argv: ['ip', '-j', 'route', 'show', 'table', 'all'], exitCode: 0, stderr: ''})
    expect(m.commands!['sysctl.txt']!.argv).toEqual(['sysctl', 'net.ipv4', 'net.ipv6.conf', 'net.netfilter'])
    // IPVS is not in this kernel: a recorded gap, and ipvsadm was not run
    for (const f of ['ipvsadm-Sn.txt', 'ipvsadm-Ln.txt', 'ipvsadm-Lnc.txt', 'ipvsadm-timeout.txt']) {
      expect(m.commands![f]).toMatchObject({exitCode: null, durationMs: 0})
      expect(m.commands![f]!.gap).toMatch(/^IPVS is not loaded in this kernel/)
    }
    expect((m as {iptablesBackend?: unknown}).iptablesBackend).toMatchObject({active: 'nf_tables', split: true, legacyTables: ['filter']})
  }, 60_000)

  test('each file is the exact output of its command', () => {
    for (const [file, argv] of [
      ['ip-addr.json', ['ip', '-j', 'addr', 'show']],
      ['ip-route.json', ['ip', '-j', 'route', 'show', 'table', 'all']],
      ['ip-rule.json', ['ip', '-j', 'rule', 'show']],
      ['nft-ruleset.json', ['nft', '-j', 'list', 'ruleset']],
      ['ip6tables-save.txt', ['ip6tables-save']],
    ] as const) {
      const now = inNs(ns, argv).stdout.replace(/^# (Generated|Completed) .*\n/gm, '')
      expect(readFileSync(join(dir, file), 'utf8').replace(/^# (Generated|Completed) .*\n/gm, ''), file).toBe(now)
    }
    // sysctl.txt is the lines of `sysctl -a` under the format's prefixes, byte for byte
    const all = inNs(ns, ['sysctl', '-a']).stdout
    const wanted = all.split('\n').filter((l) => /^(net\.ipv4\.|net\.ipv6\.conf\.|net\.netfilter\.)/.test(l)).join('\n') + '\n'
    expect(readFileSync(join(dir, 'sysctl.txt'), 'utf8')).toBe(wanted)
  }, 60_000)

  test('iptables: exactly the rules of filter, nat, mangle and raw, and the legacy backend apart', () => {
    expect(rulesOf(host.iptables)).toEqual(
      [
        'filter INPUT 1: -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
        'filter INPUT 2: -A INPUT -s 10.77.0.0/24 -j LDS_CHAIN',
        'filter FORWARD 1: -A FORWARD -m conntrack --ctstate INVALID -j DROP',
        'filter LDS_CHAIN 1: -A LDS_CHAIN -j RETURN',
        'nat PREROUTING 1: -A PREROUTING -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.77.0.10:8080',
        'nat POSTROUTING 1: -A POSTROUTING -o ldsd0 -j MASQUERADE',
        'mangle PREROUTING 1: -A PREROUTING -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x1/0xffffffff',
        'raw PREROUTING 1: -A PREROUTING -p udp -m udp --dport 53 -j CT --notrack',
      ].sort(),
    )
    const ipt = host.iptables!
    expect(ipt.ruleCount).toBe(8)
    expect([...ipt.tables.keys()].sort()).toEqual(['filter', 'mangle', 'nat', 'raw'])
    expect(ipt.tables.get('filter')!.chains.get('FORWARD')!.policy).toBe('DROP')
    expect(ipt.tables.get('filter')!.chains.get('LDS_CHAIN')!.builtin).toBe(false)
    const dnat = ipt.tables.get('nat')!.chains.get('PREROUTING')!.rules[0]!
    expect(dnat.target).toMatchObject({kind: 'DNAT'})
    const to = (dnat.target as unknown as {to: {from?: {family: 4 | 6; value: bigint}; portFrom?: number}[]}).to[0]!
    expect(formatIp(to.from!)).toBe('10.77.0.10')
    expect(to.portFrom).toBe(8080)
    const dst = dnat.matches.find((m) => m.kind === 'addr' && m.dir === 'dst') as {prefix: Parameters<typeof formatPrefix>[0]} | undefined
    expect(dst && pfx(dst.prefix)).toBe('192.0.2.100/32')
    expect(ipt.tables.get('mangle')!.chains.get('PREROUTING')!.rules[0]!.target).toMatchObject({kind: 'MARK', value: 1, mask: 0xffffffff})
    expect(ipt.tables.get('filter')!.chains.get('FORWARD')!.rules[0]!.matches).toContainEqual(expect.objectContaining({kind: 'ctstate', states: ['INVALID']}))
    expect(rulesOf(host.iptablesLegacy)).toEqual(['filter INPUT 1: -A INPUT -s 203.0.113.7/32 -j DROP'])
    expect(rulesOf(host.ip6tables)).toEqual(['filter INPUT 1: -A INPUT -p ipv6-icmp -j ACCEPT'])
  }, 60_000)

  test('nftables: the native table and the iptables-nft rules', () => {
    const nft = host.nft!
    expect(nft.tables.map((t) => `${t.family} ${t.name}`)).toContain('inet lds_t')
    const lds = nft.tables.find((t) => t.name === 'lds_t')!
    expect([...lds.chains.keys()]).toEqual(['lds_in'])
    // 8 IPv4 + 1 IPv6 rules made by iptables-nft, and the one native rule
    expect(nft.xtRules).toBe(9)
    expect(nft.ruleCount).toBe(10)
  }, 60_000)

  test('addresses: exactly those of the namespace', () => {
    const addrs = host.interfaces!.flatMap((i) => i.addresses.map((a) => `${i.name} ${formatIp(a.ip)}/${a.prefixlen}`)).sort()
    expect(addrs).toEqual(['ldsd0 10.77.0.1/24', 'ldsd0 10.77.1.1/24', 'lo 127.0.0.1/8', 'lo 192.0.2.100/32', 'lo ::1/128'].sort())
    expect(host.interfaces!.map((i) => i.name).sort()).toEqual(['ldsd0', 'ldsd1', 'lo'])
  }, 60_000)

  test('routes: exactly those of every table, policy routing included', () => {
    const routes = host.routes!.map((r) => `${r.table} ${r.type} ${pfx(r.dst)}${r.gateway ? ` via ${formatIp(r.gateway)}` : ''} dev ${r.dev}`).sort()
    expect(routes).toEqual(
      [
        '100 unicast 0.0.0.0/0 via 10.77.0.254 dev ldsd0',
        '100 unicast 203.0.113.0/24 dev ldsd0',
        'main unicast 10.77.0.0/24 dev ldsd0',
        'main unicast 10.77.1.0/24 dev ldsd0',
        'main unicast 198.51.100.0/24 via 10.77.0.2 dev ldsd0',
        'local local 10.77.0.1/32 dev ldsd0',
        'local broadcast 10.77.0.255/32 dev ldsd0',
        'local local 10.77.1.1/32 dev ldsd0',
        'local broadcast 10.77.1.255/32 dev ldsd0',
        'local local 127.0.0.0/8 dev lo',
        'local local 127.0.0.1/32 dev lo',
        'local broadcast 127.255.255.255/32 dev lo',
        'local local 192.0.2.100/32 dev lo',
        'local local ::1/128 dev lo',
        'local multicast ff00::/8 dev ldsd0',
        'local multicast ff00::/8 dev ldsd1',
      ].sort(),
    )
    const rules = host.rules!.map((r) => `${r.priority} from ${r.from && r.from.len > 0 ? pfx(r.from) : 'all'}${r.fwmark !== undefined ? ` fwmark ${r.fwmark}` : ''} ${r.action} ${r.table}`)
    expect(rules).toEqual(['0 from all lookup local', '1000 from 10.77.1.0/24 lookup 100', '1001 from all fwmark 1 lookup 100', '32766 from all lookup main', '32767 from all lookup default'])
  }, 60_000)

  test('sysctls: the non-default values, and every line of sysctl.txt', () => {
    for (const [k, v] of Object.entries(SYSCTLS)) expect(host.sysctl!.get(k)?.value, k).toBe(v)
    const lines = readFileSync(join(dir, 'sysctl.txt'), 'utf8').split('\n').filter((l) => l !== '')
    expect(host.sysctl!.size).toBe(new Set(lines.map((l) => l.split(' = ')[0])).size)
  }, 60_000)

  test('conntrack: an empty table is a known empty file, and loads as no entries', () => {
    expect(readFileSync(join(dir, 'conntrack.txt'), 'utf8')).toBe('')
    expect(host.conntrack).toEqual([])
  }, 60_000)

  test(`the whole snapshot takes under 2 seconds`, () => {
    console.log(`snapshot in a namespace: collection ${collectMs} ms, whole command (node start included) ${snapMs} ms`)
    expect(collectMs).toBeLessThan(2000)
  }, 60_000)

  test('check --json on the directory, on a .tar.gz and live give the same JSON (but the source)', () => {
    const tgz = join(work, 'snap.tar.gz')
    const t = cli(ns, ['snapshot', '-o', tgz, '--name', 'lds-d', '--role', 'director'])
    expect(t.status, t.stderr).toBe(0)
    expect(t.stdout).toMatch(new RegExp(`^snapshot of lds-d written to ${tgz} `))
    const tar = spawnSync('tar', ['-tzf', tgz], {encoding: 'utf8'}).stdout.trim().split('\n')
    expect(tar).toContain('lds-d/manifest.json')
    const json = (args: string[]) => {
      const r = cli(ns, ['check', '--json', '--fail-on', 'none', ...args])
      expect(r.status, r.stderr).toBe(0)
      const v = JSON.parse(r.stdout)
      for (const h of v.hosts) delete h.source
      return v
    }
    const a = json([dir])
    expect(a.hosts[0].name).toBe('lds-d')
    expect(a.hosts[0].counts.iptablesRules).toBeGreaterThan(0)
    expect(json([tgz])).toEqual(a)
    // live: the same host seen now, without the name and role given to snapshot
    const live = json([])
    expect(live.hosts[0].counts).toEqual(a.hosts[0].counts)
    expect(live.hosts[0].files).toEqual(a.hosts[0].files)
  }, 60_000)
})

describe.skipIf(skip !== undefined)('snapshot gaps on a real system', () => {
  let ns = ''
  let work = ''
  beforeAll(() => {
    ns = makeNamespace('g')
    work = mkdtempSync(join(tmpdir(), 'lds-gaps-'))
    chmodSync(work, 0o711)
  }, 60_000)
  afterAll(() => {
    if (ns) deleteNamespace(ns)
    if (work) rmSync(work, {recursive: true, force: true})
  })
  const manifest = (d: string) => JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'))

  test('programs missing from PATH (nft, conntrack): gaps, no files, the rest collected', () => {
    const bin = join(work, 'bin')
    mkdirSync(bin)
    for (const p of ['iptables', 'iptables-save', 'iptables-legacy-save', 'iptables-nft-save', 'ip6tables-save', 'ip6tables-legacy-save', 'ipvsadm', 'ip', 'sysctl']) {
      const at = which(p)
      if (at) symlinkSync(at, join(bin, p))
    }
    const out = join(work, 'nopath')
    const r = cli(ns, ['snapshot', '-o', out], {prefix: [which('env')!, `PATH=${bin}`]})
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain('gap  nft-ruleset.json: nft is not installed (not found in PATH)')
    expect(r.stdout).toContain('gap  conntrack.txt: conntrack is not installed (not found in PATH)')
    const m = manifest(out)
    expect(m.commands['nft-ruleset.json']).toMatchObject({argv: ['nft', '-j', 'list', 'ruleset'], exitCode: null, gap: 'nft is not installed (not found in PATH)'})
    const files = readdirSync(out)
    expect(files).not.toContain('nft-ruleset.json')
    expect(files).not.toContain('conntrack.txt')
    expect(files).toContain('iptables-save.txt')
    expect(files).toContain('ip-addr.json')
  }, 60_000)

  test('not root: permission gaps with the reason, what a user can read is still collected', () => {
    mkdirSync(join(work, 'u'), {mode: 0o777})
    chmodSync(join(work, 'u'), 0o777)
    const target = join(work, 'u', 'snap')
    const r = cli(ns, ['snapshot', '-o', target, '--json'], {prefix: [which('setpriv')!, '--reuid=65534', '--regid=65534', '--clear-groups', which('env')!, 'HOME=/tmp']})
    expect(r.status, r.stderr).toBe(0)
    const s = JSON.parse(r.stdout)
    const gap = (f: string) => s.gaps.find((g: {file: string}) => g.file === f)?.gap as string | undefined
    expect(gap('iptables-save.txt')).toMatch(/^permission denied \(run as root\): .*Permission denied \(you must be root\)/)
    expect(gap('nft-ruleset.json')).toMatch(/^permission denied \(run as root\)/)
    expect(gap('conntrack.txt')).toMatch(/^permission denied \(run as root\)/)
    expect(gap('sysctl.txt')).toMatch(/^partial: \d+ keys? unreadable \(permission denied; run as root\)$/)
    const files = readdirSync(target)
    expect(files).toEqual(expect.arrayContaining(['ip-addr.json', 'ip-route.json', 'ip-rule.json', 'sysctl.txt', 'manifest.json']))
    expect(files).not.toContain('iptables-save.txt')
    expect(files).not.toContain('nft-ruleset.json')
  }, 60_000)

  // Only where modprobe cannot load ip_vs (the module does not exist), so asking ipvsadm changes nothing.
  test.skipIf(ipvsModule)('IPVS unavailable, as ipvsadm itself says on this kernel', () => {
    // A /proc that claims IPVS so that collect runs the real ipvsadm, inside the namespace; PATH has only ipvsadm.
    const proc = join(work, 'proc')
    mkdirSync(join(proc, 'net'), {recursive: true})
    spawnSync('sh', ['-c', `echo 'IP Virtual Server version 1.2.1' > ${proc}/net/ip_vs`])
    const bin = join(work, 'ipvsbin')
    mkdirSync(bin)
    symlinkSync(which('ipvsadm')!, join(bin, 'ipvsadm'))
    const script = `
      const {collect} = await import(${JSON.stringify(join(ROOT, 'dist/snapshot/collect.js'))})
      const {createRunner} = await import(${JSON.stringify(join(ROOT, 'dist/snapshot/exec.js'))})
      const c = await collect({host: 'lds-i', progress: 'silent', proc: ${JSON.stringify(proc)}, keepalivedPath: '/nonexistent',
        runner: createRunner({env: {PATH: ${JSON.stringify(bin)}}})})
      process.stdout.write(JSON.stringify(c.commands))`
    const r = inNs(ns, [process.execPath, '--input-type=module', '-e', script])
    expect(r.status, r.stderr).toBe(0)
    const cmds = JSON.parse(r.stdout)
    expect(cmds['ipvsadm-Sn.txt'].exitCode).toBe(2)
    expect(cmds['ipvsadm-Sn.txt'].gap).toBe("IPVS is not available in this kernel (ip_vs module not loaded): Can't initialize ipvs: Protocol not available")
    expect(cmds['ipvsadm-Ln.txt'].gap).toBe(cmds['ipvsadm-Sn.txt'].gap)
  }, 60_000)
})
