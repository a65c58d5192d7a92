// Where a model item came from. Every parsed item keeps one, so that findings and traces can quote
// the exact line an engineer has to look at.

export interface Loc {
  /** file name inside the snapshot directory, e.g. `iptables-save.txt` */
  readonly file: string
  /** 1-based line number (JSON files: the line the item is printed on, usually 1) */
  readonly line: number
  /** the raw text of that line, or for JSON items a one-line rendering in the tool's own syntax */
  readonly text: string
}

/** Valid input that lvsdoctor keeps but does not interpret (a match module it does not model...). */
export interface NotModelled {
  readonly file: string
  readonly line: number
  readonly what: string
}

/**
 * Malformed input: the message says file, line, what was expected and what was found.
 * Parsers throw it; loaders catch it per file so the other files still load; commands exit 2.
 */
export class ParseError extends Error {
  readonly file: string
  readonly line: number | undefined
  readonly expected: string
  readonly found: string | undefined

  constructor(file: string, line: number | undefined, expected: string, found?: string) {
    const where = line === undefined ? file : `${file}:${line}`
    const shown = found === undefined ? '' : `, found ${JSON.stringify(found.length > 80 ? found.slice(0, 77) + '...' : found)}`
    super(`${where}: expected ${expected}${shown}`)
    this.name = 'ParseError'
    this.file = file
    this.line = line
    this.expected = expected
    this.found = found
  }
}

/** A problem with the user's input that is not a parse error (unreadable path, bad flag value...). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}
