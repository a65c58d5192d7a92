#!/usr/bin/env node
// Runs every benchmark in bench/ one after the other and lets each print its figures (`npm run bench`, which
// builds first). Benchmarks are not timed tests: they print, they do not fail on a slow machine.
import {spawnSync} from 'node:child_process'
import {readdirSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {loadavg} from 'node:os'

const here = dirname(fileURLToPath(import.meta.url))
const only = process.argv.slice(2)
// generators and helpers are imported by the benches, not run
const isBench = (f) => /\.(js|ts)$/.test(f) && f !== 'run-all.js' && !/gen|helper/.test(f)
for (const f of readdirSync(here).filter(isBench).sort()) {
  if (only.length && !only.some((o) => f.includes(o))) continue
  console.log(`\n=== ${f} (load average ${loadavg().map((l) => l.toFixed(2)).join(' ')})`)
  const cmd = f.endsWith('.ts') ? ['npx', ['tsx', join(here, f)]] : [process.execPath, [join(here, f)]]
  const r = spawnSync(cmd[0], cmd[1], {stdio: 'inherit'})
  if (r.status !== 0) console.log(`(${f} exited ${r.status ?? r.signal})`)
}
