# A persistent LVS-NAT service (-p 60, rr over two realservers) and two clients: client1 connects twice, then
# client2 once. Persistence pins client1 to one realserver (a template in ipvsadm -Lnc); client2 gets the other.
# Reproduces: LVS-HOWTO 29.1 and 29.12 (sources/002): the "wlc persistent 120" / "persistent 1200" services.
TITLE="persistence, two clients"
SOURCE="LVS-HOWTO 29.1, 29.12 (sources/002_470e9850247cd7a0.txt)"
NOTES="client1's two connections went to the same realserver, client2's to the other. Surprise: ipvsadm -Lnc shows \
the persistence templates (client:0 -> VIP:80 -> RIP) in state ASSURED, not NONE as older documentation \
shows (kernels since about 4.x mark a template ASSURED once a connection used it), expiring after the 60 s \
persistence timeout while the connections sit in TIME_WAIT."

setup() {
  topo_nat director 2
  on director ipvsadm -A -t 203.0.113.100:80 -s rr -p 60
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() {
  exchange client1 203.0.113.10 203.0.113.100:80
  exchange client1 203.0.113.10 203.0.113.100:80
  exchange client2 203.0.113.11 203.0.113.100:80
}
