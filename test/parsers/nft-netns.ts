// Loads an nft fixture into a fresh network namespace with the real `nft -f` (or `iptables-nft-restore`) and dumps
// it back (`nft -j list ruleset`, `nft list ruleset`, `iptables-nft-save`). Used by the live fixture test and, run
// directly (`npx tsx test/parsers/nft-netns.ts`), to regenerate fixtures/nft/*/ from their sources.
import {execFileSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

export const FIXTURES = fileURLToPath(new URL('../../fixtures/nft/', import.meta.url))

export interface Dump {
  json: string
  text: string
  iptablesSave?: string
}

function run(argv: string[], input?: string): string {
  return execFileSync(argv[0]!, argv.slice(1), {input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000})
}

/** Why live tests cannot run here, or undefined when they can (root, `ip`, `nft`, namespaces). */
export function cannotRunLive(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: network namespaces and nft need root'
  for (const bin of ['ip', 'nft']) {
    try {
      run(['sh', '-c', `command -v ${bin}`])
    } catch {
      return `${bin} is not installed`
    }
  }
  return undefined
}

/** Interfaces a fixture needs, from its `# ldn-links: bridge xenbr0, bridge guestbr0` line. */
export function linksOf(source: string): Array<{type: string; name: string}> {
  const m = /^#\s*ldn-links:\s*(.*)$/m.exec(source)
  if (!m) return []
  return m[1]!
    .split(',')
    .map((s) => s.trim().split(/\s+/))
    .filter((p) => p.length === 2)
    .map(([type, name]) => ({type: type!, name: name!}))
}

/**
 * Loads `ruleset.nft` (or, for iptables-nft fixtures, `iptables.rules` with iptables-nft-restore) of fixture `dir`
 * into a namespace of its own, dumps it and removes the namespace, also on failure.
 */
export function loadAndDump(dir: string): Dump {
  const ns = `ldn-${dir.replace(/[^a-z0-9]/g, '').slice(0, 20)}-${process.pid}`
  const base = join(FIXTURES, dir)
  const nftSource = join(base, 'ruleset.nft')
  const iptSource = join(base, 'iptables.rules')
  const source = existsSync(nftSource) ? readFileSync(nftSource, 'utf8') : readFileSync(iptSource, 'utf8')
  run(['ip', 'netns', 'add', ns])
  try {
    const inNs = (argv: string[], input?: string): string => run(['ip', 'netns', 'exec', ns, ...argv], input)
    for (const l of linksOf(source)) inNs(['ip', 'link', 'add', l.name, 'type', l.type])
    let iptablesSave: string | undefined
    if (existsSync(nftSource)) inNs(['nft', '-f', nftSource])
    else {
      inNs(['iptables-nft-restore'], source)
      iptablesSave = inNs(['iptables-nft-save'])
    }
    const json = inNs(['nft', '-j', 'list', 'ruleset'])
    const text = inNs(['nft', 'list', 'ruleset'])
    return {json, text, ...(iptablesSave === undefined ? {} : {iptablesSave})}
  } finally {
    try {
      run(['ip', 'netns', 'del', ns])
    } catch {
      // already gone
    }
  }
}

export function fixtureDirs(): string[] {
  return readdirSync(FIXTURES, {withFileTypes: true})
    .filter((d) => d.isDirectory() && (existsSync(join(FIXTURES, d.name, 'ruleset.nft')) || existsSync(join(FIXTURES, d.name, 'iptables.rules'))))
    .map((d) => d.name)
    .sort()
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const why = cannotRunLive()
  if (why) {
    console.error(`cannot regenerate the nft fixtures: ${why}`)
    process.exit(2)
  }
  for (const dir of process.argv.length > 2 ? process.argv.slice(2) : fixtureDirs()) {
    const d = loadAndDump(dir)
    writeFileSync(join(FIXTURES, dir, 'nft-ruleset.json'), d.json)
    writeFileSync(join(FIXTURES, dir, 'nft-ruleset.txt'), d.text)
    if (d.iptablesSave !== undefined) writeFileSync(join(FIXTURES, dir, 'iptables-save.txt'), d.iptablesSave)
    console.log(`${dir}: ${d.json.length} bytes of JSON`)
  }
}

/** Rules of an .nft source file, by `family table chain`, in order (sets, maps and chain declarations skipped). */
export function sourceRules(source: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let table: string | undefined
  let chain: string | undefined
  let depth = 0
  let skip = 0 // inside a set/map/counter block
  for (const raw of source.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim()
    if (line === '' || line === 'flush ruleset') continue
    const t = /^table\s+(\w+)\s+(\S+)\s*\{$/.exec(line)
    if (t && depth === 0) {
      table = `${t[1]} ${t[2]}`
      depth = 1
      continue
    }
    const c = /^chain\s+(\S+)\s*\{(.*)\}?$/.exec(line)
    if (c && depth === 1) {
      chain = c[1]!
      out.set(`${table} ${chain}`, out.get(`${table} ${chain}`) ?? [])
      depth = 2
      if (line.endsWith('}') && !line.endsWith('{')) depth = 1
      continue
    }
    if (depth === 1 && /^(set|map|counter|quota|limit|flowtable)\s+\S+\s*\{/.test(line)) {
      skip = 1
      depth = 2
      if (line.endsWith('}')) {
        skip = 0
        depth = 1
      }
      continue
    }
    if (line === '}') {
      depth--
      if (depth === 1) {
        chain = undefined
        skip = 0
      }
      if (depth === 0) table = undefined
      continue
    }
    if (skip || !chain) continue
    if (/^type\s+\w+\s+hook\s/.test(line) || /^policy\s/.test(line)) continue
    out.get(`${table} ${chain}`)!.push(line)
  }
  return out
}

/** What differs between how a rule may be written and how nft prints it, and does not change its meaning. */
export function normalizeRule(text: string): string {
  return text
    .replace(/;\s*$/, '')
    .replace(/"/g, '')
    .replace(/ packets \d+ bytes \d+/g, '')
    .replace(/(^|\s)to(?=\s)/g, '')
    .replace(/\s+/g, ' ')
    .trim()
}

export interface ListedChain {
  /** the `type ... hook ... priority ...; policy ...;` line of a base chain */
  header?: string
  rules: string[]
}

/** Chains and their rule lines as `nft list ruleset` prints them, by `family table chain`. */
export function listingRules(listing: string): Map<string, ListedChain> {
  const out = new Map<string, ListedChain>()
  let table: string | undefined
  let chain: ListedChain | undefined
  let skipping = false
  for (const raw of listing.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const t = /^table (\w+) (\S+) \{$/.exec(line)
    if (t && !raw.startsWith('\t')) {
      table = `${t[1]} ${t[2]}`
      continue
    }
    if (raw.startsWith('\t') && !raw.startsWith('\t\t')) {
      const c = /^chain (\S+) \{$/.exec(line)
      if (c) {
        chain = {rules: []}
        out.set(`${table} ${c[1]}`, chain)
        continue
      }
      if (line === '}') {
        chain = undefined
        skipping = false
        continue
      }
      if (line.endsWith('{')) {
        skipping = true
        continue
      }
    }
    if (!chain || skipping || !raw.startsWith('\t\t')) continue
    if (/^type \w+ hook \w+/.test(line)) chain.header = line
    else chain.rules.push(line)
  }
  return out
}

/**
 * Whether `printed` (lvsdoctor's text for a rule) matches `listed` (nft's). nft's own listing translates iptables-nft
 * xt expressions with libxtables; lvsdoctor prints them as `xt match NAME`, which matches any text there.
 */
export function sameRuleText(printed: string, listed: string): boolean {
  if (!printed.includes('xt ')) return printed === listed
  const parts = printed.split(/\s*xt (?:match|target|watcher) \S+\s*/)
  const re = new RegExp('^' + parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*?') + '$')
  return re.test(listed.replace(/\s+/g, ' '))
}
