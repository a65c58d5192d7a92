// The iptables-save parser against its reference (iptables-save-reference.ts, the parser before the performance
// rewrite): on every dump of the tree and the corpus, on generated kube-proxy dumps, on random dumps and on
// mutated copies of real ones, both must build the same model (every field, Locs included) or throw the same
// ParseError (file, line, expected, found), with the same notModelled list.
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {generateKubeProxyDump} from '../../bench/gen-kube-proxy.js'
import {ParseError} from '../../src/model/source.js'
import {parseIptablesSave, tokenizeIptablesLine} from '../../src/snapshot/parsers/iptables-save.js'
import {CORPUS, familyOf} from './iptables-corpus.js'
import {parseIptablesSaveReference, tokenizeIptablesLineReference} from './iptables-save-reference.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))

/** A plain rendering of a model: own fields and getters (the rewrite makes loc, table and chain getters). */
function plain(x: unknown): unknown {
  if (x === null || typeof x !== 'object') return typeof x === 'bigint' ? `${x}n` : x
  if (x instanceof Map) return {map: [...x].map(([k, v]) => [k, plain(v)])}
  if (Array.isArray(x)) return x.map(plain)
  const keys = new Set(Object.keys(x))
  for (let p = Object.getPrototypeOf(x); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(p))) if (d.get) keys.add(k)
  }
  const out: Record<string, unknown> = {}
  for (const k of [...keys].sort()) {
    const v = (x as Record<string, unknown>)[k]
    if (v !== undefined) out[k] = plain(v)
  }
  return out
}

function outcome(parse: typeof parseIptablesSave, text: string, file: string, family: 4 | 6): unknown {
  try {
    return {model: plain(parse(text, file, family))}
  } catch (e) {
    if (e instanceof ParseError) return {error: {message: e.message, file: e.file, line: e.line, expected: e.expected, found: e.found}}
    return {crash: String(e)}
  }
}

function same(text: string, file = 'iptables-save.txt', family: 4 | 6 = 4): void {
  const want = outcome(parseIptablesSaveReference, text, file, family)
  const got = outcome(parseIptablesSave, text, file, family)
  expect(got).toEqual(want)
}

function dumpsOfTree(): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const f of readdirSync(d)) {
      const p = join(d, f)
      if (statSync(p).isDirectory()) {
        if (f !== 'node_modules' && !f.startsWith('.')) walk(p)
      } else if (/tables.*save/.test(f)) {
        out.push(p)
      }
    }
  }
  walk(join(REPO, 'fixtures'))
  return out.sort()
}

describe('iptables-save parser = reference parser', () => {
  const corpus = corpusFiles()

  it('on every corpus dump and every fixture dump (both families)', () => {
    const files = [...corpus.map((f) => join(CORPUS, f)), ...dumpsOfTree()]
    expect(files.length).toBeGreaterThan(100)
    for (const f of files) {
      const text = readFileSync(f, 'utf8')
      same(text, f.split('/').pop()!, familyOf(f))
      same(text, 'other-family', familyOf(f) === 4 ? 6 : 4)
    }
  })

  it('on generated kube-proxy dumps, with and without comments', () => {
    same(generateKubeProxyDump(3_000), 'kube')
    same(generateKubeProxyDump(3_000, {comments: true, seed: 7}), 'kube-comments')
  })

  it('on the edge cases the rewrite had to keep (empty chain names, chains named like targets, quotes, blanks)', () => {
    const cases = [
      '*filter\n-N ""\n-A "" -j ACCEPT\nCOMMIT\n',
      '*filter\n-N ""\n-A INPUT -j ACCEPT\n-A "" -j ACCEPT\nCOMMIT\n',
      '*filter\n-N ""\n-A INPUT -j ""\n-A INPUT -j ""\nCOMMIT\n',
      '*filter\n:DROP - [0:0]\n-A INPUT -g DROP\n-A INPUT -j DROP\n-A DROP -j ACCEPT\nCOMMIT\n',
      '*filter\n:X - [0:0]\n-A INPUT -j X\n-A INPUT -j X --foo\nCOMMIT\n',
      '*filter\n:X - [0:0]\n:Y - [0:0]\n-A X -j ACCEPT\n-A Y -j ACCEPT\n-A X -j DROP\n-A INPUT -j Y\nCOMMIT\n',
      '*filter\n:"a b" - [0:0]\n-A "a b" -j ACCEPT\n-A INPUT -j "a b"\nCOMMIT\n',
      '*filter\n-A INPUT -m statistic --foo -m statistic --mode random --probability 0.5 -j ACCEPT\nCOMMIT\n',
      '*filter\n-A INPUT -m statistic --mode random --probability 0.5 --bar 1 -j ACCEPT\nCOMMIT\n',
      '*nat\n-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.1:\n-A PREROUTING -j DNAT --to-destination 10.0.0.1/32:80\nCOMMIT\n',
      '*nat\n-A PREROUTING -j DNAT --to-destination 10.0.0.1-10.0.0.9:80-90 --random --persistent\nCOMMIT\n',
      '*filter\n-A INPUT -s 10.0.0.1 -s 10.0.0.1/32 -d 0010.0.0.1 -d 10.0.0.0/8 ! -s 1.2.3.4/0\nCOMMIT\n',
      '*filter\n-A INPUT -p tcp --dport 0080 --sport 65536\nCOMMIT\n',
      '*filter\n  -A INPUT -j ACCEPT  \r\n\t-A INPUT\t-j DROP\nCOMMIT\n',
      '*filter\n-A INPUT -j ACCEPT\r\r\nCOMMIT\n',
      '\ufeff*filter\n[1:2] -A INPUT -j ACCEPT\nCOMMIT',
    ]
    for (const c of cases) same(c)
  })

  it('on random dumps built from iptables-save words', () => {
    const words = [
      '!', '-A', '-N', '-P', '-s', '-d', '-i', '-o', '-p', '-m', '-j', '-g', '-c', '-f', '-4', '-6', '--source', 'tcp',
      'udp', 'icmp', 'all', '--dport', '--sport', '80', '443', '1:1024', '0', '65535', '10.0.0.1', '10.0.0.0/8',
      '10.1.2.3/33', '::1', 'multiport', '--dports', '80,443', 'conntrack', '--ctstate', 'NEW,ESTABLISHED', 'state',
      '--state', 'statistic', '--mode', 'random', 'nth', '--probability', '0.5', '--every', '2', 'comment', '--comment',
      '"a b"', '""', 'mark', '--mark', '0x1/0xff', 'ACCEPT', 'DROP', 'REJECT', '--reject-with', 'tcp-reset', 'DNAT',
      '--to-destination', '10.0.0.2:8080', '10.0.0.2', ':80', 'SNAT', '--to-source', 'MASQUERADE', '--random-fully',
      'MARK', '--set-xmark', '0x4000/0x4000', 'LOG', '--log-prefix', 'CT', '--notrack', 'INPUT', 'X', 'Y', 'KUBE-X',
      'eth0', 'addrtype', '--dst-type', 'LOCAL', 'AUDIT', '--foo', 'bar', '[0:0]', '[1:2]',
    ]
    const line = fc.array(fc.constantFrom(...words), {minLength: 0, maxLength: 10}).map((ws) => ws.join(' '))
    const head = fc.constantFrom(':X - [0:0]', ':Y - [0:0]', ':KUBE-X - [0:0]', ':INPUT ACCEPT [0:0]', ':X ACCEPT [0:0]', '-N Y')
    const rule = fc.tuple(fc.constantFrom('-A INPUT', '-A X', '-A Y', '-A KUBE-X', '[0:0] -A INPUT', '-A'), line).map(([a, b]) => `${a} ${b}`)
    const body = fc.array(fc.oneof({weight: 1, arbitrary: head}, {weight: 4, arbitrary: rule}), {maxLength: 8})
    const dump = fc.tuple(fc.constantFrom('*filter', '*nat', '*mangle'), body, fc.boolean()).map(([t, ls, commit]) => `${t}\n${ls.join('\n')}\n${commit ? 'COMMIT\n' : ''}`)
    fc.assert(fc.property(dump, fc.constantFrom<4 | 6>(4, 6), (text, family) => {
      same(text, 'random.txt', family)
    }), {numRuns: 400, seed: 20261121})
  })

  it('on real dumps with a few lines mutated', () => {
    const sources = ['tum-net-2013.iptables-save', 'medium-company.iptables-save', 'parser-test.iptables-save', 'home-user.iptables-save']
      .filter((f) => corpus.includes(f))
      .map((f) => readFileSync(join(CORPUS, f), 'utf8').split('\n'))
    expect(sources.length).toBeGreaterThan(0)
    const junk = ['!', '""', '"a b"', '\t', '  ', '\r', '-A', '-j', '-m', '-p', 'tcp', '--dport', '1.2.3.4/24', '::1', 'ACCEPT', 'DNAT', '-g', 'X']
    const mutation = fc.record({src: fc.nat(), line: fc.nat(), op: fc.nat(4), tok: fc.nat(), junk: fc.constantFrom(...junk)})
    fc.assert(fc.property(fc.array(mutation, {minLength: 1, maxLength: 3}), (ms) => {
      const lines = [...sources[ms[0]!.src % sources.length]!]
      for (const m of ms) {
        const li = m.line % lines.length
        const toks = lines[li]!.split(' ')
        const at = m.tok % (toks.length + 1)
        if (m.op === 0) toks.splice(at, 0, m.junk)
        else if (m.op === 1) toks.splice(at, 1)
        else if (m.op === 2) toks[at % toks.length] = m.junk
        else if (m.op === 3) lines.splice(li, 1)
        else toks.push(...lines[(li + 7) % lines.length]!.split(' ').slice(2))
        if (m.op !== 3) lines[li] = toks.join(' ')
      }
      same(lines.join('\n'), 'mutated.txt', 4)
    }), {numRuns: 300, seed: 7})
  })

  it('tokenises lines like the reference', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom('a', 'b', ' ', '  ', '\t', '"', '\\', '\r', '-', '!'), {maxLength: 14}), (cs) => {
      const l = cs.join('')
      expect(tokenizeIptablesLine(l)).toEqual(tokenizeIptablesLineReference(l))
    }), {numRuns: 500, seed: 3})
  })
})

function corpusFiles(): string[] {
  return readdirSync(CORPUS).filter((f) => /\.ip6?tables-save$/.test(f)).sort()
}
