// Helpers shared by the iptables corpus tests: where ../shared/corpus/iptables-save is, and rule counts.
import {readdirSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {IptablesRuleset} from '../../src/model/iptables.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
/** shared/ sits beside the clone (as in CI) */
export const CORPUS = join(REPO, '..', 'shared', 'corpus', 'iptables-save')
export const corpusFiles = (): string[] => readdirSync(CORPUS).filter((f) => /\.ip6?tables-save$/.test(f)).sort()
export const familyOf = (file: string): 4 | 6 => (file.includes('ip6tables') ? 6 : 4)

/** `-A` lines, with or without a `[p:b]` counters prefix */
export const appendLines = (text: string): number => text.split('\n').filter((l) => /^(\[\d+:\d+\] )?-A /.test(l)).length

export function rulesPerChain(rs: IptablesRuleset): number {
  let n = 0
  for (const t of rs.tables.values()) for (const c of t.chains.values()) n += c.rules.length
  return n
}

/** `table/chain` → number of rules, for every chain that has rules */
export function chainCounts(rs: IptablesRuleset): Map<string, number> {
  const out = new Map<string, number>()
  for (const t of rs.tables.values()) for (const c of t.chains.values()) if (c.rules.length > 0) out.set(`${t.name}/${c.name}`, c.rules.length)
  return out
}
