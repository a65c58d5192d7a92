// Post-build (run after tsc): writes oclif.manifest.json so that start-up does not import every command (see
// STYLE.md: oclif template), the cached root help, and the bundled check path (dist/bundle/).
import {Config} from '@oclif/core'
import {readFileSync, writeFileSync, rmSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {dirname, join} from 'node:path'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
rmSync(join(root, 'oclif.manifest.json'), {force: true})
const config = await Config.load(root)
const manifest = config.rootPlugin.manifest
writeFileSync(join(root, 'oclif.manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
console.error(`oclif.manifest.json: ${Object.keys(manifest.commands).length} commands`)

// The root help, rendered by oclif itself off a terminal, for bin/run.js to print without loading oclif.
// The first line keys it to what the rendering depends on (the VERSION line, the wrapping width).
import {execFileSync} from 'node:child_process'
const help = execFileSync(process.execPath, [join(root, 'bin/run.js'), '--help'], {
  encoding: 'utf8',
  env: {...process.env, LVSDOCTOR_NO_HELP_CACHE: '1'},
  stdio: ['ignore', 'pipe', 'inherit'],
})
writeFileSync(join(root, 'dist/root-help.txt'), `${process.version} ${process.platform} ${process.arch} -\n${help}`)

// The `check` path as one set of ES modules (dist/bundle/), which bin/run.js loads instead of the ~60 modules of
// dist/ when it is newer than them: resolving and linking each module costs Node's ESM loader more than compiling
// it (importing the check path: ~40 ms and 13 MB as separate modules, ~17 ms and 7 MB bundled). Same code, only
// linked ahead of time; npm packages stay external. Relative URLs built from import.meta.url keep working because
// dist/bundle/ is as deep as every other directory of dist/ (see src/capture/live.ts, src/services/rules.ts).
import {buildSync} from 'esbuild'
rmSync(join(root, 'dist/bundle'), {recursive: true, force: true})
buildSync({
  entryPoints: [join(root, 'dist/cli/fast-check.js')],
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  keepNames: true,
  outdir: join(root, 'dist/bundle'),
  logLevel: 'warning',
})

// `check` of snapshots given on the command line also as one CommonJS script, dist/bundle/check.cjs, which bin/run.js
// compiles with a V8 code cache (dist/bundle/check.cjs.cache): on Node 20 a code cache can be given to a script
// (vm.Script cachedData) but not to an ES module, and compiling the check path's ~60 modules as they run was a fifth
// of a small check's CPU. It is the same code as dist/bundle/ (the same esbuild input); import.meta.url is the
// script's own URL (it is as deep in dist/ as the ES modules). chalk (an ES module, which require() cannot load on
// Node 20) is bundled into it for the text and markdown reports; the other npm imports (execa, listr2: ES modules too)
// sit in code only the live snapshot runs, which bin/run.js leaves to the ES modules.
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
buildSync({
  entryPoints: [join(root, 'dist/cli/fast-check.js')],
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: Object.keys({...pkg.dependencies, ...pkg.optionalDependencies}).filter((d) => d !== 'chalk'),
  keepNames: true,
  outfile: join(root, 'dist/bundle/check.cjs'),
  define: {'import.meta.url': '__lvsdoctorUrl'},
  banner: {js: 'var __lvsdoctorUrl = require("node:url").pathToFileURL(__filename).href;'},
  logLevel: 'warning',
})
// The code cache holds the bytecode of the functions a check ran: bin/run.js writes it after checking a fixture
// (with the V8 flags it sets itself: a cache made under other flags would be rejected), as text, the default
// report (--json adds one JSON.stringify). Functions the fixture did
// not run are compiled when first called, as without a cache; a stale or rejected cache only costs that.
// A check that fails here leaves no cache (the build goes on: bin/run.js then compiles the script as it runs).
rmSync(join(root, 'dist/bundle/check.cjs.cache'), {force: true})
try {
  execFileSync(process.execPath, [join(root, 'bin/run.js'), 'check', '--fail-on', 'none', join(root, 'fixtures/rules/dnat-forward-drop')], {
    env: {...process.env, LVSDOCTOR_WRITE_CODE_CACHE: '1'},
    stdio: ['ignore', 'ignore', 'inherit'],
  })
} catch (e) {
  console.error(`dist/bundle/check.cjs.cache not written: ${e.message}`)
}
