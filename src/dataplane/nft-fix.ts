// Applies nft fix commands (the ones check writes: nft-firewall.ts) to the text of a COPY of a snapshot's
// nft-ruleset.json, as `nft` would change the ruleset that `nft -j list ruleset` then prints:
//   nft add table FAMILY NAME
//   nft add chain FAMILY TABLE NAME ['{ type T hook H priority P; policy accept|drop; }']
//   nft add|insert rule FAMILY TABLE CHAIN [position HANDLE] RULE     (add: after HANDLE or at the end;
//                                                                     insert: before HANDLE or at the start)
//   nft replace rule FAMILY TABLE CHAIN handle HANDLE RULE
//   nft delete rule FAMILY TABLE CHAIN handle HANDLE
// A rule's text becomes libnftables JSON statement by statement: a statement the old rule (replace) printed
// the same way keeps its JSON; others are read by a small reader of the statements check writes (selectors,
// ct state, marks, verdicts, reject, NAT, counter, log, notrack, comment). Anything else is refused with the
// reason, never guessed. New rules get the table's next handle, as the kernel gives them.
import {parseIp, parsePrefix} from '../model/ip.js'
import {formatNftStmt} from '../model/nft.js'
import {parseNftJson} from '../snapshot/parsers/nft-json.js'

export class NftFixError extends Error {}

type Json = null | boolean | number | string | Json[] | {[k: string]: Json}
type JObj = {[k: string]: Json}

const FAMILIES = new Set(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'])

/** Splits a rule text into words, keeping "quoted strings" and { sets } whole. */
function words(text: string): string[] {
  const out: string[] = []
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (/\s/.test(c)) {
      i++
      continue
    }
    if (c === '"') {
      const j = text.indexOf('"', i + 1)
      if (j < 0) throw new NftFixError(`unterminated string in: ${text}`)
      out.push(text.slice(i, j + 1))
      i = j + 1
      continue
    }
    if (c === '{') {
      let depth = 0
      let j = i
      for (; j < text.length; j++) {
        if (text[j] === '{') depth++
        else if (text[j] === '}' && --depth === 0) break
      }
      if (j >= text.length) throw new NftFixError(`unbalanced { in: ${text}`)
      out.push(text.slice(i, j + 1))
      i = j + 1
      continue
    }
    let j = i
    while (j < text.length && !/\s/.test(text[j]!)) j++
    out.push(text.slice(i, j))
    i = j
  }
  return out
}

function unquote(w: string): string {
  return w.startsWith('"') && w.endsWith('"') ? w.slice(1, -1) : w
}

/** A constant as libnftables JSON: numbers, hex, addresses, prefixes, ranges, names. */
function constant(w: string): Json {
  if (/^0x[0-9a-f]+$/i.test(w)) return parseInt(w, 16)
  if (/^\d+$/.test(w)) return Number(w)
  if (w.startsWith('"')) return unquote(w)
  const pfx = /\//.test(w) ? parsePrefix(w) : undefined
  if (pfx) return {prefix: {addr: w.slice(0, w.indexOf('/')), len: pfx.len}}
  const m = /^([^-]+)-([^-]+)$/.exec(w)
  if (m && (/^\d+$/.test(m[1]!) || parseIp(m[1]!))) return {range: [constant(m[1]!), constant(m[2]!)]}
  return w
}

function setOf(w: string): Json {
  const inner = w.slice(1, -1).trim()
  const items = inner.split(',').map((x) => x.trim()).filter(Boolean)
  return {set: items.map(constant)}
}

function value(w: string): Json {
  return w.startsWith('{') ? setOf(w) : constant(w)
}

const PAYLOAD_PROTOS = new Set(['ip', 'ip6', 'tcp', 'udp', 'sctp', 'th', 'icmp', 'icmpv6'])
const META_UNQUALIFIED = new Set(['iif', 'oif', 'iifname', 'oifname'])
const OPS = new Set(['==', '!=', '<', '>', '<=', '>='])

/** Reads one statement at words[i]; returns the JSON and the next index (or a comment for the rule). */
function statement(ws: readonly string[], i: number): {json?: Json; comment?: string; next: number} {
  const w = ws[i]!
  const at = (k: number) => ws[i + k]
  const match = (left: Json, k: number, implicitIn = false): {json: Json; next: number} => {
    let op = '=='
    let j = i + k
    if (OPS.has(ws[j] ?? '')) op = ws[j++]!
    const v = ws[j]
    if (v === undefined) throw new NftFixError(`a value after ${ws.slice(i, j).join(' ')}`)
    let right = value(v)
    if (implicitIn && op === '==' && !v.startsWith('{')) {
      op = 'in'
      if (v.includes(',')) right = v.split(',')
    }
    return {json: {match: {op, left, right}}, next: j + 1}
  }
  if (PAYLOAD_PROTOS.has(w) && at(1) && /^(saddr|daddr|sport|dport|protocol|nexthdr|type)$/.test(at(1)!)) {
    return match({payload: {protocol: w, field: at(1)!}}, 2)
  }
  if (META_UNQUALIFIED.has(w)) return match({meta: {key: w}}, 1)
  if (w === 'meta' && at(1) && at(2) !== 'set') {
    if (at(1) === 'mark' && at(2) === '&') {
      const mask = constant(at(3)!)
      const m = match({'&': [{meta: {key: 'mark'}}, mask]}, 4)
      return m
    }
    return match({meta: {key: at(1)!}}, 2)
  }
  if (w === 'ct' && at(1) && at(2) !== 'set') {
    const key = at(1)!
    if (key === 'state' || key === 'status') return match({ct: {key}}, 2, true)
    return match({ct: {key}}, 2)
  }
  if ((w === 'meta' || w === 'ct') && at(1) === 'mark' && at(2) === 'set') {
    const v = at(3)
    if (v === undefined) throw new NftFixError('a value after mark set')
    let val: Json
    let next = i + 4
    if ((v === 'ct' || v === 'meta') && at(4) === 'mark') {
      val = {[v]: {key: 'mark'}}
      next = i + 5
    } else val = constant(v)
    return {json: {mangle: {key: {[w]: {key: 'mark'}}, value: val}}, next}
  }
  switch (w) {
    case 'accept':
    case 'drop':
    case 'return':
    case 'continue':
    case 'queue':
    case 'notrack':
      return {json: {[w]: null}, next: i + 1}
    case 'jump':
    case 'goto':
      return {json: {[w]: {target: at(1)!}}, next: i + 2}
    case 'counter':
      // `counter packets N bytes M` as nft lists it: the kernel starts a new counter at 0
      if (at(1) === 'packets' && at(3) === 'bytes') return {json: {counter: {packets: 0, bytes: 0}}, next: i + 5}
      return {json: {counter: {packets: 0, bytes: 0}}, next: i + 1}
    case 'log':
      if (at(1) === 'prefix') return {json: {log: {prefix: unquote(at(2)!)}}, next: i + 3}
      return {json: {log: null}, next: i + 1}
    case 'comment':
      return {comment: unquote(at(1) ?? '""'), next: i + 2}
    case 'reject':
      if (at(1) !== 'with') return {json: {reject: null}, next: i + 1}
      if (at(2) === 'tcp' && at(3) === 'reset') return {json: {reject: {type: 'tcp reset'}}, next: i + 4}
      return {json: {reject: {type: at(2)!, expr: at(3)!}}, next: i + 4}
    case 'masquerade':
    case 'redirect': {
      if (at(1) === 'to' && at(2)?.startsWith(':')) return {json: {[w]: {port: constant(at(2)!.slice(1))}}, next: i + 3}
      return {json: {[w]: null}, next: i + 1}
    }
    case 'snat':
    case 'dnat': {
      let j = i + 1
      let family: string | undefined
      if (ws[j] === 'ip' || ws[j] === 'ip6') family = ws[j++]
      if (ws[j] !== 'to') throw new NftFixError(`${w} needs "to"`)
      const target = ws[j + 1]
      if (!target) throw new NftFixError(`${w} to needs an address`)
      const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+(?:-\d+)?))?$/.exec(target)
      if (!m) throw new NftFixError(`${w} to ${target} is not an address[:port]`)
      const obj: JObj = {}
      if (family) obj.family = family
      obj.addr = constant(m[1] ?? m[2]!)
      if (m[3]) obj.port = constant(m[3])
      return {json: {[w]: obj}, next: j + 2}
    }
  }
  throw new NftFixError(`"${ws.slice(i).join(' ')}": a statement trace --fix cannot read (it reads the rules check writes)`)
}

/**
 * A rule text as libnftables JSON statements. `reuse` maps the text of an existing rule's statements (as
 * formatNftStmt prints them) to their JSON, for statements the reader does not know.
 */
export function ruleJson(text: string, reuse: readonly {text: string; json: Json}[] = []): {expr: Json[]; comment?: string} {
  const ws = words(text)
  const expr: Json[] = []
  let comment: string | undefined
  let i = 0
  outer: while (i < ws.length) {
    for (const r of reuse) {
      const rw = words(r.text)
      if (rw.length > 0 && rw.every((x, k) => ws[i + k] === x)) {
        expr.push(r.json)
        i += rw.length
        continue outer
      }
    }
    const s = statement(ws, i)
    if (s.json !== undefined) expr.push(s.json)
    if (s.comment !== undefined) comment = s.comment
    i = s.next
  }
  if (expr.length === 0) throw new NftFixError('an empty rule')
  return comment === undefined ? {expr} : {expr, comment}
}

// ---- the document ---------------------------------------------------------------------------------------

interface Doc {
  readonly items: JObj[]
}

function load(text: string | undefined): Doc {
  if (text === undefined || text.trim() === '') return {items: [{metainfo: {json_schema_version: 1}}]}
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    throw new NftFixError('nft-ruleset.json of the snapshot is not valid JSON')
  }
  const list = (v as {nftables?: unknown}).nftables
  if (!Array.isArray(list)) throw new NftFixError('nft-ruleset.json has no "nftables" array')
  return {items: list as JObj[]}
}

function obj(o: JObj, key: string): JObj | undefined {
  const v = o[key]
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as JObj) : undefined
}

function findTable(doc: Doc, family: string, table: string): number {
  return doc.items.findIndex((o) => obj(o, 'table')?.family === family && obj(o, 'table')?.name === table)
}

function findChain(doc: Doc, family: string, table: string, chain: string): number {
  return doc.items.findIndex((o) => {
    const c = obj(o, 'chain')
    return c?.family === family && c.table === table && c.name === chain
  })
}

function ruleIndexes(doc: Doc, family: string, table: string, chain: string): number[] {
  const out: number[] = []
  doc.items.forEach((o, i) => {
    const r = obj(o, 'rule')
    if (r?.family === family && r.table === table && r.chain === chain) out.push(i)
  })
  return out
}

/**
 * The copy's record of the highest handle the table has given (a key of the table object that the JSON reader
 * ignores): the kernel's per-table handle counter (table->hgenerator, shared by its chains, rules, sets and
 * objects: nf_tables_alloc_handle) never goes back, so a rule deleted from the end of a table does not give its
 * handle to the next object.
 */
const HGEN = 'lvsdoctor_handles_given'

function highestHandle(doc: Doc, family: string, table: string): number {
  let max = 0
  for (const o of doc.items) {
    const t = obj(o, 'table')
    if (t && t.family === family && t.name === table && typeof t[HGEN] === 'number') max = Math.max(max, t[HGEN] as number)
    for (const k of ['rule', 'chain', 'set', 'map']) {
      const x = obj(o, k)
      if (x && x.family === family && x.table === table && typeof x.handle === 'number') max = Math.max(max, x.handle)
    }
  }
  return max
}

/** Keeps the table's highest handle given before an object leaves the copy (see HGEN). */
function rememberHandles(doc: Doc, family: string, table: string): void {
  const t = doc.items.map((o) => obj(o, 'table')).find((x) => x?.family === family && x.name === table)
  if (t) t[HGEN] = highestHandle(doc, family, table)
}

function nextHandle(doc: Doc, family: string, table: string): number {
  return highestHandle(doc, family, table) + 1
}

/** The statements of an existing rule, as printed and as JSON (for replace to keep what it does not change). */
function reuseOf(rule: JObj, family: string): {text: string; json: Json}[] {
  const exprs = (rule.expr as Json[]) ?? []
  try {
    const doc = JSON.stringify({nftables: [{table: {family, name: 't', handle: 1}}, {chain: {family, table: 't', name: 'c', handle: 2}}, {rule: {family, table: 't', chain: 'c', handle: 3, expr: exprs}}]})
    const rs = parseNftJson(doc, 'reuse')
    const stmts = rs.tables[0]?.chains.get('c')?.rules[0]?.stmts ?? []
    if (stmts.length !== exprs.length) return []
    return stmts.map((s, k) => ({text: formatNftStmt(s, family as 'inet'), json: exprs[k]!}))
  } catch {
    return []
  }
}

/** Parses the `{ type filter hook input priority 0; policy drop; }` of `nft add chain`. */
function chainSpec(text: string): {type: string; hook: string; prio: number; policy: string; dev?: string} {
  const t = text.replace(/^\{|\}$/g, '').split(';').map((s) => s.trim()).filter(Boolean)
  let type: string | undefined
  let hook: string | undefined
  let prio: number | undefined
  let policy = 'accept'
  let dev: string | undefined
  for (const part of t) {
    const w = part.split(/\s+/)
    if (w[0] === 'type') {
      type = w[1]
      if (w[2] === 'hook') hook = w[3]
      let k = 4
      if (w[k] === 'device') {
        dev = unquote(w[k + 1] ?? '')
        k += 2
      }
      if (w[k] === 'priority') {
        const p = w.slice(k + 1).join(' ')
        const named: Record<string, number> = {raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100}
        const m = /^(-?\d+|[a-z]+)\s*(?:([+-])\s*(\d+))?$/.exec(p)
        if (!m) throw new NftFixError(`priority ${p}`)
        const base = /^-?\d+$/.test(m[1]!) ? Number(m[1]) : named[m[1]!]
        if (base === undefined) throw new NftFixError(`priority ${p}`)
        prio = m[2] ? (m[2] === '+' ? base + Number(m[3]) : base - Number(m[3])) : base
      }
    } else if (w[0] === 'policy') policy = w[1] ?? 'accept'
  }
  if (!type || !hook || prio === undefined) throw new NftFixError(`a base chain spec "type T hook H priority P;", found ${text}`)
  return {type, hook, prio, policy, dev}
}

/** Applies one `nft ...` command (its words after `nft`) to the JSON text; returns the new text. */
export function editNftRuleset(text: string | undefined, argv: readonly string[]): string {
  let a = argv.filter((w) => !/^(-a|--handle|-e|--echo|-j|--json)$/.test(w))
  if (a.length === 1 && a[0]!.includes(' ')) a = words(a[0]!)
  const [verb, what, family, table] = a
  if (!verb || !what) throw new NftFixError('nft needs a command (add, insert, replace, delete) and an object')
  if (!family || !FAMILIES.has(family)) throw new NftFixError(`nft ${verb} ${what}: a family (ip, ip6, inet...) first, found ${family ?? 'nothing'}`)
  if (!table) throw new NftFixError(`nft ${verb} ${what}: a table name`)
  const doc = load(text)
  const save = () => JSON.stringify({nftables: doc.items}) + '\n'
  if (what === 'table') {
    if (verb !== 'add' && verb !== 'create') throw new NftFixError(`nft ${verb} table is not applied by trace --fix`)
    if (findTable(doc, family, table) >= 0) {
      if (verb === 'create') throw new NftFixError(`table ${family} ${table} exists`)
      return save()
    }
    const handle = Math.max(0, ...doc.items.map((o) => Number(obj(o, 'table')?.handle ?? 0))) + 1
    doc.items.push({table: {family, name: table, handle}})
    return save()
  }
  if (findTable(doc, family, table) < 0) throw new NftFixError(`no table ${family} ${table} in nft-ruleset.json (Error: No such file or directory)`)
  const chain = a[4]
  if (!chain) throw new NftFixError(`nft ${verb} ${what}: a chain name`)
  if (what === 'chain') {
    if (verb !== 'add' && verb !== 'create') throw new NftFixError(`nft ${verb} chain is not applied by trace --fix`)
    const spec = a.slice(5).join(' ').trim()
    const exists = findChain(doc, family, table, chain)
    if (exists >= 0) {
      if (verb === 'create') throw new NftFixError(`chain ${chain} exists`)
      return save()
    }
    const c: JObj = {family, table, name: chain, handle: nextHandle(doc, family, table)}
    if (spec) {
      const s = chainSpec(spec)
      c.type = s.type
      c.hook = s.hook
      c.prio = s.prio
      c.policy = s.policy
      if (s.dev) c.dev = s.dev
    }
    // after the table's last object
    let at = doc.items.length
    for (let i = doc.items.length - 1; i >= 0; i--) {
      const o = doc.items[i]!
      const x = obj(o, 'table') ?? obj(o, 'chain') ?? obj(o, 'rule') ?? obj(o, 'set') ?? obj(o, 'map')
      if (x && x.family === family && (x.table === table || (obj(o, 'table') && x.name === table))) {
        at = i + 1
        break
      }
    }
    doc.items.splice(at, 0, {chain: c})
    return save()
  }
  if (what !== 'rule') throw new NftFixError(`nft ${verb} ${what} is not applied by trace --fix (only table, chain, rule)`)
  const ci = findChain(doc, family, table, chain)
  if (ci < 0) throw new NftFixError(`no chain ${chain} in table ${family} ${table}`)
  const rules = ruleIndexes(doc, family, table, chain)
  const byHandle = (h: string | undefined, kw: string) => {
    if (!h || !/^\d+$/.test(h)) throw new NftFixError(`${kw} needs a rule handle, found ${h ?? 'nothing'}`)
    const i = rules.find((k) => obj(doc.items[k]!, 'rule')!.handle === Number(h))
    if (i === undefined) throw new NftFixError(`no rule with handle ${h} in ${family} ${table} ${chain} (Error: Could not process rule: No such file or directory)`)
    return i
  }
  let rest = a.slice(5)
  switch (verb) {
    case 'add':
    case 'insert': {
      let at: number
      if (rest[0] === 'position' || rest[0] === 'handle') {
        const i = byHandle(rest[1], rest[0])
        rest = rest.slice(2)
        at = verb === 'add' ? i + 1 : i
      } else if (rest[0] === 'index') throw new NftFixError('nft ... index N is not applied by trace --fix (position HANDLE is)')
      else at = verb === 'add' ? (rules.length ? rules.at(-1)! + 1 : ci + 1) : rules.length ? rules[0]! : ci + 1
      const r = ruleJson(rest.join(' '))
      doc.items.splice(at, 0, {rule: {family, table, chain, handle: nextHandle(doc, family, table), ...r}})
      return save()
    }
    case 'replace': {
      if (rest[0] !== 'handle') throw new NftFixError('nft replace rule needs "handle N"')
      const i = byHandle(rest[1], 'handle')
      const old = obj(doc.items[i]!, 'rule')!
      const r = ruleJson(rest.slice(2).join(' '), reuseOf(old, family))
      doc.items[i] = {rule: {family, table, chain, handle: old.handle, ...r}}
      return save()
    }
    case 'delete': {
      if (rest[0] !== 'handle') throw new NftFixError('nft delete rule needs "handle N"')
      const at = byHandle(rest[1], 'handle')
      rememberHandles(doc, family, table)
      doc.items.splice(at, 1)
      return save()
    }
  }
  throw new NftFixError(`nft ${verb} is not applied by trace --fix (only add, insert, replace, delete)`)
}
