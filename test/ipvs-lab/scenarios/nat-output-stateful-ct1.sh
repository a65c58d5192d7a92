# The 29.15 director again (stateful OUTPUT chain, policy DROP), now with net.ipv4.vs.conntrack=1, which makes
# IPVS keep netfilter conntrack entries for its connections (ipvs_nfct, LVS-HOWTO 29.5).
# Reproduces: LVS-HOWTO 29.15 and 29.5 (sources/002): "echo 1 > /proc/sys/net/ipv4/vs/conntrack".
TITLE="LVS-NAT, stateful OUTPUT chain, vs.conntrack=1"
SOURCE="LVS-HOWTO 29.15, 29.5, 29.6 (sources/002_470e9850247cd7a0.txt)"
NOTES="With vs.conntrack=1 the same stateful OUTPUT chain passes everything, including both FINs (:OUTPUT DROP \
[0:0]): the 29.15 loss of the last FIN/ACK does not reproduce on 6.1. conntrack -L on the director shows the \
IPVS connection as one entry whose reply tuple IPVS rewrote to the realserver (src=10.1.0.12 sport=8080), \
TIME_WAIT [ASSURED]. \
Surprise: ipvsadm -Ln --stats shows all zeros although the exchange worked: 6.1 sums the per-CPU counters \
into what ipvsadm reads only in the 2-second estimation timer (ip_vs_est.c), and this exchange and snapshot \
took less."

setup() {
  topo_nat director
  sysctls director net.ipv4.vs.conntrack=1
  on director iptables -A INPUT -d 203.0.113.100/32 -p tcp -m tcp --dport 80 -j ACCEPT
  on director iptables -A OUTPUT -m state --state NEW,RELATED,ESTABLISHED -j ACCEPT
  on director iptables -P OUTPUT DROP
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
