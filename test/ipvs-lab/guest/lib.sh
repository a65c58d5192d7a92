# Guest-side library of the IPVS lab: the words scenario files are written in (busybox sh).
# Sourced by /lab/run-scenario.sh in a fresh subshell per scenario; every namespace is a host.
#
#   host NAME ROLE                       a host (network namespace NAME; ROLE director|realserver|client|router)
#   lan NAME HOST:IF[:ADDR/LEN] ...      an L2 segment (a bridge in the unsnapshotted namespace "sw")
#   link HOST:IF[:ADDR/LEN] HOST:IF[:ADDR/LEN]   a point-to-point veth pair
#   on HOST CMD ARGS...                  run a command in HOST (logged; a failure is a setup error)
#   sysctls HOST KEY=VALUE ...           sysctl -w in HOST
#   route HOST ARGS...                   ip route add ARGS in HOST
#   dr_vip HOST VIP [DEV]                realserver for DR/TUN: VIP/32 on DEV (lo), arp_ignore=1, arp_announce=2
#   server HOST PORT                     the test server on 0.0.0.0:PORT in HOST (started now, waits for ready)
#   exchange CLIENT FROM_IP VIP:PORT     one TCP exchange from CLIENT (bound to FROM_IP); call in run()
#
# Standard topologies (addresses are in the scenario comments and in outcome.json):
#   topo_nat GW [NCLIENTS]   client(s) 203.0.113.10.. -- outside LAN -- director 203.0.113.1 (VIP 203.0.113.100)
#                            director 10.1.0.1 -- inside LAN -- rs1 10.1.0.11, rs2 10.1.0.12 (server :8080);
#                            GW=director: realservers route via the director; GW=router: via router 10.1.0.254,
#                            which is also on the outside LAN (203.0.113.254)
#   topo_dr                  client 198.51.100.10 -- wan -- router 198.51.100.1 / 10.0.0.254 -- LAN --
#                            director 10.0.0.1 (VIP 10.0.0.100 on eth0), rs1 10.0.0.11, rs2 10.0.0.12 (server :80),
#                            realservers route via the router; no VIP on the realservers yet (dr_vip does it)

LAB_DIR=${LAB_DIR:-/lab}
PY="python3 -I -S $LAB_DIR/lab.py"

log() { echo "$*" >>"$RES/_lab/setup.log"; }
setup_error() { echo "$*" >>"$RES/_lab/setup-errors.txt"; log "SETUP ERROR: $*"; }

# x CMD...: run a command, log it with its output; a non-zero exit is a setup error.
x() {
  log "+ $*"
  out=$("$@" 2>&1)
  rc=$?
  [ -n "$out" ] && log "$out"
  [ $rc -eq 0 ] || setup_error "exit $rc: $* :: $out"
  return 0
}

host() {
  x ip netns add "$1"
  x ip -n "$1" link set lo up
  echo "$1 $2" >>"$RES/_lab/hosts"
}

on() { h=$1; shift; x ip netns exec "$h" "$@"; }

sysctls() { h=$1; shift; x ip netns exec "$h" sysctl -q -w "$@"; }

route() { h=$1; shift; x ip -n "$h" route add "$@"; }

_sw() {
  [ -e /run/netns/sw ] && return 0
  x ip netns add sw
  x ip -n sw link set lo up
}

# _member SPEC -> sets _h _if _addr from HOST:IF[:ADDR/LEN]
_member() {
  _h=${1%%:*}; _r=${1#*:}; _if=${_r%%:*}
  if [ "$_r" = "$_if" ]; then _addr=; else _addr=${_r#*:}; fi
}

# xb HOST: run the ip commands of $RES/_lab/batch in HOST with one "ip -batch" (one process instead of many)
xb() {
  log "+ ip -n $1 -batch <<"
  sed 's/^/    /' "$RES/_lab/batch" >>"$RES/_lab/setup.log"
  x ip -n "$1" -batch "$RES/_lab/batch"
}

lan() {
  name=$1; shift
  _sw
  {
    echo "link add br-$name type bridge stp_state 0 forward_delay 0"
    echo "link set br-$name up"
    for m; do
      _member "$m"
      peer=$(echo "$name-$_h" | cut -c1-15)
      echo "link add $peer type veth peer name $_if netns $_h"
      echo "link set $peer master br-$name up"
    done
  } >"$RES/_lab/batch"
  xb sw
  for m; do
    _member "$m"
    { echo "link set $_if up"; [ -n "$_addr" ] && echo "addr add $_addr dev $_if"; } >"$RES/_lab/batch"
    xb "$_h"
  done
}

link() {
  _member "$1"; h1=$_h; if1=$_if; a1=$_addr
  _member "$2"; h2=$_h; if2=$_if; a2=$_addr
  x ip -n "$h1" link add "$if1" type veth peer name "$if2" netns "$h2"
  x ip -n "$h1" link set "$if1" up
  x ip -n "$h2" link set "$if2" up
  [ -n "$a1" ] && x ip -n "$h1" addr add "$a1" dev "$if1"
  [ -n "$a2" ] && x ip -n "$h2" addr add "$a2" dev "$if2"
}

dr_vip() {
  h=$1; vip=$2; dev=${3:-lo}
  sysctls "$h" net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  x ip -n "$h" addr add "$vip/32" dev "$dev"
}

server() {
  h=$1; port=$2
  log "+ server $h :$port"
  ip netns exec "$h" $PY server "$h" "$port" "$RES/_lab" >>"$RES/_lab/server-$h.log" 2>&1 &
  echo $! >>"$RES/_lab/server-pids"
  i=0
  while [ ! -e "$RES/_lab/$h.ready" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  [ -e "$RES/_lab/$h.ready" ] || setup_error "server $h :$port did not start: $(cat "$RES/_lab/server-$h.log")"
}

LAB_EXCHANGES=0
exchange() {
  LAB_EXCHANGES=$((LAB_EXCHANGES + 1))
  log "+ exchange $* (#$LAB_EXCHANGES)"
  ip netns exec "$1" $PY client "$1" "$2" "$3" "$RES/_lab/exchange-$LAB_EXCHANGES.json" \
    >>"$RES/_lab/client-$1.log" 2>&1 || setup_error "client $1 crashed: $(cat "$RES/_lab/client-$1.log")"
}

topo_nat() {
  gw=$1; nclients=${2:-1}
  clients=
  i=1
  while [ $i -le "$nclients" ]; do
    if [ "$nclients" -eq 1 ]; then c=client; else c=client$i; fi
    host "$c" client
    clients="$clients $c:eth0:203.0.113.$((9 + i))/24"
    i=$((i + 1))
  done
  host director director
  host rs1 realserver
  host rs2 realserver
  outside="director:eth0:203.0.113.1/24"
  inside="director:eth1:10.1.0.1/24 rs1:eth0:10.1.0.11/24 rs2:eth0:10.1.0.12/24"
  if [ "$gw" = router ]; then
    host router router
    outside="$outside router:eth0:203.0.113.254/24"
    inside="$inside router:eth1:10.1.0.254/24"
    sysctls router net.ipv4.ip_forward=1
    rgw=10.1.0.254
  else
    rgw=10.1.0.1
  fi
  lan outside $clients $outside
  lan inside $inside
  x ip -n director addr add 203.0.113.100/32 dev eth0
  sysctls director net.ipv4.ip_forward=1
  route rs1 default via $rgw
  route rs2 default via $rgw
  for c in $clients; do route "${c%%:*}" default via 203.0.113.1; done
}

topo_dr() {
  host client client
  host router router
  host director director
  host rs1 realserver
  host rs2 realserver
  lan wan client:eth0:198.51.100.10/24 router:eth0:198.51.100.1/24
  lan lan router:eth1:10.0.0.254/24 director:eth0:10.0.0.1/24 rs1:eth0:10.0.0.11/24 rs2:eth0:10.0.0.12/24
  sysctls router net.ipv4.ip_forward=1
  x ip -n director addr add 10.0.0.100/32 dev eth0
  route client default via 198.51.100.1
  route director default via 10.0.0.254
  route rs1 default via 10.0.0.254
  route rs2 default via 10.0.0.254
}
