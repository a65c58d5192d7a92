# nat-gw-router-snat without net.ipv4.vs.conntrack=1: the MASQUERADE rules are there, but IPVS sends its packets
# on untracked (ip_vs_notrack), and the nat table only ever sees tracked packets.
# Reproduces: LVS-HOWTO 29.5/29.6 (sources/002): without ipvs_nfct "netfilter is not able to connection track"
# IPVS packets; sources/000 (lvs-users "lvs. Nat", 2014): the replies bypass the director.
TITLE="LVS-NAT, realserver gateway = another router, MASQUERADE with vs.conntrack=0"
SOURCE="LVS-HOWTO 29.5, 29.6 (sources/002); sources/000_e07122559a47da1e.txt"
NOTES="Fails like nat-gw-router: the MASQUERADE rules count nothing ([0:0]), the SYN reaches the realserver with the \
client's address, its SYN/ACK goes out via the router un-NATed; ipvsadm -Lnc SYN_RECV, conntrack -L empty."

setup() {
  topo_nat router
  on director iptables -t nat -A POSTROUTING -d 10.1.0.11/32 -p tcp -m tcp --dport 8080 -j MASQUERADE
  on director iptables -t nat -A POSTROUTING -d 10.1.0.12/32 -p tcp -m tcp --dport 8080 -j MASQUERADE
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
