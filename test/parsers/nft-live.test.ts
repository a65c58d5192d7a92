// Live: every nft fixture is loaded into a fresh network namespace with the real `nft -f` (iptables-nft-restore for
// the iptables-nft one), dumped with `nft -j list ruleset`, parsed, and compared rule by rule with the source, with
// nft's own text listing and with the committed fixture. Needs root; without it each test says why it is skipped.
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {formatNftBaseChain, formatNftRuleset, type NftRuleset} from '../../src/model/nft.js'
import {parseNftJson} from '../../src/snapshot/parsers/nft-json.js'
import {generateKubeProxyNft} from '../../bench/nft-kube-gen.js'
import {cannotRunLive, FIXTURES, fixtureDirs, listingRules, loadAndDump, normalizeRule, sameRuleText, sourceRules, type Dump} from './nft-netns.js'

const why = cannotRunLive()
const FILE = 'nft-ruleset.json'
const live = why ? it.skip : it
if (why) console.log(`nft live tests skipped: ${why}`)

function rulesByChain(rs: NftRuleset): Map<string, Array<{handle: number; text: string}>> {
  const out = new Map<string, Array<{handle: number; text: string}>>()
  for (const t of rs.tables) for (const c of t.chains.values()) out.set(`${t.family} ${t.name} ${c.name}`, c.rules.map((r) => ({handle: r.handle, text: r.loc.text})))
  return out
}

/** Loads a fixture, or says why the kernel refused it (a hook it lacks, such as netdev egress before 5.16). */
function tryLoad(dir: string): Dump | string {
  try {
    return loadAndDump(dir)
  } catch (e) {
    const msg = String((e as {stderr?: unknown}).stderr ?? (e as Error).message)
    if (/Operation not supported|not supported|No such file or directory/.test(msg)) return `the kernel refused ${dir}: ${msg.trim().split('\n')[0]}`
    throw e
  }
}

describe('nft fixtures in a fresh namespace', () => {
  live.each(fixtureDirs())('%s: loaded, dumped, parsed and compared rule by rule', (dir) => {
    const d = tryLoad(dir)
    if (typeof d === 'string') {
      console.log(d)
      return
    }
    const rs = parseNftJson(d.json, FILE, {iptablesSaveBeside: d.iptablesSave !== undefined})
    expect(rs.ruleCount).toBeGreaterThan(0)

    // with nft's own text listing of the same kernel state
    const listed = listingRules(d.text)
    for (const t of rs.tables) {
      for (const c of t.chains.values()) {
        const l = listed.get(`${t.family} ${t.name} ${c.name}`)!
        expect(l, `${t.family} ${t.name} ${c.name}`).toBeDefined()
        if (c.base) expect(formatNftBaseChain(c.base)).toBe(c.base.devices ? l.header : l.header?.replace(/ (device "[^"]*"|devices = \{[^}]*\})/, ''))
        expect(c.rules.map((r) => r.loc.text).every((text, i) => sameRuleText(text, l.rules[i]!))).toBe(true)
        expect(c.rules).toHaveLength(l.rules.length)
      }
    }

    // with the source
    if (d.iptablesSave !== undefined) {
      // iptables-nft: the same rules, chain by chain, as iptables-nft-save prints them
      const counts = new Map<string, number>()
      let tbl = ''
      for (const line of d.iptablesSave.split('\n')) {
        if (line.startsWith('*')) tbl = line.slice(1)
        const m = /^-A (\S+)/.exec(line)
        if (m) counts.set(`${tbl} ${m[1]}`, (counts.get(`${tbl} ${m[1]}`) ?? 0) + 1)
      }
      const nft = new Map<string, number>()
      for (const t of rs.tables) for (const c of t.chains.values()) if (c.rules.length) nft.set(`${t.name} ${c.name}`, c.rules.length)
      expect(nft).toEqual(counts)
      expect(rs.xtRules).toBe(rs.ruleCount)
      expect(rs.fullyAnalysable).toBe(true)
    } else {
      const src = sourceRules(readFileSync(join(FIXTURES, dir, 'ruleset.nft'), 'utf8'))
      for (const [key, rules] of rulesByChain(rs)) expect(rules.map((r) => normalizeRule(r.text)), key).toEqual((src.get(key) ?? []).map(normalizeRule))
      expect([...src.values()].flat()).toHaveLength(rs.ruleCount)
    }

    // with the committed fixture: the same tables, chains, handles and rules
    const committed = parseNftJson(readFileSync(join(FIXTURES, dir, FILE), 'utf8'), FILE, {iptablesSaveBeside: true})
    expect(rulesByChain(rs)).toEqual(rulesByChain(committed))
  })

  live('the printer writes rulesets nft loads back into the same rules', () => {
    for (const dir of ['nftlb-farm', 'keepalived-vrrp-strict', 'firewalld-dr']) {
      const rs = parseNftJson(readFileSync(join(FIXTURES, dir, FILE), 'utf8'), FILE)
      const text = formatNftRuleset(rs)
      const ns = `ldn-print-${process.pid}`
      execFileSync('ip', ['netns', 'add', ns])
      try {
        for (const dev of ['eth0', 'eth1']) execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', dev, 'type', 'bridge'])
        execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {input: text})
        const back = parseNftJson(execFileSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'ruleset'], {encoding: 'utf8'}), FILE)
        expect(rulesByChain(back), dir).toEqual(rulesByChain(rs))
      } finally {
        execFileSync('ip', ['netns', 'del', ns])
      }
    }
  })

  live('the kube-proxy generator prints what nft prints for the same ruleset', () => {
    const g = generateKubeProxyNft(400)
    const text = formatNftRuleset(parseNftJson(g.json, FILE))
    const ns = `ldn-kube-${process.pid}`
    execFileSync('ip', ['netns', 'add', ns])
    try {
      execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {input: text})
      const back = execFileSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'ruleset'], {encoding: 'utf8', maxBuffer: 1 << 28})
      // identical apart from the order of set elements, which the kernel's hash sets choose
      const norm = (json: string): unknown[] =>
        (JSON.parse(json) as {nftables: Array<Record<string, Record<string, unknown>>>}).nftables.map((o) => {
          const [k, v] = Object.entries(o)[0]!
          return {[k]: Array.isArray(v.elem) ? {...v, elem: v.elem.map((e) => JSON.stringify(e)).sort()} : v}
        })
      expect(norm(back)).toEqual(norm(g.json))
    } finally {
      execFileSync('ip', ['netns', 'del', ns])
    }
  })
})
