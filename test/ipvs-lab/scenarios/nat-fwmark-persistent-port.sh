# A persistent fwmark LVS-NAT service whose realservers listen on 8080 (ipvsadm -a -f 1 -r RIP:8080 -m -p): a
# persistent service forwards to the client's destination port unless that port is the service's own, and an
# fwmark service's port is 0, so the realservers are sent port 80 whatever -r says (ip_vs_sched_persist: dport =
# the packet's port; dest->port only when it equals svc->port). Without -p (fwmark-marked) IPVS uses 8080.
# Reproduces: random scenario seed 17 #4 with check's fixes (the MARK rule for port 80 added): the kernel reset
# the connection at 10.1.0.11:80 while trace sent it to :8080; net/netfilter/ipvs/ip_vs_core.c ip_vs_sched_persist.
TITLE="LVS-NAT, persistent fwmark service, realservers on another port"
SOURCE="IPVS lab random seed 17 #4 (fixed variant); net/netfilter/ipvs/ip_vs_core.c ip_vs_sched_persist"
NOTES="Refused: ipvsadm -Lnc shows the connection to 10.1.0.11:80 (CLOSE), not :8080, and the fwmark template \
IP 203.0.113.10:0 0.0.0.1:0 10.1.0.11:0; the realserver answers the SYN with a reset (nothing listens on 80). \
The same service without -p goes to 8080 (fwmark-marked)."

setup() {
  topo_nat director
  on director iptables -t mangle -A PREROUTING -d 203.0.113.100/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x1/0xffffffff
  on director ipvsadm -A -f 1 -s rr -p 60
  on director ipvsadm -a -f 1 -r 10.1.0.12:8080 -m
  on director ipvsadm -a -f 1 -r 10.1.0.11:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
