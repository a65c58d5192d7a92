// What the parser tests share: reading fixtures, addresses from text, and catching the ParseError a bad input throws.
import {readFileSync} from 'node:fs'
import {expect} from 'vitest'
import {parseIp, type IpAddr} from '../../src/model/ip.js'
import {ParseError} from '../../src/model/source.js'

/** Reads fixture files of the folder `dir` (relative to the repository root, ending in `/`). */
export const fixtureReader =
  (dir: string) =>
  (f: string): string =>
    readFileSync(dir + f, 'utf8')

/** The address written `s` (which must be valid). */
export const ip = (s: string): IpAddr => parseIp(s)!

/** The ParseError that `fn` throws (fails the test when it throws anything else or nothing). */
export function parseError(fn: () => unknown): ParseError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(ParseError)
    return e as ParseError
  }
  throw new Error('expected a ParseError')
}
