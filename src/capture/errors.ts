// Errors of the capture side. Both are subclasses of the errors the command base class already turns into
// a one-line message and exit 2 (src/cli/base.ts), so nothing here ever reaches the user as a stack trace.
import {ParseError, UsageError} from '../model/source.js'

/**
 * A capture file that cannot be read on: the message names the file, the byte offset, the packet (1-based,
 * as tcpdump and Wireshark number them) when inside one, what was expected and what was found.
 */
export class CaptureFormatError extends ParseError {
  readonly offset: number
  readonly packet: number | undefined

  constructor(file: string, offset: number, packet: number | undefined, expected: string, found?: string) {
    super(file, undefined, expected, found)
    this.name = 'CaptureFormatError'
    this.offset = offset
    this.packet = packet
    const where = `${file}: byte offset ${offset}${packet === undefined ? '' : ` (packet ${packet})`}`
    const shown = found === undefined ? '' : `, found ${found}`
    this.message = `${where}: expected ${expected}${shown}`
  }
}

/** Live capture cannot run here (no libpcap, no `pcap` module, no permission, no such interface). */
export class CaptureUnavailableError extends UsageError {
  constructor(message: string) {
    super(message)
    this.name = 'CaptureUnavailableError'
  }
}

export const INSTALL_HINT =
  'live capture needs libpcap and the optional `pcap` module: install libpcap (Debian/Ubuntu: `apt-get install libpcap-dev`, ' +
  'RHEL/Fedora: `dnf install libpcap-devel`), then run `npm rebuild pcap` in the lvsdoctor installation; ' +
  'reading files with --read needs neither'
