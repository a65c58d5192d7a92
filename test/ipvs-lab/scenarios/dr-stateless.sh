# LVS-DR with no filter rules: the client's packets cross the director, the realserver answers the client
# directly from the VIP (on its lo, hidden from ARP by arp_ignore=1/arp_announce=2) through the router.
# Reproduces: LVS-HOWTO 29.1 (sources/002): "you don't need filter rules to set up an LVS"; 29.3 (incoming
# packets PREROUTING -> LOCAL_IN -> POSTROUTING on the director, replies never through it).
TITLE="LVS-DR, no filter rules"
SOURCE="LVS-HOWTO 29.1, 29.3 (sources/002_470e9850247cd7a0.txt)"
NOTES="Works. Surprise: after a clean close the director's ipvsadm -Lnc holds the connection in FIN_WAIT (about 2 \
min), never TIME_WAIT or CLOSE as for LVS-NAT: IPVS sees only the client's half (OutPkts=0 always for DR). \
conntrack -L on the director is empty."

setup() {
  topo_dr
  sysctls director net.ipv4.ip_forward=1
  on director ipvsadm -A -t 10.0.0.100:80 -s rr
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g
  dr_vip rs1 10.0.0.100
  dr_vip rs2 10.0.0.100
  server rs1 80
  server rs2 80
}

run() { exchange client 198.51.100.10 10.0.0.100:80; }
