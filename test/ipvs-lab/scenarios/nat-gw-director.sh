# LVS-NAT, the realservers' default gateway is the director: the textbook setup that works.
# Reproduces: sources/000 (lvs-users "lvs. Nat", 2014): LVS-NAT replies must return through the director to be
# un-NATed; LVS-HOWTO ch. 29.3 (replies are un-NATed in FORWARD).
TITLE="LVS-NAT, realserver gateway = director"
SOURCE="sources/000_e07122559a47da1e.txt; LVS-HOWTO 29.3 (sources/002)"
NOTES="Works: handshake, response, both FINs delivered and acknowledged. After the close the director's ipvsadm \
-Lnc holds the connection in TIME_WAIT (about 2 min); with vs.conntrack=0 the director's conntrack -L is \
EMPTY although every packet crossed it (IPVS detaches the conntrack of each packet it handles), and a \
namespace without rules has no conntrack hooks at all."

setup() {
  topo_nat director
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
