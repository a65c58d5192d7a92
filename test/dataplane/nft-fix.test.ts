// trace --fix's nft applier (src/dataplane/nft-fix.ts): each command form on a copy of nft-ruleset.json, the
// errors it gives instead of guessing, and (live, root) the same commands run by the real nft in an ldm-
// namespace: the ruleset nft lists afterwards equals the applier's edit, rule by rule.
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {formatNftRule, type NftRuleset} from '../../src/model/nft.js'
import {parseNftJson} from '../../src/snapshot/parsers/nft-json.js'
import {editNftRuleset, NftFixError, ruleJson} from '../../src/dataplane/nft-fix.js'
import {applyFixes, splitWords} from '../../src/dataplane/apply-fix.js'
import {loadSnapshots} from '../../src/snapshot/store.js'

const FW = readFileSync('fixtures/rules/nft-lvs-howto-29.1-dr-state-new/director/nft-ruleset.json', 'utf8')
const LB = readFileSync('fixtures/rules/nft-zevenet-l4xnat-dnat/lb/nft-ruleset.json', 'utf8')

const apply = (text: string, cmd: string) => editNftRuleset(text, splitWords(cmd).slice(1))
const parse = (text: string): NftRuleset => parseNftJson(text, 'nft-ruleset.json')
/** `chain: rule text` for every rule, in order. */
function listing(rs: NftRuleset): string[] {
  const out: string[] = []
  for (const t of rs.tables) for (const c of t.chains.values()) for (const r of c.rules) out.push(`${t.family} ${t.name} ${c.name}: ${formatNftRule(r)}`)
  return out
}

describe('the applier', () => {
  test('insert before a handle, add at the end, add after a handle', () => {
    let t = apply(FW, `nft insert rule inet filter input position 7 'ip daddr 192.0.2.100 tcp dport 80 accept'`)
    t = apply(t, 'nft add rule inet filter input tcp dport 8080 drop')
    t = apply(t, 'nft add rule inet filter input position 4 meta l4proto icmp accept')
    const input = listing(parse(t)).filter((l) => l.startsWith('inet filter input:'))
    expect(input).toEqual([
      'inet filter input: iifname "lo" accept',
      'inet filter input: meta l4proto icmp accept',
      'inet filter input: ct state established,related accept',
      'inet filter input: ct state new tcp dport 22 accept',
      'inet filter input: ip daddr 192.0.2.100 tcp dport 80 accept',
      'inet filter input: ct state new tcp dport 80 accept',
      'inet filter input: ct state new tcp dport 443 accept',
      'inet filter input: tcp dport 8080 drop',
    ])
    // new rules get the table's next handles
    const handles = parse(t).tables[0]!.chains.get('input')!.rules.map((r) => r.handle)
    expect(new Set(handles).size).toBe(handles.length)
  })

  test('replace keeps the statements it does not change (their JSON is reused: maps, comments)', () => {
    const rs0 = parse(LB)
    const r = rs0.tables[0]!.chains.get('mangle_prerouting')!.rules[1]!
    const t = apply(LB, `nft replace rule ip zevenet mangle_prerouting handle ${r.handle} '${'ct state new ' + formatNftRule(r)}'`)
    const after = parse(t).tables[0]!.chains.get('mangle_prerouting')!.rules[1]!
    expect(formatNftRule(after)).toBe('ct state new ' + formatNftRule(r))
    expect(after.handle).toBe(r.handle)
    expect(after.comment).toBe('FARM_app')
  })

  test('delete, add table and add chain (a base chain spec; idempotent like nft add)', () => {
    let t = apply(FW, 'nft delete rule inet filter input handle 4')
    expect(listing(parse(t))).not.toContain('inet filter input: iifname "lo" accept')
    t = apply(t, `nft add chain inet filter nat_postrouting '{ type nat hook postrouting priority 100; policy accept; }'`)
    t = apply(t, `nft add chain inet filter nat_postrouting '{ type nat hook postrouting priority 100; policy accept; }'`)
    t = apply(t, 'nft add rule inet filter nat_postrouting ip daddr 10.0.0.11 tcp dport 8080 masquerade')
    t = apply(t, 'nft add table ip lvsdoctor')
    const rs = parse(t)
    const c = rs.tables[0]!.chains.get('nat_postrouting')!
    expect(c.base).toMatchObject({type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept'})
    expect(c.rules.map((r) => formatNftRule(r))).toEqual(['ip daddr 10.0.0.11 tcp dport 8080 masquerade'])
    expect(rs.tables.map((x) => `${x.family} ${x.name}`)).toEqual(['inet filter', 'ip lvsdoctor'])
  })

  test('the statements check writes read back as written', () => {
    for (const text of [
      'ip saddr 127.0.0.0/8 ip daddr 198.51.100.20 tcp dport 3197 masquerade',
      'oifname "ldr-eth0" masquerade',
      'ct state established,related accept',
      'ct state new ct mark set meta mark',
      'meta mark set ct mark',
      'meta mark 0x0000020c tcp dport 443 dnat to 192.168.1.10:443',
      'ip saddr 10.0.0.0/8 snat to 192.0.2.1',
      'tcp dport { 80, 443 } accept',
      'reject with icmp host-prohibited',
      'udp dport 53 counter packets 0 bytes 0 notrack',
      'tcp dport 22 accept comment "ssh"',
    ]) {
      const t = editNftRuleset(FW, ['add', 'rule', 'inet', 'filter', 'output', text])
      expect(listing(parse(t)).at(-1)).toBe(`inet filter output: ${text}`)
    }
  })

  test('what it cannot read or find is an error with the reason, never a guess', () => {
    expect(() => apply(FW, 'nft add rule inet filter input tcp option maxseg size 1400 accept')).toThrow(NftFixError)
    expect(() => apply(FW, 'nft replace rule inet filter input handle 999 accept')).toThrow(/no rule with handle 999/)
    expect(() => apply(FW, 'nft add rule inet nosuch input accept')).toThrow(/no table inet nosuch/)
    expect(() => apply(FW, 'nft add rule inet filter nosuch accept')).toThrow(/no chain nosuch/)
    expect(() => apply(FW, 'nft flush ruleset')).toThrow(NftFixError)
    expect(() => ruleJson('')).toThrow(/empty rule/)
  })

  test('through applyFixes (trace --fix): the copy is re-parsed, the host untouched; a bad command is reported', () => {
    const [host] = loadSnapshots(['fixtures/rules/nft-lvs-howto-29.1-dr-state-new/director'])
    const r = applyFixes(host!, ["nft replace rule inet filter input handle 7 'tcp dport 80 accept'", 'nft add rule inet filter input handle nope accept'])
    expect(r.outcomes.map((o) => o.applied)).toEqual([true, false])
    expect(r.outcomes[1]!.reason).toMatch(/needs a rule handle/)
    expect(r.host.nft!.tables[0]!.chains.get('input')!.rules.map((x) => formatNftRule(x))).toContain('tcp dport 80 accept')
    expect(host!.nft!.tables[0]!.chains.get('input')!.rules.map((x) => formatNftRule(x))).toContain('ct state new tcp dport 80 accept')
  })
})

// ---- live: the real nft makes the same ruleset ------------------------------------------------------------

function cannotRunLive(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root'
  try {
    execFileSync('sh', ['-c', 'command -v nft && command -v ip'], {stdio: 'ignore'})
  } catch {
    return 'nft or ip is not installed'
  }
  return undefined
}
const why = cannotRunLive()
if (why) console.log(`live nft applier test skipped: ${why}`)

/** The handle of the rule of `chain` that nft lists as `text`. */
function handleOf(rs: NftRuleset, chain: string, text: string): number {
  for (const t of rs.tables) {
    const r = t.chains.get(chain)?.rules.find((x) => formatNftRule(x) === text)
    if (r) return r.handle
  }
  throw new Error(`no rule "${text}" in ${chain}`)
}

describe.skipIf(why !== undefined)('the real nft agrees with the applier', () => {
  test.each([
    [
      'nft-lvs-howto-29.1-dr-state-new/director',
      (rs: NftRuleset) => [
        `nft insert rule inet filter input position ${handleOf(rs, 'input', 'ct state new tcp dport 80 accept')} 'ip daddr 192.0.2.100 tcp dport 80 accept'`,
        `nft replace rule inet filter input handle ${handleOf(rs, 'input', 'ct state new tcp dport 443 accept')} 'tcp dport 443 accept'`,
        `nft delete rule inet filter input handle ${handleOf(rs, 'input', 'iifname "lo" accept')}`,
      ],
    ],
    [
      'nft-lvs-users-nat-unnat/director',
      () => ["nft add chain inet filter nat_postrouting '{ type nat hook postrouting priority 100; policy accept; }'", 'nft add rule inet filter nat_postrouting ip daddr 10.0.0.11 tcp dport 8080 masquerade'],
    ],
    [
      'nft-zevenet-l4xnat-dnat/lb',
      (rs: NftRuleset) => {
        const text = 'ip daddr 192.168.101.250 tcp dport 443 meta mark set numgen random mod 2 map { 0 : 0x0000020c, 1 : 0x0000020d } comment "FARM_app"'
        return [
          `nft replace rule ip zevenet mangle_prerouting handle ${handleOf(rs, 'mangle_prerouting', text)} 'ct state new ${text}'`,
          `nft add rule ip zevenet mangle_prerouting position ${handleOf(rs, 'mangle_prerouting', 'meta mark set ct mark')} meta mark 0x00000000 accept`,
        ]
      },
    ],
  ] as const)('%s', (dir, cmdsOf) => {
    const ns = `ldm-nftfix-${process.pid}`
    const nft = (args: string[], input?: string) => execFileSync('ip', ['netns', 'exec', ns, 'nft', ...args], {encoding: 'utf8', input})
    try {
      execFileSync('ip', ['netns', 'add', ns])
      // the fixture's JSON loaded as is; the applier starts from what nft lists then (its handles)
      const file = join(mkdtempSync(join(tmpdir(), 'ldm-nftfix-')), 'ruleset.json')
      writeFileSync(file, readFileSync(`fixtures/rules/${dir}/nft-ruleset.json`, 'utf8'))
      nft(['-j', '-f', file])
      rmSync(dirname(file), {recursive: true})
      let mine = nft(['-j', 'list', 'ruleset'])
      for (const c of cmdsOf(parse(mine))) {
        execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', c])
        mine = apply(mine, c)
      }
      const real = nft(['-j', 'list', 'ruleset'])
      expect(listing(parse(mine))).toEqual(listing(parse(real)))
      const chains = (rs: NftRuleset) => rs.tables.flatMap((t) => [...t.chains.values()].map((c) => `${c.name} ${JSON.stringify(c.base ?? null)}`))
      expect(chains(parse(mine))).toEqual(chains(parse(real)))
    } finally {
      try {
        execFileSync('ip', ['netns', 'del', ns])
      } catch {
        /* gone */
      }
    }
  })
})
