// `lvsdoctor check` without oclif: starting @oclif/core and reading its manifest costs ~0.1 s and ~20 MB, which is
// most of a small check and a tenth of a big one. bin/run.js hands `check` argv here first; when every argument is
// one this parser knows exactly (the flags of src/commands/check.ts, in the forms oclif accepts), the check runs
// directly and prints and exits exactly as the oclif command would. Anything else (--help, an unknown flag, a
// repeated single flag, a value oclif would reject, `--`) returns undefined and oclif handles it, with its own
// messages. test/cli/fast-check.test.ts runs the same argv both ways and compares stdout, stderr and exit code.
import {readFileSync} from 'node:fs'
import {ParseError, UsageError} from '../model/source.js'
import type {Severity} from '../model/finding.js'

export interface FastCheckArgs {
  readonly paths: string[]
  readonly format: 'text' | 'json' | 'markdown'
  readonly failOn: Severity | 'none'
  readonly ignore: string[]
  readonly keep?: string
  readonly vips: string[]
  readonly proto: 'tcp' | 'udp'
  readonly client?: string
}

const FORMATS = ['text', 'json', 'markdown'] as const
const FAIL_ON = ['error', 'warning', 'info', 'none'] as const
const PROTOS = ['tcp', 'udp'] as const

/** The argv after `check`, or undefined when oclif must parse it (its messages for mistakes are the contract). */
export function parseFastCheckArgs(argv: readonly string[]): FastCheckArgs | undefined {
  const paths: string[] = []
  const ignore: string[] = []
  let json = false
  let format: string | undefined
  let failOn: string | undefined
  let keep: string | undefined
  const vips: string[] = []
  let proto: string | undefined
  let client: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (!a.startsWith('-')) {
      paths.push(a)
      continue
    }
    if (a === '--json') {
      if (json) return undefined
      json = true
      continue
    }
    const eq = a.indexOf('=')
    const name = eq < 0 ? a : a.slice(0, eq)
    if (!['--format', '--fail-on', '--ignore', '--keep', '--vip', '--proto', '--client'].includes(name)) return undefined
    let value: string
    if (eq >= 0) value = a.slice(eq + 1)
    else {
      const next = argv[i + 1]
      if (next === undefined || next.startsWith('-')) return undefined
      value = next
      i++
    }
    if (value === '') return undefined
    if (name === '--format') {
      if (format !== undefined || !(FORMATS as readonly string[]).includes(value)) return undefined
      format = value
    } else if (name === '--fail-on') {
      if (failOn !== undefined || !(FAIL_ON as readonly string[]).includes(value)) return undefined
      failOn = value
    } else if (name === '--keep') {
      if (keep !== undefined) return undefined
      keep = value
    } else if (name === '--proto') {
      if (proto !== undefined || !(PROTOS as readonly string[]).includes(value)) return undefined
      proto = value
    } else if (name === '--client') {
      if (client !== undefined) return undefined
      client = value
    } else if (name === '--vip') vips.push(value)
    else ignore.push(value)
  }
  return {
    paths,
    format: json ? 'json' : ((format ?? 'text') as FastCheckArgs['format']),
    failOn: (failOn ?? 'error') as FastCheckArgs['failOn'],
    ignore,
    ...(keep === undefined ? {} : {keep}),
    vips,
    proto: (proto ?? 'tcp') as FastCheckArgs['proto'],
    ...(client === undefined ? {} : {client}),
  }
}

/** Runs the check as src/commands/check.ts does and returns its exit code; errors as src/cli/base.ts prints them. */
export async function runFastCheck(args: FastCheckArgs, packageJson: URL): Promise<number> {
  try {
    const {version} = JSON.parse(readFileSync(packageJson, 'utf8')) as {version: string}
    const {runCheck} = await import('../services/check-command.js')
    return await runCheck(args.paths, {format: args.format, failOn: args.failOn, ignore: args.ignore, keep: args.keep, vips: args.vips, proto: args.proto, client: args.client, version})
  } catch (error) {
    const err = error as Error
    if (err instanceof ParseError || err instanceof UsageError) {
      process.stderr.write(`lvsdoctor: ${err.message}\n`)
      return 2
    }
    process.stderr.write(`lvsdoctor: internal error: ${err.message}\n`)
    if (process.env.DEBUG) process.stderr.write(`${err.stack}\n`)
    else process.stderr.write('(set DEBUG=1 for the stack trace, and please report it)\n')
    return 2
  }
}
