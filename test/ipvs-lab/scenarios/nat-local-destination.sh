# LVS-NAT whose only destination is the director itself (10.1.0.1:8080, its inside address; a server listens there)
# and a FORWARD chain with policy DROP: IPVS delivers such a connection to the director's own stack, and the
# director's answers leave through LOCAL_OUT (ip_vs_local_reply4 turns them back into the VIP), so FORWARD never
# sees them.
# Reproduces: net/netfilter/ipvs/ip_vs_xmit.c (ip_vs_nat_xmit: a local route to the destination,
# ip_vs_nat_send_or_cont with local: NF_ACCEPT, the packet goes on to the local socket), ip_vs_core.c
# ip_vs_local_reply4; found by the random lab scenarios (seed 9 #5), where trace sent the packet out on lo to an
# outside server whose SYN/ACK came back as a forwarded INVALID packet that the FORWARD policy dropped.
TITLE="LVS-NAT, the director itself is the destination, FORWARD policy DROP"
SOURCE="net/netfilter/ipvs/ip_vs_xmit.c ip_vs_nat_xmit, ip_vs_nat_send_or_cont; random IPVS lab scenarios seed 9 #5"
NOTES="Works: handshake, response, both FINs; ipvsadm -Sn lists the destination as -m (Masq) and -Lnc holds the \
connection 203.0.113.10 -> VIP:80 -> 10.1.0.1:8080 in TIME_WAIT; the FORWARD policy counter stays 0."

setup() {
  topo_nat director
  on director iptables -P FORWARD DROP
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.1:8080 -m
  server director 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
