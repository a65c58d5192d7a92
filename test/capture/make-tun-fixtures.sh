#!/usr/bin/env bash
# LVS-TUN captures with real TCP between network namespaces, written to fixtures/captures/tunnel/. Needs root,
# ip, iptables, tcpdump, python3 and /dev/net/tun. Every namespace and device is prefixed `lq3` and removed on
# exit, also on failure.
#
# This kernel has no IP_VS and no ipip/ip_gre/fou modules: the director's encapsulation and the realserver's
# tunl0 are test/capture/tun-peer.py around TUN devices, writing the headers IPVS's ip_vs_tunnel_xmit() writes.
# The kernels still do the rest: routing, rp_filter on the realserver's tunnel device, ICMP (frag-needed when a
# packet with DF does not fit the tunnel device's MTU, protocol/port unreachable when nothing unwraps), TCP.
#
#   client     lq3-c  lq3c0 10.73.1.2/24 (default via 10.73.1.1)   lq3c1 10.73.3.2/24 (the realserver's answers)
#   director   lq3-d  lq3d0 10.73.1.1/24  lq3d1 10.73.2.1/24; VIP 10.73.9.100/32 routed into lq3tun (the tunnel)
#   realserver lq3-r  lq3r0 10.73.2.10/24 lq3r1 10.73.3.10/24; VIP on lo, lq3tunl = its tunl0; answers the
#                     client directly over lq3r1 (route 10.73.1.0/24 via 10.73.3.2), never through the director
#
# usage: make-tun-fixtures.sh [SCENARIO...]     (default: all)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=fixtures/captures/tunnel
PEER="python3 test/capture/tcp-peer.py"
TUNP="python3 test/capture/tun-peer.py"
mkdir -p "$OUT"
C=lq3-c D=lq3-d R=lq3-r
VIP=10.73.9.100
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

# setup TYPE [RSDEV] [encap options...]: the three namespaces, the tunnel of TYPE (ipip, gre, gue) and the server;
# RSDEV is the realserver's tunnel device (default lq3tunl; none: no tunnel device)
setup() {
  local type=$1; shift
  RSDEV=lq3tunl
  if [ $# -gt 0 ] && [[ $1 != --* ]]; then RSDEV=$1; shift; fi
  local opts=("$@")
  cleanup
  for ns in $C $D $R; do
    ip netns add $ns
    nsx $ns ip link set lo up
    nsx $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  ip link add lq3c0 netns $C type veth peer name lq3d0 netns $D
  ip link add lq3d1 netns $D type veth peer name lq3r0 netns $R
  ip link add lq3c1 netns $C type veth peer name lq3r1 netns $R
  nsx $C ip addr add 10.73.1.2/24 dev lq3c0
  nsx $C ip addr add 10.73.3.2/24 dev lq3c1
  nsx $D ip addr add 10.73.1.1/24 dev lq3d0
  nsx $D ip addr add 10.73.2.1/24 dev lq3d1
  nsx $R ip addr add 10.73.2.10/24 dev lq3r0
  nsx $R ip addr add 10.73.3.10/24 dev lq3r1
  nsx $R ip addr add $VIP/32 dev lo
  for l in "$C lq3c0" "$C lq3c1" "$D lq3d0" "$D lq3d1" "$R lq3r0" "$R lq3r1"; do set -- $l; nsx $1 ip link set $2 up; done
  nsx $C ip route add default via 10.73.1.1
  nsx $C sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.lq3c1.rp_filter=0
  nsx $R ip route add 10.73.1.0/24 via 10.73.3.2 dev lq3r1
  nsx $D sysctl -qw net.ipv4.ip_forward=1
  # the tunnel: MTU = 1500 less what the encapsulation adds (ip_vs_xmit.c __ip_vs_get_out_rt: IPIP 20, GUE +12, GRE +4/+8)
  local mtu=1480
  local all=" ${opts[*]:-} "
  case $type in gre) mtu=1476; [[ $all == *" --csum "* || $all == *" --key "* ]] && mtu=1472; [[ $all == *" --csum "* && $all == *" --key "* ]] && mtu=1468 ;; gue) mtu=1468 ;; esac
  nsx $D ip tuntap add dev lq3tun mode tun
  nsx $D ip link set lq3tun mtu $mtu up
  nsx $D ip route add $VIP/32 dev lq3tun
  nsx $R sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  if [ $RSDEV != none ]; then
    nsx $R ip tuntap add dev $RSDEV mode tun
    nsx $R ip link set $RSDEV up
    nsx $R sysctl -qw net.ipv4.conf.$RSDEV.rp_filter=0
  fi
  ip netns exec $D $TUNP encap lq3tun 10.73.2.1 10.73.2.10 "$type" 30 "${opts[@]}" & PIDS+=($!)
  ip netns exec $R $PEER server 80 30 & PIDS+=($!)
  TYPE=$type
  sleep 0.5
}

decap() { ip netns exec $R $TUNP decap $RSDEV "$TYPE" 30 "$@" & PIDS+=($!); sleep 0.3; }

# capture NS IFACE FILE [tcpdump args...]: starts tcpdump in the background, waits until it listens
capture() {
  local ns=$1 ifc=$2 file=$3; shift 3
  local log; log=$(mktemp)
  ip netns exec "$ns" tcpdump --immediate-mode -U -n -s 262144 -i "$ifc" -w "$OUT/$file" "$@" 2>"$log" & CAP=$!
  PIDS+=($CAP)
  for _ in $(seq 50); do grep -q listening "$log" && break; sleep 0.1; done
  sleep 0.2
  rm -f "$log"
}

stop() { sleep "${1:-0.3}"; for c in "${CAPS[@]}"; do kill -INT "$c" 2>/dev/null || true; done; for c in "${CAPS[@]}"; do wait "$c" 2>/dev/null || true; done; CAPS=(); }

client() { nsx $C $PEER client $VIP 80 "$@" || true; }

# healthy IPIP: on the director (any: the client's packets on lq3d0, the same ones tunnelled on lq3d1) and on
# the realserver (any: tunnelled on lq3r0, unwrapped on lq3tunl, the answers on lq3r1; and lq3tunl alone, raw IP:
# what a capture of tunl0 shows, already unwrapped)
ipip_healthy() {
  setup ipip; decap
  CAPS=()
  capture $D any ipip-healthy-director.pcap; CAPS+=($CAP)
  capture $R any ipip-healthy-rs.pcap; CAPS+=($CAP)
  capture $R lq3tunl ipip-healthy-rs-tunl.pcap; CAPS+=($CAP)
  client; client
  stop 0.5
}

# healthy GRE as IPVS sends it (--tun-type gre --tun-csum: checksum, no key), on the realserver's lq3r0 (Ethernet)
gre_healthy() {
  setup gre --csum; decap
  CAPS=()
  capture $R lq3r0 gre-csum-healthy-rs.pcap; CAPS+=($CAP)
  client; client
  stop 0.5
}

# a hand-built GRE tunnel with key and sequence numbers, on the director (any)
gre_key_seq() {
  setup gre --key 7 --seq; decap
  CAPS=()
  capture $D any gre-key-seq-healthy-director.pcap; CAPS+=($CAP)
  client
  stop 0.5
}

# GUE variant 0 on port 6080 (--tun-type gue --tun-port 6080), on the realserver (any); and with --tun-remcsum's
# extension fields
gue_healthy() {
  setup gue --port 6080; decap --port 6080
  CAPS=()
  capture $R any gue-healthy-rs.pcap; CAPS+=($CAP)
  client; client
  stop 0.5
  setup gue --port 6080 --remcsum --csum; decap --port 6080
  CAPS=()
  capture $D lq3d1 gue-remcsum-healthy-director.pcap; CAPS+=($CAP)
  client
  stop 0.5
}

# GUE variant 1 (direct IP) on port 5555, which lvsdoctor is not told about: found by the inner header
gue_variant1() {
  setup gue --port 5555 --variant1; decap --port 5555
  CAPS=()
  capture $D lq3d1 gue-variant1-port5555-director.pcap; CAPS+=($CAP)
  client
  stop 0.5
}

# the realserver's rp_filter drops the unwrapped packets: they arrive on its tunnel device from the client's
# address, and its route back to the client leaves by lq3r1 (LVS-HOWTO: rp_filter on tunl0 must be off or loose)
rpfilter() {
  setup ipip; decap
  nsx $R sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.lq3tunl.rp_filter=1
  CAPS=()
  capture $D any ipip-rpfilter-director.pcap; CAPS+=($CAP)
  capture $R any ipip-rpfilter-rs.pcap; CAPS+=($CAP)
  client --connect-timeout 2.5
  stop 0.3
}

# nothing unwraps IPIP on the realserver (no ipip module, tunl0 missing): its kernel answers protocol
# unreachable; and GUE without `ip fou add port 6080 gue`: port unreachable
no_decap() {
  setup ipip
  CAPS=()
  capture $D any ipip-no-decap-director.pcap; CAPS+=($CAP)
  client --connect-timeout 2.5
  stop 0.3
  setup gue --port 6080
  CAPS=()
  capture $R lq3r0 gue-no-listener-rs.pcap; CAPS+=($CAP)
  client --connect-timeout 2.5
  stop 0.3
}

# the classic LVS-TUN MTU problem: full-size segments with DF do not fit the tunnel (MTU 1480); the director
# answers fragmentation needed, which a firewall in front of the client drops: the client retransmits the
# same 1500-byte segment until it gives up. With the ICMP let through, path MTU discovery works (quiet).
mtu() {
  setup ipip; decap
  nsx $C iptables -A INPUT -p icmp --icmp-type fragmentation-needed -j DROP
  CAPS=()
  capture $D any ipip-mtu-blackhole-director.pcap; CAPS+=($CAP)
  client --request-bytes 3000 --read-timeout 3
  stop 0.3
  setup ipip; decap
  CAPS=()
  capture $D any ipip-mtu-pmtud-director.pcap; CAPS+=($CAP)
  client --request-bytes 3000 --read-timeout 3
  stop 0.5
}

# an IPv6 service over an IPv4 tunnel (IPVS: an IPv4 realserver of an IPv6 service, IPv6 inside IPv4, protocol 41)
ipip6in4() {
  setup ipip; decap
  for ns in $C $D $R; do nsx $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0; done
  for l in "$C lq3c0" "$C lq3c1" "$D lq3d0" "$D lq3tun" "$R lq3r1" "$R lq3tunl" "$R lo"; do set -- $l; nsx $1 sysctl -qw net.ipv6.conf.$2.disable_ipv6=0; done
  nsx $C ip addr add fd73:1::2/64 dev lq3c0 nodad
  nsx $C ip addr add fd73:3::2/64 dev lq3c1 nodad
  nsx $D ip addr add fd73:1::1/64 dev lq3d0 nodad
  nsx $R ip addr add fd73:3::10/64 dev lq3r1 nodad
  nsx $R ip addr add fd73:9::100/128 dev lo nodad
  nsx $C ip -6 route add default via fd73:1::1
  nsx $D sysctl -qw net.ipv6.conf.all.forwarding=1
  nsx $D ip -6 route add fd73:9::100/128 dev lq3tun
  nsx $R ip -6 route add fd73:1::/64 via fd73:3::2 dev lq3r1
  nsx $C sysctl -qw net.ipv6.conf.all.accept_ra=0
  ip netns exec $R $PEER server 81 20 --v6 & PIDS+=($!)
  sleep 1.5
  CAPS=()
  capture $D any ipip6in4-healthy-director.pcap; CAPS+=($CAP)
  nsx $C $PEER client fd73:9::100 81 || true
  stop 0.5
}

# check --capture fixtures (fixtures/check-capture/tun-rpfilter[-fixed]): the classic LVS-HOWTO realserver with
# the VIP on its tunnel device, strict rp_filter (then loose: the fix rp-filter-asymmetric proposes); snapshots
# of the director and the realserver taken by lvsdoctor itself inside the namespaces, the director's capture
# beside them. The director has no IPVS here (ipvsadm fails: recorded as a gap): ipvsadm-Sn.txt is written by
# hand as `ipvsadm -Sn` prints the equivalent service (print_tunnel_rule(), ipvsadm 1.31).
check_capture() {
  local name
  for name in tun-rpfilter tun-rpfilter-fixed tun-no-decap; do
    local dir=fixtures/check-capture/$name
    rm -rf "$dir"; mkdir -p "$dir"
    if [ $name = tun-no-decap ]; then
      # nothing unwraps IPIP on the realserver (no ipip module: no tunl0): its kernel answers protocol unreachable
      setup ipip none
    else
      setup ipip tunl0
      # the realserver as LVS-HOWTO sets it up: the VIP on tunl0 (its tunnel device must be named tunl0 here, in
      # its own namespace, for the rules to know it: this kernel cannot make an ipip device), strict rp_filter
      nsx $R ip addr del $VIP/32 dev lo
      nsx $R ip addr add $VIP/32 dev tunl0
      nsx $R sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.tunl0.rp_filter=1
      [ $name = tun-rpfilter-fixed ] && nsx $R sysctl -qw net.ipv4.conf.tunl0.rp_filter=2
    fi
    # a default route by its own link to the client, and the ARP settings of a DR/TUN realserver
    nsx $R ip route del 10.73.1.0/24
    nsx $R ip route add default via 10.73.3.2 dev lq3r1
    nsx $R sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    # the director: IPVS holds the VIP as a local address and takes its packets at LOCAL_IN; here the VIP is on lo
    # without its local route, so that the kernel routes its packets into the tunnel instead
    nsx $D ip addr add $VIP/32 dev lo
    nsx $D ip route del table local local $VIP dev lo
    [ $name = tun-no-decap ] || decap
    CAPS=()
    capture $D any "../../../$dir/capture.pcap"; CAPS+=($CAP)
    client --connect-timeout 2.5
    stop 0.3
    mkdir -p "$dir/director"
    mv "$dir/capture.pcap" "$dir/director/capture.pcap"
    nsx $D node bin/run.js snapshot -o "$dir/director.tmp" --name director --role director --json >/dev/null || true
    nsx $R node bin/run.js snapshot -o "$dir/rs1" --name rs1 --role realserver --json >/dev/null || true
    cp -r "$dir/director.tmp/." "$dir/director/"; rm -rf "$dir/director.tmp"
    printf -- '-A -t %s:80 -s wlc\n-a -t %s:80 -r 10.73.2.10:80 -i -w 1 --tun-type ipip\n' $VIP $VIP > "$dir/director/ipvsadm-Sn.txt"
    cleanup
  done
}

ALL=(ipip_healthy ipip6in4 gre_healthy gre_key_seq gue_healthy gue_variant1 rpfilter no_decap mtu check_capture)
for s in "${@:-${ALL[@]}}"; do
  echo "== $s" >&2
  "$s"
  cleanup
done
ls -l "$OUT" >&2
