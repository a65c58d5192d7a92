// The registry, the docs and the fixtures agree (ESLint's Makefile.js checkRuleFiles): every rule has
// docs/rules/<id>.md with its sections, a scenario that fires it and a scenario (its fixed variant) that
// does not; every doc belongs to a rule; every scenario names only registered rules.
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {RULES} from '../../src/rules/index.js'
import {expected, scenarioNames} from './helpers.js'

const SECTIONS = ['## Problem', '## Example', '## Why it breaks', '## Fix', '## Exceptions', '## Sources']
// shared/ sits beside the clone (as in CI), like the corpus
const SOURCE_FILES = readFileSync(join(process.cwd(), '..', 'shared', 'sources', 'README.md'), 'utf8').match(/\d{3}_[0-9a-f]{16}\.txt/g) ?? []
const scenarios = scenarioNames()
const ids = RULES.map((r) => r.meta.id)

describe('the catalogue', () => {
  test('ids are kebab-case, unique, with complete metadata', () => {
    expect(new Set(ids).size).toBe(ids.length)
    for (const r of RULES) {
      expect(r.meta.id).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/)
      expect(r.meta.title.length).toBeGreaterThan(10)
      expect(r.meta.description.length).toBeGreaterThan(40)
      expect(r.meta.sources.length).toBeGreaterThan(0)
      expect(['error', 'warning', 'info']).toContain(r.meta.severity)
    }
  })

  test('the ids of the public contract (issue 4) and the added ones are all there', () => {
    expect([...ids].sort()).toEqual(
      [
        'dr-stateful-filter', 'reject-on-one-way-flow', 'nat-reply-bypasses-director', 'localhost-dnat', 'nat-stateful-output',
        'ipvs-conntrack-off', 'fwmark-service-unmarked', 'vip-not-local', 'ip-forward-off', 'filter-blocks-vip',
        'statistic-cascade-skew', 'mark-not-connmarked', 'dr-realserver-arp', 'rp-filter-asymmetric', 'dr-port-mismatch',
        'forward-drops-nat-replies', 'ipvs-no-available-realserver', 'realserver-filter-blocks-service', 'forward-blocks-routed-vip',
        'forward-drops-nat-requests', 'udp-reply-wrong-source', 'dnat-untracked',
        'dr-reply-via-director', 'dr-realserver-no-vip', 'ipvs-hash-quiesced', 'one-way-reply-snat', 'conntrack-table-full', 'health-check-blocked', 'local-client-blocked', 'route-drops-service', 'backend-not-listening', 'ipvs-idle-timeout',
      ].sort(),
    )
  })

  test('every doc belongs to a registered rule', () => {
    for (const f of readdirSync('docs/rules')) expect(ids, `docs/rules/${f}`).toContain(f.replace(/\.md$/, ''))
  })

  test('every scenario names only registered rules, and a fixed variant fires nothing', () => {
    for (const s of scenarios) {
      const e = expected(s)
      for (const id of e.fires) expect(ids, `${s}/expected.json`).toContain(id)
      if (e.fixes) expect(e.fires, s).toEqual([])
      if (e.fixedBy) expect(scenarios, `${s} names its fixed variant ${e.fixedBy}`).toContain(e.fixedBy)
    }
  })
})

describe.each(ids)('%s', (id) => {
  test('has docs/rules/<id>.md with problem, example, why, fix, exceptions, sources', () => {
    const path = `docs/rules/${id}.md`
    expect(existsSync(path), path).toBe(true)
    const doc = readFileSync(path, 'utf8')
    expect(doc.startsWith(`# ${id}\n`)).toBe(true)
    let at = -1
    for (const s of SECTIONS) {
      const i = doc.indexOf(`\n${s}\n`)
      expect(i, `${path}: ${s}`).toBeGreaterThan(at)
      at = i
    }
  })

  test('its doc cites the sources by their file names or by kernel/man page', () => {
    const doc = readFileSync(`docs/rules/${id}.md`, 'utf8')
    const sources = doc.slice(doc.indexOf('\n## Sources\n'))
    const cited = SOURCE_FILES.some((f) => sources.includes(f)) || /ipvsadm\(8\)|Documentation\/|net\/|iptables-extensions/.test(sources)
    expect(cited).toBe(true)
  })

  test('has a firing scenario and a quiet one (its fixed variant)', () => {
    const firing = scenarios.filter((s) => expected(s).fires.includes(id))
    expect(firing.length, `no scenario fires ${id}`).toBeGreaterThan(0)
    const quiet = firing.map((s) => expected(s).fixedBy).filter((s): s is string => !!s && scenarios.includes(s))
    expect(quiet.length, `no fixed variant of a scenario firing ${id}`).toBeGreaterThan(0)
    for (const q of quiet) expect(expected(q).fires).not.toContain(id)
  })
})
