#!/usr/bin/env node
// Start-up is most of a short command's time: @oclif/core is loaded with require (an ESM import of it would
// first have Node scan its CommonJS source for export names), and its index's Node version check, which loads
// all of semver (~40 ms), is done here with the major number instead (package.json: engines.node >= 20).
import {createRequire} from 'node:module'

if (Number(process.versions.node.split('.')[0]) < 20) process.emitWarning(`Node version must be >=20 to use this CLI. Current node version: ${process.versions.node}`)
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1'
const {execute} = createRequire(import.meta.url)('@oclif/core')

await execute({dir: import.meta.url})
