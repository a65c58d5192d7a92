// Reads the JSON that `ip -j` prints: one or more top-level arrays (a file may hold `ip -j route ...` and
// `ip -j -6 route ...` one after the other), compact or pretty-printed (`ip -j -p`). Every element keeps the
// line it starts on, and malformed JSON is reported with the line of the first bad character.
import {ParseError} from '../../model/source.js'

export interface JsonItem {
  readonly value: unknown
  /** 1-based line where the element starts */
  readonly line: number
  /** which top-level array of the file it came from (0, 1, ...) */
  readonly array: number
}

/** Maps character offsets to 1-based line numbers. */
export class LineIndex {
  private readonly starts: number[] = [0]
  constructor(text: string) {
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.starts.push(i + 1)
  }
  line(offset: number): number {
    let lo = 0
    let hi = this.starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.starts[mid]! <= offset) lo = mid
      else hi = mid - 1
    }
    return lo + 1
  }
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d])

function describe(text: string, at: number): string {
  if (at >= text.length) return 'the end of the file'
  return text.slice(at, at + 20).split('\n')[0]!
}

/**
 * The elements of every top-level JSON array in `text`. `what` names the command for messages
 * (`ip -j route show table all`).
 */
export function jsonArrayItems(text: string, file: string, what: string): JsonItem[] {
  const lines = new LineIndex(text)
  const out: JsonItem[] = []
  let i = 0
  let arrays = 0
  const n = text.length
  const skipWs = (): void => {
    while (i < n && WS.has(text.charCodeAt(i))) i++
  }
  skipWs()
  if (i >= n) throw new ParseError(file, 1, `the JSON output of \`${what}\``, 'an empty file')
  while (i < n) {
    const start = i
    if (text[i] !== '[') {
      throw new ParseError(file, lines.line(i), `a JSON array (the output of \`${what}\`)`, describe(text, i))
    }
    // scan to the matching ']' noting where each element starts
    const starts: number[] = []
    let depth = 0
    let expectElement = false
    for (; i < n; i++) {
      const c = text.charCodeAt(i)
      if (c === 0x22 /* " */) {
        if (depth === 1 && expectElement) {
          starts.push(i)
          expectElement = false
        }
        i++
        while (i < n && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c /* \ */ ? 2 : 1
        if (i >= n) break
        continue
      }
      if (WS.has(c)) continue
      if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
        if (depth === 1 && expectElement) {
          starts.push(i)
          expectElement = false
        }
        depth++
        if (depth === 1) expectElement = true
        continue
      }
      if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
        depth--
        if (depth === 0) break
        continue
      }
      if (depth === 1 && c === 0x2c /* , */) {
        expectElement = true
        continue
      }
      if (depth === 1 && expectElement) {
        starts.push(i)
        expectElement = false
      }
    }
    if (i >= n) {
      throw new ParseError(file, lines.line(text.trimEnd().length), `the rest of the JSON array that starts on line ${lines.line(start)} (the file is truncated)`, 'the end of the file')
    }
    i++ // past ']'
    const chunk = text.slice(start, i)
    let value: unknown
    try {
      value = JSON.parse(chunk)
    } catch (e) {
      const at = start + (firstJsonError(chunk) ?? 0)
      throw new ParseError(file, lines.line(at), 'valid JSON', `${describe(text, at)} (${(e as Error).message.split(',')[0]})`)
    }
    const arr = value as unknown[]
    for (let k = 0; k < arr.length; k++) out.push({value: arr[k], line: lines.line(starts[k] ?? start), array: arrays})
    arrays++
    skipWs()
  }
  return out
}

/** The 1-based line of character offset `offset` of `text` (for one look-up; LineIndex answers many). */
export function lineAt(text: string, offset: number): number {
  let line = 1
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++
  return line
}

/** The first syntax error of a JSON text. */
export interface JsonError {
  /** where the error is seen */
  readonly offset: number
  /** where the token in error starts: `offset`, or before it (the backslash of a bad escape, a cut-off literal) */
  readonly token: number
  /** what was expected there; says "truncated?" when the text ends there */
  readonly expected: string
  /** the text at `offset`; undefined when the text ends there */
  readonly found?: string
}

/**
 * The offset of the first syntax error in `text` (where the token in error starts), or undefined when it is
 * valid. Node 20's JSON.parse messages do not always carry a position.
 */
export function firstJsonError(text: string): number | undefined {
  return locateJsonError(text)?.token
}

/**
 * The first syntax error in `text` (a strict JSON recogniser), or undefined when it is valid: for texts
 * JSON.parse rejected, as its messages differ between Node versions.
 */
export function locateJsonError(text: string): JsonError | undefined {
  let i = 0
  const n = text.length
  class Stop {
    constructor(readonly err: JsonError) {}
  }
  const fail = (expected: string, token = i): never => {
    if (i >= n) throw new Stop({offset: n, token, expected: `${expected} (the file ends here: truncated?)`})
    throw new Stop({offset: i, token, expected, found: text.slice(i, i + 20)})
  }
  const ws = (): void => {
    while (i < n && WS.has(text.charCodeAt(i))) i++
  }
  const str = (): void => {
    i++
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 0x22 /* " */) {
        i++
        return
      }
      if (c < 0x20) fail('a closing quote or an escaped control character')
      if (c === 0x5c /* \ */) {
        const at = i
        const e = text[i + 1]
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            i += 2
            fail('four hex digits after \\u', at)
          }
          i += 6
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2
        else {
          i++
          fail('a valid escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)', at)
        }
      } else i++
    }
    fail('a closing quote')
  }
  const key = (): void => {
    ws()
    if (text[i] !== '"') fail('a property name in double quotes')
    str()
    ws()
    if (text[i] !== ':') fail("':' after the property name")
    i++
  }
  // a value that is not an object or array
  const scalar = (): void => {
    if (text[i] === '"') return str()
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (m && m[0] !== '' && m[0] !== '-') {
      i += m[0].length
      return
    }
    for (const lit of ['true', 'false', 'null']) {
      if (text.startsWith(lit, i)) {
        i += lit.length
        return
      }
    }
    // a literal cut off by the end of the text, such as `tru`
    const rest = text.slice(i)
    if (rest !== '' && rest.length < 5 && ['true', 'false', 'null'].some((l) => l.startsWith(rest))) {
      const at = i
      i = n
      fail('a JSON value', at)
    }
    fail('a JSON value (object, array, string, number, true, false or null)')
  }
  // without recursion, so that no nesting overflows the call stack: the closing brackets of the open objects and
  // arrays are on `open`
  const document = (): void => {
    const open: string[] = []
    for (;;) {
      ws()
      const c = text[i]
      if (c === '{' || c === '[') {
        const close = c === '{' ? '}' : ']'
        i++
        ws()
        if (text[i] !== close) {
          open.push(close)
          if (close === '}') key()
          continue
        }
        i++
      } else scalar()
      // after a value: its container goes on or closes
      for (;;) {
        const close = open.at(-1)
        if (close === undefined) return
        ws()
        if (text[i] === ',') {
          i++
          if (close === '}') key()
          break
        }
        if (text[i] !== close) fail(`',' or '${close}' in ${close === '}' ? 'an object' : 'an array'}`)
        i++
        open.pop()
      }
    }
  }
  try {
    document()
    ws()
    if (i < n) fail('the end of the JSON document')
    return undefined
  } catch (e) {
    if (e instanceof Stop) return e.err
    throw e
  }
}
