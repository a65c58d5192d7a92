# LVS-NAT with "-m conntrack --ctstate INVALID -j DROP" in the director's FORWARD chain and the default
# net.ipv4.vs.conntrack=0: the realserver's replies cross FORWARD, where netfilter never saw the request.
# Reproduces: LVS-HOWTO 29.5/29.6 (sources/002): without ipvs_nfct "netfilter is not able to connection track"
# IPVS packets; "IPVS without NFCT drops the conntrack entry for each packet".
TITLE="LVS-NAT, FORWARD ctstate INVALID DROP, vs.conntrack=0"
SOURCE="LVS-HOWTO 29.5, 29.6 (sources/002_470e9850247cd7a0.txt)"
NOTES="The SYN/ACK from the realserver is dropped in FORWARD as INVALID (netfilter never kept the client's SYN: \
vs.conntrack=0): connect times out; ipvsadm -Lnc SYN_RECV, InPkts=2, OutPkts=0."

setup() {
  topo_nat director
  sysctls director net.ipv4.vs.conntrack=0
  on director iptables -A FORWARD -m conntrack --ctstate INVALID -j DROP
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
