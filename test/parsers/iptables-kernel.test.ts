// Differential test against the kernel (root): each dump of ../shared/corpus/iptables-save is loaded into a fresh
// network namespace (ldi-k<pid>-<n>) with the real iptables-restore / ip6tables-restore, printed back with
// iptables-save, and both the original and what the kernel printed are parsed: the rule count of every chain must
// agree. Dumps the kernel refuses are reported with iptables-restore's reason; those with a known, harmless cause
// (published dumps redact MAC addresses; parser-test has a deliberately bogus option) are retried once with that
// cause substituted, and the substitution is printed too.
import {execFileSync, spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {parseIptablesSave} from '../../src/snapshot/parsers/iptables-save.js'
import {chainCounts, CORPUS, corpusFiles, familyOf} from './iptables-corpus.js'

function cannotRun(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: network namespaces and iptables-restore need root'
  for (const bin of ['ip', 'iptables-restore', 'iptables-save', 'ip6tables-restore', 'ip6tables-save']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed`
  }
  return undefined
}

const skip = cannotRun()
if (skip) console.warn(`skipping the iptables kernel tests: ${skip}`)

/** Known causes of refusal in the published dumps, and the substitution that keeps every rule. */
const SUBSTITUTIONS: Array<{why: string; from: RegExp; to: string}> = [
  {why: 'MAC addresses redacted as XX:XX:XX:XX:XX:XX (replaced by 02:00:00:00:00:01)', from: /XX:XX:XX:XX:XX:XX/g, to: '02:00:00:00:00:01'},
  {why: 'deliberately bogus multiport option --something-else (removed)', from: / --something-else/g, to: ''},
]

interface Outcome {
  file: string
  result: string
}
const outcomes: Outcome[] = []
let seq = 0

/** Loads `text` into a fresh namespace and returns what iptables-save prints, or the refusal. */
function roundTrip(text: string, family: 4 | 6): {saved?: string; refused?: string} {
  const ns = `ldi-k${process.pid}-${seq++}`
  const tool = family === 6 ? 'ip6tables' : 'iptables'
  execFileSync('ip', ['netns', 'add', ns])
  try {
    const r = spawnSync('ip', ['netns', 'exec', ns, `${tool}-restore`], {input: text, encoding: 'utf8', timeout: 120_000})
    if (r.status !== 0) return {refused: `${tool}-restore exit ${r.status}: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(0, 2).join(' / ')}`}
    return {saved: execFileSync('ip', ['netns', 'exec', ns, `${tool}-save`], {encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20})}
  } finally {
    spawnSync('ip', ['netns', 'del', ns])
  }
}

describe.skipIf(skip !== undefined)('corpus round trip through the kernel: same rule count per chain', () => {
  afterAll(() => {
    console.log(`iptables-restore round trip of the corpus (${outcomes.length} dumps):\n` + outcomes.map((o) => `  ${o.file}: ${o.result}`).join('\n'))
  })

  for (const file of corpusFiles()) {
    it(file, (ctx) => {
      const family = familyOf(file)
      const original = readFileSync(join(CORPUS, file), 'utf8')
      let text = original
      const first = roundTrip(text, family)
      let saved = first.saved
      let refused = first.refused
      const applied: string[] = []
      if (refused) {
        for (const sub of SUBSTITUTIONS) {
          const next = text.replace(sub.from, sub.to)
          if (next !== text) applied.push(sub.why)
          text = next
        }
        if (applied.length > 0) {
          const second = roundTrip(text, family)
          saved = second.saved
          if (second.refused) refused = `${refused}; after substituting (${applied.join('; ')}) still: ${second.refused}`
        }
      }
      if (!saved) {
        outcomes.push({file, result: `REFUSED by the kernel: ${refused}`})
        console.warn(`${file}: refused by iptables-restore here, not compared: ${refused}`)
        ctx.skip()
        return
      }
      const before = chainCounts(parseIptablesSave(original, file, family))
      const after = chainCounts(parseIptablesSave(saved, `${file} (iptables-save)`, family))
      expect(after).toEqual(before)
      const rules = [...before.values()].reduce((a, b) => a + b, 0)
      outcomes.push({file, result: applied.length === 0 ? `loaded, ${rules} rules in ${before.size} chains agree` : `refused (${refused}); loaded after substituting: ${applied.join('; ')}; ${rules} rules in ${before.size} chains agree`})
    })
  }
})
