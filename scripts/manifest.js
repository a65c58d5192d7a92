// Writes oclif.manifest.json so that start-up does not import every command (see STYLE.md: oclif template).
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
