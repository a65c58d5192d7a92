// What every command shares: one table from outcome to exit code, and errors without stack traces.
import {Command, Errors} from '@oclif/core'
import {ParseError, UsageError} from '../model/source.js'

export const EXIT = {
  ok: 0,
  findings: 1,
  usage: 2,
  badInput: 2,
  collection: 2,
} as const

export abstract class BaseCommand extends Command {
  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (err instanceof ParseError || err instanceof UsageError) {
      process.stderr.write(`lvsdoctor: ${err.message}\n`)
      return this.exit(EXIT.badInput)
    }
    // oclif's own flag/argument errors carry exit 2 and a clean message
    if (err instanceof Errors.CLIError || err.oclif?.exit !== undefined) return super.catch(err)
    process.stderr.write(`lvsdoctor: internal error: ${err.message}\n`)
    if (process.env.DEBUG) process.stderr.write(`${err.stack}\n`)
    else process.stderr.write('(set DEBUG=1 for the stack trace, and please report it)\n')
    return this.exit(EXIT.usage)
  }
}
