// node bench/diff-check/run-checks.mjs DIST CASES OUT: check every case directory (its subdirectories are the hosts)
// in-process with DIST's services/check.js and write the report of each as OUT/<case>.json.
import {readdirSync, writeFileSync, mkdirSync} from 'node:fs'
const [dist, casesDir, outDir] = process.argv.slice(2)
const {checkPaths} = await import(dist + '/services/check.js')
mkdirSync(outDir, {recursive: true})
for (const c of readdirSync(casesDir).sort()) {
  const hosts = readdirSync(`${casesDir}/${c}`, {withFileTypes: true}).filter((d) => d.isDirectory()).map((d) => `${casesDir}/${c}/${d.name}`)
  let r
  try { r = checkPaths(hosts, {version: 'x'}) } catch (e) { r = {threw: String(e?.message)} }
  writeFileSync(`${outDir}/${c}.json`, JSON.stringify(r, null, 1))
}
