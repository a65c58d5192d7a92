// Post-build (run after tsc): writes oclif.manifest.json so that start-up does not import every command (see
// STYLE.md: oclif template), the cached root help, and the bundled check path (dist/bundle/).
import {Config} from '@oclif/core'
import {writeFileSync, rmSync} from 'node:fs'
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
