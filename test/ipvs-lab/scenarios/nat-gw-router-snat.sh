# nat-gw-router (LVS-NAT, the realservers' gateway is another router) repaired the way lvsdoctor's fix says:
# MASQUERADE toward the realservers and net.ipv4.vs.conntrack=1, so that the realservers answer the director.
# Reproduces: sources/000 (lvs-users "lvs. Nat", 2014): the replies must come back through the director;
# LVS-HOWTO 29.5 (sources/002): with ipvs_nfct "you can use ... SNAT" for IPVS connections.
TITLE="LVS-NAT, realserver gateway = another router, MASQUERADE + vs.conntrack=1"
SOURCE="sources/000_e07122559a47da1e.txt; LVS-HOWTO 29.5 (sources/002)"
NOTES="Works: the MASQUERADE rule counts the SYN (the connection's first packet; the binding does the rest), the \
realserver sees the director (10.1.0.1) as its peer, keeping the client's port, and answers it; the director \
un-SNATs at PREROUTING and IPVS un-NATs at FORWARD. conntrack -L: one entry, original CIP->VIP:80, reply \
RIP:8080 -> 10.1.0.1 (IPVS's reply tuple, then NAT's), TIME_WAIT [ASSURED]; ipvsadm -Lnc TIME_WAIT."

setup() {
  topo_nat router
  sysctls director net.ipv4.vs.conntrack=1
  on director iptables -t nat -A POSTROUTING -d 10.1.0.11/32 -p tcp -m tcp --dport 8080 -j MASQUERADE
  on director iptables -t nat -A POSTROUTING -d 10.1.0.12/32 -p tcp -m tcp --dport 8080 -j MASQUERADE
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
