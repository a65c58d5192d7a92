# LVS-NAT with net.ipv4.ip_forward=0 on the director: IPVS un-NATs the replies in the FORWARD hook, which
# a host that does not forward never reaches.
# Reproduces: LVS-HOWTO 29.3 (sources/002): "for outgoing packets (only LVS-NAT): PREROUTING -> FORWARD ->
# POSTROUTING"; "The only time that the FORWARD chain comes into play with LVS is for return packets".
TITLE="LVS-NAT, director ip_forward=0"
SOURCE="LVS-HOWTO 29.3 (sources/002_470e9850247cd7a0.txt)"
NOTES="Same picture as nat-gw-router although the reply does reach the director: ipvsadm -Lnc SYN_RECV, InPkts=2, \
OutPkts=0. With ip_forward=0 the reply is not forwardable, so it never reaches the FORWARD hook where IPVS \
un-NATs (the SYN toward the realserver is sent by IPVS itself and is not affected)."

setup() {
  topo_nat director
  sysctls director net.ipv4.ip_forward=0
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
