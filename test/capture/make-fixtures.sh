#!/usr/bin/env bash
# Reproduces load-balancer failures with real TCP between network namespaces and captures them with
# tcpdump (and dumpcap for pcapng, when installed) into fixtures/captures/. Needs root, ip, iptables,
# tcpdump, python3. Every namespace is prefixed `ldc-` and removed on exit, also on failure.
#
#   client ns ldc-c  ldc-c0 10.66.1.2/24, default via 10.66.1.1     (ldc-c1 10.66.3.2/24: the "leak" link)
#   director ldc-d   ldc-d0 10.66.1.1/24 + VIP 10.66.1.100/32, ldc-d1 10.66.2.1/24; DNAT VIP:80 -> 10.66.2.10:8080
#   realserver ldc-r ldc-r0 10.66.2.10/24, default via 10.66.2.1    (ldc-r1 10.66.3.10/24: the "leak" link)
#
# usage: make-fixtures.sh [SCENARIO...]     (default: all)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=fixtures/captures
PEER="python3 test/capture/tcp-peer.py"
mkdir -p "$OUT"
C=ldc-c D=ldc-d R=ldc-r
PIDS=()

cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for ns in $C $D $R; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

setup() {
  cleanup
  for ns in $C $D $R; do
    ip netns add $ns
    nsx $ns ip link set lo up
    nsx $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  ip link add ldc-c0 netns $C type veth peer name ldc-d0 netns $D
  ip link add ldc-d1 netns $D type veth peer name ldc-r0 netns $R
  ip link add ldc-c1 netns $C type veth peer name ldc-r1 netns $R
  nsx $C ip addr add 10.66.1.2/24 dev ldc-c0
  nsx $C ip addr add 10.66.3.2/24 dev ldc-c1
  nsx $D ip addr add 10.66.1.1/24 dev ldc-d0
  nsx $D ip addr add 10.66.1.100/32 dev ldc-d0
  nsx $D ip addr add 10.66.2.1/24 dev ldc-d1
  nsx $R ip addr add 10.66.2.10/24 dev ldc-r0
  nsx $R ip addr add 10.66.3.10/24 dev ldc-r1
  for l in "$C ldc-c0" "$C ldc-c1" "$D ldc-d0" "$D ldc-d1" "$R ldc-r0" "$R ldc-r1"; do set -- $l; nsx $1 ip link set $2 up; done
  nsx $C ip route add default via 10.66.1.1
  nsx $R ip route add default via 10.66.2.1
  nsx $D sysctl -qw net.ipv4.ip_forward=1
  nsx $D iptables -t nat -A PREROUTING -d 10.66.1.100 -p tcp --dport 80 -j DNAT --to-destination 10.66.2.10:8080
  ip netns exec $R $PEER server 8080 8 & PIDS+=($!)
  sleep 0.3
}

# capture NS IFACE FILE [tcpdump args...]: starts tcpdump in the background, waits until it listens
capture() {
  local ns=$1 ifc=$2 file=$3; shift 3
  local log; log=$(mktemp)
  ip netns exec "$ns" tcpdump --immediate-mode -U -n -s 256 -i "$ifc" -w "$OUT/$file" "$@" 2>"$log" & CAP=$!
  PIDS+=($CAP)
  for _ in $(seq 50); do grep -q listening "$log" && break; sleep 0.1; done
  sleep 0.2
  rm -f "$log"
}

stop_capture() { sleep "${1:-0.3}"; kill -INT "$CAP"; wait "$CAP" 2>/dev/null || true; }

client() { nsx $C $PEER client 10.66.1.100 80 "$@" || true; }

healthy() {
  setup
  capture $C ldc-c0 healthy-dnat-client.pcap
  local cap1=$CAP
  capture $R ldc-r0 healthy-dnat-rs.pcap
  local cap2=$CAP
  client
  client
  sleep 0.5
  kill -INT $cap1 $cap2; wait $cap1 $cap2 2>/dev/null || true
}

healthy_any() {
  setup
  capture $C any healthy-any-sll2.pcap
  local cap1=$CAP
  capture $R any healthy-any-sll-ns.pcap -y LINUX_SLL --time-stamp-precision nano
  local cap2=$CAP
  client
  sleep 0.5
  kill -INT $cap1 $cap2; wait $cap1 $cap2 2>/dev/null || true
}

# LVS-NAT/DNAT whose realserver answers the client by another way: replies are never un-NATed
bypass() {
  setup
  nsx $R ip route add 10.66.1.0/24 via 10.66.3.2 dev ldc-r1
  nsx $C sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.ldc-c1.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  capture $C any bypass-client-sll2.pcap
  client --connect-timeout 2.5
  stop_capture
  if command -v dumpcap >/dev/null; then
    setup
    nsx $R ip route add 10.66.1.0/24 via 10.66.3.2 dev ldc-r1
    nsx $C sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.ldc-c1.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    local log; log=$(mktemp)
    ip netns exec $C dumpcap -q -s 256 -i ldc-c0 -i ldc-c1 -w "$OUT/bypass-client-2if.pcapng" 2>"$log" & CAP=$!
    PIDS+=($CAP)
    sleep 1.5
    client --connect-timeout 1.5
    stop_capture
    rm -f "$log"
  fi
}

# REJECT --reject-with icmp-host-prohibited hitting a packet of an established flow (LVS-HOWTO 29.14)
reject_established() {
  setup
  nsx $D iptables -A FORWARD -p tcp --dport 8080 --tcp-flags PSH PSH -j REJECT --reject-with icmp-host-prohibited
  capture $C ldc-c0 reject-established-client.pcap
  client --read-timeout 1.2
  stop_capture
  # the same capture as pcapng, written by Wireshark's editcap, when installed
  if command -v editcap >/dev/null; then editcap -F pcapng "$OUT/reject-established-client.pcap" "$OUT/reject-established-client.pcapng"; fi
}

# FINs dropped on the director (LVS-HOWTO 29.16): the closing side retransmits its FIN
fin_drop() {
  setup
  nsx $D iptables -A FORWARD -p tcp --tcp-flags FIN FIN -j DROP
  capture $C ldc-c0 fin-drop-client.pcap
  client
  sleep 3.5
  stop_capture 0
}

# the director drops the SYN: the client retransmits it
syn_drop() {
  setup
  nsx $D iptables -A FORWARD -p tcp --syn --dport 8080 -j DROP
  capture $C ldc-c0 syn-drop-client.pcap
  client --connect-timeout 2
  stop_capture
}

# a reset right after the handshake (REJECT --reject-with tcp-reset on the first data segment)
rst_after_handshake() {
  setup
  nsx $D iptables -A FORWARD -p tcp --dport 8080 --tcp-flags PSH PSH -j REJECT --reject-with tcp-reset
  capture $C ldc-c0 rst-after-handshake-client.pcap
  client
  stop_capture
}

# the director lets only SYNs through to the realserver (a stateful filter that never sees the flow
# established): on the realserver the SYN/ACK is never acknowledged
synack_unacked() {
  setup
  nsx $D iptables -A FORWARD -p tcp --dport 8080 ! --syn -j DROP
  capture $R ldc-r0 synack-unacked-rs.pcap
  client --read-timeout 2.2
  stop_capture 0
}

# IPv6: DNAT [fd66:1::100]:80 -> [fd66:2::10]:8080, REJECT --reject-with icmp6-adm-prohibited on the first data
reject_established_v6() {
  setup
  for ns in $C $D $R; do nsx $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0; done
  for l in "$C ldc-c0" "$D ldc-d0" "$D ldc-d1" "$R ldc-r0"; do set -- $l; nsx $1 sysctl -qw net.ipv6.conf.$2.disable_ipv6=0; done
  nsx $C ip addr add fd66:1::2/64 dev ldc-c0 nodad
  nsx $D ip addr add fd66:1::1/64 dev ldc-d0 nodad
  nsx $D ip addr add fd66:1::100/128 dev ldc-d0 nodad
  nsx $D ip addr add fd66:2::1/64 dev ldc-d1 nodad
  nsx $R ip addr add fd66:2::10/64 dev ldc-r0 nodad
  nsx $C ip -6 route add default via fd66:1::1
  nsx $R ip -6 route add default via fd66:2::1
  nsx $D sysctl -qw net.ipv6.conf.all.forwarding=1
  nsx $D ip6tables -t nat -A PREROUTING -d fd66:1::100 -p tcp --dport 80 -j DNAT --to-destination '[fd66:2::10]:8080'
  nsx $D ip6tables -A FORWARD -p tcp --dport 8080 --tcp-flags PSH PSH -j REJECT --reject-with icmp6-adm-prohibited
  ip netns exec $R $PEER server 8080 8 --v6 & PIDS+=($!)
  sleep 1.5
  capture $C ldc-c0 reject-established-v6-client.pcap tcp or icmp6
  nsx $C $PEER client fd66:1::100 80 --read-timeout 1.2 || true
  stop_capture
}

# a health checker that closes with SO_LINGER 0 (client-side RST): healthy, not a symptom
linger0() {
  setup
  capture $C ldc-c0 healthy-linger0-client.pcap
  client --linger0
  stop_capture
}

ALL=(healthy healthy_any bypass reject_established reject_established_v6 fin_drop syn_drop rst_after_handshake synack_unacked linger0)
for s in "${@:-${ALL[@]}}"; do
  echo "== $s" >&2
  "$s"
  cleanup
done
ls -l "$OUT" >&2
