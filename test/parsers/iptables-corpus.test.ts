// Every real-world dump of ../shared/corpus/iptables-save/ (and the generated kube-proxy dump) parses without
// error, with ruleCount equal to its number of `-A` lines and every rule accounted for in its chain.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {parseIptablesSave} from '../../src/snapshot/parsers/iptables-save.js'
import {generateKubeProxyDump} from '../../bench/gen-kube-proxy.js'
import {appendLines, CORPUS, corpusFiles, familyOf, rulesPerChain} from './iptables-corpus.js'

describe('shared corpus of real iptables-save dumps', () => {
  const files = corpusFiles()

  it('is there (CI runs with shared/ beside the clone)', () => {
    expect(files.length).toBeGreaterThanOrEqual(15)
  })

  for (const file of files) {
    it(`${file} parses; ruleCount = number of -A lines`, () => {
      const text = readFileSync(join(CORPUS, file), 'utf8')
      const rs = parseIptablesSave(text, file, familyOf(file))
      expect(rs.ruleCount).toBe(appendLines(text))
      expect(rulesPerChain(rs)).toBe(rs.ruleCount)
      // every rule keeps its own line, verbatim
      const lines = text.split('\n')
      for (const t of rs.tables.values()) {
        for (const c of t.chains.values()) {
          for (const r of c.rules) expect(r.loc.text).toBe(lines[r.loc.line - 1])
        }
      }
      // whatever is not modelled is reported with a line of this file
      for (const n of rs.notModelled) {
        expect(n.file).toBe(file)
        expect(n.line).toBeGreaterThan(0)
        expect(n.line).toBeLessThanOrEqual(lines.length)
      }
    })
  }

  it('what is not modelled in the corpus (the list an engineer sees)', () => {
    const seen = new Map<string, number>()
    for (const file of files) {
      const rs = parseIptablesSave(readFileSync(join(CORPUS, file), 'utf8'), file, familyOf(file))
      for (const n of rs.notModelled) seen.set(n.what, (seen.get(n.what) ?? 0) + 1)
    }
    expect([...seen.keys()].sort()).toEqual([
      '-j TCPMSS', '-m connlimit', '-m hashlimit', '-m mac --mac-source XX:XX:XX:XX:XX:XX (redacted, not a MAC address)',
      '-m multiport --something-else', '-m owner', '-m pkttype',
    ])
  })
})

describe('generated kube-proxy dump (bench/gen-kube-proxy.ts)', () => {
  it('has exactly the asked number of rules, about a third as many chains, and parses completely', () => {
    const text = generateKubeProxyDump(20_000)
    expect(text).toBe(generateKubeProxyDump(20_000)) // deterministic
    const rs = parseIptablesSave(text, 'kube.iptables-save', 4)
    expect(rs.ruleCount).toBe(20_000)
    expect(appendLines(text)).toBe(20_000)
    expect(rs.notModelled).toEqual([])
    const chains = [...rs.tables.values()].reduce((n, t) => n + t.chains.size, 0)
    expect(chains / rs.ruleCount).toBeGreaterThan(0.3)
    expect(chains / rs.ruleCount).toBeLessThan(0.37)
    const nat = rs.tables.get('nat')!
    const svc = [...nat.chains.values()].find((c) => c.name.startsWith('KUBE-SVC-') && c.rules.length > 3)!
    // a statistic cascade: 1/n, 1/(n-1), ..., then the last endpoint unconditionally
    const probs = svc.rules.slice(1).map((r) => r.matches.find((m) => m.kind === 'statistic'))
    expect(probs.at(-1)).toBeUndefined()
    expect(probs[0]).toMatchObject({kind: 'statistic', mode: 'random'})
    const sep = nat.chains.get((svc.rules[1]!.target as {chain: string}).chain)!
    expect(sep.rules.map((r) => r.target?.kind)).toEqual(['jump', 'DNAT'])
    expect(nat.chains.get('KUBE-MARK-MASQ')!.rules[0]!.target).toEqual({kind: 'MARK', op: 'xset', value: 0x4000, mask: 0x4000})
    const withComments = parseIptablesSave(generateKubeProxyDump(2_000, {comments: true}), 'k', 4)
    expect(withComments.ruleCount).toBe(2_000)
  })
})
