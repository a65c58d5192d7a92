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
