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

/**
 * The offset of the first syntax error in `text` (a strict JSON recogniser), or undefined when it is
 * valid. Node 20's JSON.parse messages do not always carry a position.
 */
export function firstJsonError(text: string): number | undefined {
  let i = 0
  const n = text.length
  class Bad {
    constructor(readonly at: number) {}
  }
  const ws = (): void => {
    while (i < n && WS.has(text.charCodeAt(i))) i++
  }
  const lit = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length
    else throw new Bad(i)
  }
  const str = (): void => {
    i++
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        i++
        return
      }
      if (c < 0x20) throw new Bad(i)
      if (c === 0x5c) {
        const e = text[i + 1]
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) throw new Bad(i)
          i += 6
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2
        else throw new Bad(i)
        continue
      }
      i++
    }
    throw new Bad(n)
  }
  const num = (): void => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (!m || m[0] === '' || m[0] === '-') throw new Bad(i)
    i += m[0].length
  }
  const value = (): void => {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      ws()
      if (text[i] === '}') {
        i++
        return
      }
      for (;;) {
        ws()
        if (text[i] !== '"') throw new Bad(i)
        str()
        ws()
        if (text[i] !== ':') throw new Bad(i)
        i++
        value()
        ws()
        if (text[i] === ',') {
          i++
          continue
        }
        if (text[i] === '}') {
          i++
          return
        }
        throw new Bad(i)
      }
    }
    if (c === '[') {
      i++
      ws()
      if (text[i] === ']') {
        i++
        return
      }
      for (;;) {
        value()
        ws()
        if (text[i] === ',') {
          i++
          continue
        }
        if (text[i] === ']') {
          i++
          return
        }
        throw new Bad(i)
      }
    }
    if (c === '"') return str()
    if (c === 't') return lit('true')
    if (c === 'f') return lit('false')
    if (c === 'n') return lit('null')
    return num()
  }
  try {
    value()
    ws()
    if (i < n) throw new Bad(i)
    return undefined
  } catch (e) {
    if (e instanceof Bad) return e.at
    throw e
  }
}
