// node bench/diff-check/parse-dump.mjs DIST OUT FILES...: parse each iptables-save file with DIST's parser and write
// the model (own and prototype getters, Maps, bigints) or the error as canonical JSON: OUT/<file>.json.
import {readFileSync, writeFileSync, mkdirSync} from 'node:fs'
import {basename} from 'node:path'
const [dist, out, ...files] = process.argv.slice(2)
const {parseIptablesSave} = await import(dist + '/snapshot/parsers/iptables-save.js')
mkdirSync(out, {recursive: true})
const norm = (v) => {
  if (typeof v === 'bigint') return 'big:' + v.toString()
  if (v instanceof Map) return {__map: [...v].map(([k, x]) => [k, norm(x)])}
  if (v instanceof Set) return {__set: [...v].map(norm)}
  if (Array.isArray(v)) return v.map(norm)
  if (v && typeof v === 'object') {
    const o = {}
    const keys = new Set()
    for (let p = v; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
      for (const k of Object.getOwnPropertyNames(p)) if (k !== 'constructor') keys.add(k)
    }
    for (const k of [...keys].sort()) { const x = v[k]; if (typeof x !== 'function' && x !== undefined) o[k] = norm(x) }
    return o
  }
  return v
}
for (const f of files) {
  const text = readFileSync(f, 'utf8')
  let r
  try { r = norm(parseIptablesSave(text, basename(f), basename(f).includes('ip6') ? 6 : 4)) } catch (e) { r = {error: String(e && e.message), name: e && e.name, line: e && e.line} }
  writeFileSync(`${out}/${basename(f)}.json`, JSON.stringify(r, null, 0).replace(/\},\{/g, '},\n{'))
}
