# LVS-DR whose director filters OUTPUT statefully (policy DROP, NEW,RELATED,ESTABLISHED accepted), INPUT open,
# default net.ipv4.vs.conntrack=0: IPVS sends DR packets out through LOCAL_OUT too (ip_vs_dr_xmit ->
# ip_vs_send_or_cont), so filter OUTPUT judges them as it judges LVS-NAT's (nat-output-stateful).
# Reproduces: LVS-HOWTO 29.16 (sources/002): "the standard netfilter stateful filtering can't be used with
# LVS-DR"; 29.3: the director's path for LVS-DR packets "PREROUTING -> LOCAL_IN -> POSTROUTING".
TITLE="LVS-DR, stateful OUTPUT chain, vs.conntrack=0"
SOURCE="LVS-HOWTO 29.16, 29.3 (sources/002_470e9850247cd7a0.txt)"
NOTES="No connection: the SYN that IPVS forwards by direct routing is UNTRACKED in OUTPUT (ip_vs_notrack) and falls \
to the policy (:OUTPUT DROP [2:120], the SYN and its retransmission); ipvsadm -Lnc SYN_RECV. So a DR director \
meets filter OUTPUT on its way to the realserver although the packet is never routed as a local one (LVS-HOWTO \
29.3's map leaves OUTPUT out)."

setup() {
  topo_dr
  on director iptables -A OUTPUT -m state --state NEW,RELATED,ESTABLISHED -j ACCEPT
  on director iptables -P OUTPUT DROP
  on director ipvsadm -A -t 10.0.0.100:80 -s rr
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g
  dr_vip rs1 10.0.0.100
  dr_vip rs2 10.0.0.100
  server rs1 80
  server rs2 80
}

run() { exchange client 198.51.100.10 10.0.0.100:80; }
