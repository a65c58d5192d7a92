# A persistent LVS-NAT service (rr, -p 60): the client connects, then every realserver is drained to weight 0
# (ipvsadm -e -w 0, what keepalived's inhibit_on_failure does when health checks fail), and the client connects
# again: its persistence template still names its realserver, and ip_vs_check_template keeps a template whose
# destination is quiesced unless net.ipv4.vs.expire_quiescent_template=1, so the connection goes there.
# Reproduces: net/netfilter/ipvs/ip_vs_conn.c ip_vs_check_template, expire_quiescent_template; ip-sysctl
# (ipvs-sysctl.rst) expire_quiescent_template; the random scenarios' drained draws.
TITLE="persistence, every realserver drained, the client comes back"
SOURCE="net/netfilter/ipvs/ip_vs_conn.c ip_vs_check_template; Documentation/networking/ipvs-sysctl.rst"
NOTES="Both connections work and go to the same realserver (10.1.0.11, rr's first): ipvsadm -Lnc keeps the \
template 203.0.113.10:0 -> 10.1.0.11:8080 with both weights 0. A client without a template would be refused."

setup() {
  topo_nat director
  on director ipvsadm -A -t 203.0.113.100:80 -s rr -p 60
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  server rs1 8080
  server rs2 8080
}

run() {
  exchange client 203.0.113.10 203.0.113.100:80
  on director ipvsadm -e -t 203.0.113.100:80 -r 10.1.0.11:8080 -m -w 0
  on director ipvsadm -e -t 203.0.113.100:80 -r 10.1.0.12:8080 -m -w 0
  exchange client 203.0.113.10 203.0.113.100:80
}
