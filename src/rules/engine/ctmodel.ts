// The conntrack state (what `-m state`/`-m conntrack --ctstate` see) of each packet of a load-balanced TCP
// connection at each place it meets the filter, for the cases the rules reason about. It is a model, chosen
// from the kernel sources and stated here so that it can be checked line by line:
//
// nf_conntrack_proto_tcp.c, tcp_conntracks[ORIGINAL] and tcp_new():
//   - a packet with no conntrack entry creates one; SYN -> SYN_SENT (ctstate NEW); a bare ACK/data packet
//     -> ESTABLISHED "picked up" only when net.netfilter.nf_conntrack_tcp_loose=1 (ctstate NEW: it is the
//     first packet the entry has seen), otherwise no entry (ctstate INVALID); FIN/ACK, SYN/ACK and RST with
//     no entry (sNO -> sIV) never create one (INVALID);
//   - an ACK in the ORIGINAL direction while the entry is still SYN_SENT (no SYN/ACK seen) is sIV: INVALID;
//   - a packet in the ORIGINAL direction of an entry that never saw a reply has ctinfo IP_CT_NEW
//     (nf_conntrack_core.c resolve_normal_ct): ESTABLISHED needs the reply direction.
// ip_vs.h ip_vs_notrack() / ip_vs_xmit.c ip_vs_send_or_cont(), ip_vs_nat_send_or_cont():
//   - with net.ipv4.vs.conntrack=0 IPVS drops the (unconfirmed) entry of every packet it forwards and marks
//     the skb UNTRACKED before sending it through LOCAL_OUT: the entry is never confirmed, so the next packet
//     of the connection meets conntrack as if it were the first (above), and filter OUTPUT sees UNTRACKED
//     (the IPVS lab, 6.1: the very first SYN of an LVS-NAT connection dies in a stateful OUTPUT chain);
//   - ip_vs_notrack replaces only a conntrack the packet has: a packet that was INVALID at PREROUTING has
//     none, and nf_conntrack_in (ipv4_conntrack_local) looks at it again at LOCAL_OUT with its new tuple:
//     still INVALID there (a FIN cannot start a connection);
//   - with net.ipv4.vs.conntrack=1 the entry is kept and confirmed; for LVS-NAT ip_vs_update_conntrack()
//     rewrites its reply tuple so the realserver's replies (seen in FORWARD) are ESTABLISHED, and so are all
//     later client packets, both FINs included (the lab: nat-output-stateful-ct1, nat-invalid-drop-ct1); for
//     DR/TUN the director never sees a reply, so the entry stays SYN_SENT and every later client packet is
//     INVALID (the lab: dr-state-new-ct1);
//   - TUN sends an IPIP packet (director -> realserver, protocol 4) through LOCAL_OUT after nf_reset_ct();
//     conntrack tracks it as a generic flow that never sees a reply: NEW.
// LVS-HOWTO 29.15 (002_470e9850247cd7a0.txt): on a 2.6.20 LVS-NAT director the client's last FIN/ACK toward
//   the realserver was INVALID in OUTPUT and INPUT. On 6.1 that is the vs.conntrack=0 case above: the FIN is
//   INVALID in INPUT and, re-tracked, in OUTPUT (where the other packets are UNTRACKED); LASTFIN is that FIN.
// LVS-HOWTO 29.14: on a path that sees one direction, conntrack cannot follow the unseen direction's window,
//   so a mid-flow packet it cannot place (entry expired or evicted, tcp_loose=0, out of window) is INVALID;
//   the model offers that INVALID mid-flow packet to the rules that look for one-way paths.
import type {CtState} from '../../model/iptables.js'
import type {CtView} from '../../dataplane/packet.js'

/** The packets of one connection the rules replay (tcpdump letters in parentheses). */
export type FlowPacket =
  | 'SYN' // client's SYN (S)
  | 'ACK' // client's ACK of the handshake (.)
  | 'DATA' // client's request (P.)
  | 'FIN' // client's FIN (F.)
  | 'LASTFIN' // the client's last FIN/ACK after the server's FIN (LVS-HOWTO 29.15)
  | 'MIDLOST' // a mid-flow client packet whose entry conntrack lost (LVS-HOWTO 29.14)
  | 'SYNACK' // server's SYN/ACK (S.)
  | 'RDATA' // server's response (P.)
  | 'RFIN' // server's FIN (F.)

export const CLIENT_PACKETS: readonly FlowPacket[] = ['SYN', 'ACK', 'DATA', 'FIN']
export const SERVER_PACKETS: readonly FlowPacket[] = ['SYNACK', 'RDATA', 'RFIN']
/** the order the packets of one connection come in: the first blocked one says what the client sees */
export const PACKET_ORDER: readonly FlowPacket[] = ['SYN', 'SYNACK', 'ACK', 'DATA', 'RDATA', 'FIN', 'RFIN']

/** Where the packet meets netfilter. */
export type FlowPlace =
  /** client -> VIP on the director, PREROUTING/INPUT, before IPVS */
  | 'ipvs-in'
  /** after IPVS scheduled it, LOCAL_OUT/POSTROUTING of the director */
  | 'ipvs-out'
  /** realserver -> client reply of LVS-NAT, FORWARD of the director (before ip_vs_reply4 un-NATs it) */
  | 'ipvs-reply'
  /** an ordinary netfilter flow whose both directions pass this host (DNAT balancer, realserver) */
  | 'both-ways'
  /** an ordinary netfilter flow whose replies bypass this host */
  | 'one-way'

export interface CtParams {
  /** net.ipv4.vs.conntrack */
  readonly vsConntrack: boolean
  /** net.netfilter.nf_conntrack_tcp_loose */
  readonly tcpLoose: boolean
  readonly method: 'masq' | 'route' | 'tunnel' | 'dnat'
  readonly proto: 'tcp' | 'udp' | 'sctp'
}

const REPLY_PACKETS = new Set<FlowPacket>(SERVER_PACKETS)

/** The ctstate a packet has at a place. */
export function ctStateOf(place: FlowPlace, pkt: FlowPacket, p: CtParams): CtState {
  const reply = REPLY_PACKETS.has(pkt)
  // An entry that is created fresh by this packet (no confirmed entry for the connection).
  const fresh = (): CtState => {
    if (p.proto !== 'tcp') return 'NEW'
    if (pkt === 'SYN') return 'NEW'
    if (pkt === 'ACK' || pkt === 'DATA' || pkt === 'RDATA') return p.tcpLoose ? 'NEW' : 'INVALID'
    return 'INVALID' // FIN, SYN/ACK, RST with no entry; MIDLOST is by definition unplaceable
  }
  if (pkt === 'MIDLOST') return 'INVALID'
  switch (place) {
    case 'ipvs-in':
      if (!p.vsConntrack) return fresh()
      if (pkt === 'SYN') return 'NEW'
      if (p.method === 'masq') return 'ESTABLISHED'
      return p.proto === 'tcp' ? 'INVALID' : 'NEW' // DR/TUN: ACK in SYN_SENT is sIV; UDP never sees a reply
    case 'ipvs-out':
      if (p.method === 'tunnel') return 'NEW'
      if (!p.vsConntrack) return fresh() === 'INVALID' ? 'INVALID' : 'UNTRACKED'
      return ctStateOf('ipvs-in', pkt, p)
    case 'ipvs-reply':
      if (!p.vsConntrack) return fresh()
      return 'ESTABLISHED'
    case 'both-ways':
      if (pkt === 'SYN') return 'NEW'
      return 'ESTABLISHED'
    case 'one-way':
      if (pkt === 'SYN') return 'NEW'
      if (reply) return 'INVALID'
      return p.proto === 'tcp' ? 'INVALID' : 'NEW'
  }
}

/** The status bits of a modelled entry (read-only views, shared: a check builds one per simulated packet). */
const NO_STATUS: ReadonlySet<string> = new Set<string>()
const ESTABLISHED_STATUS: ReadonlySet<string> = new Set<string>(['SEEN_REPLY', 'CONFIRMED'])

export function ctView(state: CtState, dir: 'ORIGINAL' | 'REPLY' = 'ORIGINAL', mark = 0): CtView {
  return {state, dir, status: state === 'ESTABLISHED' ? ESTABLISHED_STATUS : NO_STATUS, mark}
}

/** Whether the nat table is consulted for this packet (only the first packet of a new entry). */
export function natConsulted(state: CtState): boolean {
  return state === 'NEW'
}
