// Concrete representative packets of a client's connection to a service.
import type {IpAddr} from '../../model/ip.js'
import {NO_FLAGS, PROTO, tcpFlags, type Packet, type TcpFlags} from '../../dataplane/packet.js'
import type {FlowPacket} from './ctmodel.js'

export type L4 = 'tcp' | 'udp' | 'sctp'

export const PROTO_NUM: Readonly<Record<L4, number>> = {tcp: PROTO.tcp, udp: PROTO.udp, sctp: PROTO.sctp}

export function l4Name(proto: number): L4 | undefined {
  return proto === PROTO.tcp ? 'tcp' : proto === PROTO.udp ? 'udp' : proto === PROTO.sctp ? 'sctp' : undefined
}

const FLAGS: Readonly<Record<FlowPacket, string>> = {
  SYN: 'S',
  ACK: '.',
  DATA: 'P.',
  FIN: 'F.',
  LASTFIN: 'F.',
  MIDLOST: 'P.',
  SYNACK: 'S.',
  RDATA: 'P.',
  RFIN: 'F.',
}

export interface Endpoints {
  readonly src: IpAddr
  readonly sport: number
  readonly dst: IpAddr
  readonly dport: number
  readonly proto: L4
  readonly mark?: number
}

/** The TCP flags of each kind, built once (packets are values: their flags are never changed in place). */
const KIND_FLAGS = Object.fromEntries(Object.entries(FLAGS).map(([k, f]) => [k, tcpFlags(f)])) as Readonly<Record<FlowPacket, TcpFlags>>

/** The packet `kind` of a connection between the endpoints (reply kinds swap nothing: pass the reply's endpoints). */
export function flowPacket(e: Endpoints, kind: FlowPacket): Packet {
  // one object literal of one shape (a spread of a fresh object takes V8's slow path: ~2 us a packet)
  const tcp = e.proto === 'tcp'
  const data = kind === 'DATA' || kind === 'RDATA' || kind === 'MIDLOST'
  return {
    family: e.src.family,
    src: e.src,
    dst: e.dst,
    proto: PROTO_NUM[e.proto],
    sport: e.sport,
    dport: e.dport,
    mark: e.mark ?? 0,
    flags: tcp ? KIND_FLAGS[kind] : NO_FLAGS,
    payload: !tcp || data ? 100 : 0,
  }
}

export function swap(e: Endpoints): Endpoints {
  return {src: e.dst, sport: e.dport, dst: e.src, dport: e.sport, proto: e.proto, mark: e.mark}
}

export const PACKET_WORDS: Readonly<Record<FlowPacket, string>> = {
  SYN: 'SYN',
  ACK: 'handshake ACK',
  DATA: 'request',
  FIN: 'FIN/ACK',
  LASTFIN: 'last FIN/ACK',
  MIDLOST: 'mid-flow packet conntrack cannot place',
  SYNACK: "server's SYN/ACK",
  RDATA: "server's response",
  RFIN: "server's FIN/ACK",
}
