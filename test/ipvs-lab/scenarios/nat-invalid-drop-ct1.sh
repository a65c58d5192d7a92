# LVS-NAT with "-m conntrack --ctstate INVALID -j DROP" in the director's FORWARD chain and
# net.ipv4.vs.conntrack=1 (ipvs_nfct): IPVS keeps the conntrack entry and rewrites its reply tuple.
# Reproduces: LVS-HOWTO 29.5/29.6 (sources/002): "ipvs_nfct when added to ipvs gives you the ability to use
# -m state"; Julian's FORWARD "--state RELATED,ESTABLISHED -j ACCEPT" example.
TITLE="LVS-NAT, FORWARD ctstate INVALID DROP, vs.conntrack=1"
SOURCE="LVS-HOWTO 29.5, 29.6 (sources/002_470e9850247cd7a0.txt)"
NOTES="With vs.conntrack=1 the reply matches the conntrack entry IPVS maintains and is not INVALID: everything \
works; conntrack -L shows one entry, original CIP->VIP:80, reply RIP:8080->CIP, TIME_WAIT [ASSURED]."

setup() {
  topo_nat director
  sysctls director net.ipv4.vs.conntrack=1
  on director iptables -A FORWARD -m conntrack --ctstate INVALID -j DROP
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
