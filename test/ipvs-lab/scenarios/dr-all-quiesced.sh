# LVS-DR whose realservers all have weight 0 (quiesced, e.g. drained for maintenance, or keepalived's
# inhibit_on_failure after every health check failed): the schedulers skip weight-0 destinations, so a new
# connection finds none and ip_vs_leave answers the SYN with ICMP port unreachable.
# Reproduces: net/netfilter/ipvs/ip_vs_lc.c ("If the weight is equal to zero, it means that the server is
# quiesced, the existing connections to the server still get served, but no new connection is assigned to the
# server"), ip_vs_core.c ip_vs_leave ("Notifying the client that the server is not available": icmp_send
# ICMP_PORT_UNREACH); ipvsadm(8) -w.
TITLE="LVS-DR, every realserver weight 0"
SOURCE="net/netfilter/ipvs/ip_vs_core.c ip_vs_leave, ip_vs_lc.c (weight 0 = quiesced); ipvsadm(8) -w"
NOTES="The client's connect() fails at once with ECONNREFUSED (the ICMP port unreachable from the director), \
not after a timeout; ipvsadm -Lnc is empty and the service's counters stay 0: no connection entry is made."

setup() {
  topo_dr
  sysctls director net.ipv4.ip_forward=1
  on director ipvsadm -A -t 10.0.0.100:80 -s wlc
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 0
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 0
  dr_vip rs1 10.0.0.100
  dr_vip rs2 10.0.0.100
  server rs1 80
  server rs2 80
}

run() { exchange client 198.51.100.10 10.0.0.100:80; }
