#!/usr/bin/env node
// Start-up is most of a short command's time: @oclif/core is loaded with require (an ESM import of it would
// first have Node scan its CommonJS source for export names), and its index's Node version check, which loads
// all of semver (~40 ms), is done here with the major number instead (package.json: engines.node >= 20).
// `lvsdoctor --help` prints the root help that the build rendered with oclif itself (dist/root-help.txt, see
// scripts/manifest.js) when it was rendered for this Node version, platform and terminal width.
// This file is CommonJS (bin/package.json): as the program's entry an ES module makes Node load its ES module loader
// first (~10 ms CPU and ~2.7 MB, measured against the same two lines as CommonJS), which `--help` and `check` of
// snapshots given on the command line (dist/bundle/check.cjs) otherwise never need.
'use strict'
const {createRequire} = require('node:module')
const {readFileSync, statSync, writeFileSync} = require('node:fs')
const {dirname, join} = require('node:path')
const {fileURLToPath, pathToFileURL} = require('node:url')

/** this file's URL: paths of the package are relative to it */
const here = pathToFileURL(__filename)

const args = process.argv.slice(2)
// a reader that stops early (`lvsdoctor check | head`) is not an error: no stack trace, the exit code stands
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return
  process.stderr.write(`lvsdoctor: cannot write the output: ${err.message}\n`)
  process.exit(2)
})
if (args.length === 1 && (args[0] === '--help' || args[0] === '-h') && !process.env.LVSDOCTOR_NO_HELP_CACHE) {
  try {
    const cached = readFileSync(new URL('../dist/root-help.txt', here), 'utf8')
    const nl = cached.indexOf('\n')
    const key = `${process.version} ${process.platform} ${process.arch} ${process.stdout.isTTY ? process.stdout.columns : '-'}`
    if (cached.slice(0, nl) === key) {
      process.stdout.write(cached.slice(nl + 1))
      process.exit(0)
    }
  } catch {
    // no cache: oclif renders it
  }
}
void main()

async function main() {
  // `check` with arguments it knows exactly runs without oclif (src/cli/fast-check.ts); anything else falls through
  let done = false
  if (args[0] === 'check' && !process.env.LVSDOCTOR_NO_FAST_CHECK && Number(process.versions.node.split('.')[0]) >= 20) {
    // Peak memory: V8 doubles the young generation's semi-spaces from 1 MB up to 16 MB while a big dump is parsed
    // (three 16 MB spaces committed: a sixth of check's peak RSS on kube-proxy 100k). Nearly everything the parser
    // allocates is the model, which lives to the end, so a bigger nursery only copies it later: the semi-spaces stay
    // at their initial size (peak RSS 174 -> 149 MB there, CPU the same within noise). This is the one V8 setting
    // that still acts once the heap is set up (--max-semi-space-size, --max-old-space-size do not).
    // CPU: about 40% of a big check's CPU time was TurboFan compiling in V8's worker threads, not the check itself.
    // Inlining less into each optimised function (a budget of 300 bytes of bytecode instead of 920) makes those
    // compilations smaller: kube-proxy 100k, 4 A/B series of 8-12 runs, user+sys -67..-100 ms, main thread unchanged
    // within noise, peak RSS -3 MB; a budget of 150 or none slowed the main thread (~+75 ms). Read per compilation,
    // so it acts when set here.
    require('node:v8').setFlagsFromString('--semi-space-growth-factor=1 --max-inlined-bytecode-size-cumulative=300')
    // snapshots given on the command line: the check path as one script with its code cache
    let cached = loadCachedCheck()
    let fast = cached?.exports
    let parsed = fast?.parseFastCheckArgs(args.slice(1))
    // (the live snapshot loads npm packages that only the ES modules can import)
    if (parsed && parsed.paths.length === 0) cached = fast = parsed = undefined
    if (!cached) {
      // the bundle (scripts/manifest.js) unless a later tsc run left it stale
      let entry = '../dist/cli/fast-check.js'
      try {
        if (statSync(new URL('../dist/bundle/fast-check.js', here)).mtimeMs >= statSync(new URL(entry, here)).mtimeMs) entry = '../dist/bundle/fast-check.js'
      } catch {
        // no bundle
      }
      fast = await import(new URL(entry, here).href).catch(() => undefined)
      parsed = fast?.parseFastCheckArgs(args.slice(1))
    }
    if (fast && parsed) {
      // no process.exit(): stdout on a pipe is written asynchronously once the pipe is full, and must drain first
      process.exitCode = await fast.runFastCheck(parsed, new URL('../package.json', here))
      done = true
      if (cached && process.env.LVSDOCTOR_WRITE_CODE_CACHE) writeFileSync(`${cached.file}.cache`, cached.script.createCachedData())
    }
  }
  if (!done) await runOclif()
}

/**
 * dist/bundle/check.cjs (scripts/manifest.js), compiled with its V8 code cache: the bytecode of the functions a check
 * runs is read instead of compiled (tum-net-2013: CPU 0.23 -> 0.19 s, sargon 0.14 -> 0.11 s at load ~6.5). Undefined
 * when it is missing, older than dist/ (a later tsc run) or fails to load: the ES modules are used then.
 */
function loadCachedCheck() {
  try {
    const url = new URL('../dist/bundle/check.cjs', here)
    if (statSync(url).mtimeMs < statSync(new URL('../dist/cli/fast-check.js', here)).mtimeMs) return undefined
    const file = fileURLToPath(url)
    const source = readFileSync(file, 'utf8')
    let cachedData
    try {
      if (!process.env.LVSDOCTOR_WRITE_CODE_CACHE) cachedData = readFileSync(`${file}.cache`)
    } catch {
      // no cache: compiled as it runs
    }
    const requireThere = createRequire(url)
    // a cache V8 rejects (another Node version, other flags) is ignored: the script compiles as without one
    const script = new (require('node:vm').Script)(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {filename: file, cachedData})
    const mod = {exports: {}}
    script.runInThisContext()(mod.exports, requireThere, mod, file, dirname(file))
    return {exports: mod.exports, script, file}
  } catch {
    return undefined
  }
}

async function runOclif() {
  if (Number(process.versions.node.split('.')[0]) < 20) process.emitWarning(`Node version must be >=20 to use this CLI. Current node version: ${process.versions.node}`)
  process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1'
  const {execute} = require('@oclif/core')
  // the package's directory: oclif looks for the nearest package.json from there (from bin/run.js it would find
  // bin/package.json)
  await execute({dir: join(__dirname, '..')})
}
