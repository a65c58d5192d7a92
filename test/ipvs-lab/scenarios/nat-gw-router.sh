# LVS-NAT, but the realservers' default gateway is another router, not the director: the replies leave with
# the realserver's address as source, never un-NATed, and the client answers them with RST.
# Reproduces: sources/000 (lvs-users "lvs. Nat", 2014): "the reply must go back through the director";
# LVS-HOWTO 29.3 (sources/002): NAT replies are un-NATed in the director's FORWARD.
TITLE="LVS-NAT, realserver gateway = another router"
SOURCE="sources/000_e07122559a47da1e.txt; LVS-HOWTO 29.3 (sources/002)"
NOTES="The SYN reaches the realserver, whose SYN/ACK leaves via the router with source 10.1.0.x:8080 and is refused \
by the client: connect times out. ipvsadm -Lnc holds SYN_RECV (expires in about 1 min), -Ln --stats counts \
InPkts=2 (SYN and its retransmission), OutPkts=0: the director never sees a reply. \
Fix: MASQUERADE toward the realservers works only with net.ipv4.vs.conntrack=1 (nat-gw-router-snat, \
nat-gw-router-snat-ct0)."

setup() {
  topo_nat router
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
