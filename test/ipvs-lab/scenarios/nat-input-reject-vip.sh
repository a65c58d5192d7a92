# LVS-NAT whose director rejects the VIP's port in filter INPUT: filter INPUT runs before IPVS at LOCAL_IN, so
# the SYN never reaches the service.
# Reproduces: LVS-HOWTO 29.3 (sources/002): "LVS registers itself with a higher priority than iptables rules,
# and thus iptables will get the packet first and then LVS"; "filter rules intercept packets before ip_vs".
TITLE="LVS-NAT, filter INPUT rejects the VIP"
SOURCE="LVS-HOWTO 29.3 (sources/002_470e9850247cd7a0.txt)"
NOTES="The client gets ICMP port-unreachable at once (connection refused, no timeout); IPVS never sees the SYN: -Ln \
--stats all zero and ipvsadm -Lnc empty."

setup() {
  topo_nat director
  on director iptables -A INPUT -d 203.0.113.100/32 -p tcp -m tcp --dport 80 -j REJECT
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
