# The 29.15 director (stateful OUTPUT chain, policy DROP) whose OUTPUT rule also accepts UNTRACKED, the state
# the forwarded packets have with the default net.ipv4.vs.conntrack=0 (nat-output-stateful): the first SYN now
# passes, and what is left is the client's FIN, which has no conntrack for ip_vs_notrack to replace.
# Reproduces: LVS-HOWTO 29.15 (sources/002), Laurentiu C. Badea 2008: "the OUTPUT chain blocked *only* that
# FIN-ACK packet ... All the other packets matched the NEW rule. This would have ended up as INVALID probably."
TITLE="LVS-NAT, stateful OUTPUT chain accepting UNTRACKED, vs.conntrack=0"
SOURCE="LVS-HOWTO 29.15 (sources/002_470e9850247cd7a0.txt)"
NOTES="29.15's symptom exactly, on 6.1: handshake and response work, the client's FIN/ACK dies in OUTPUT and the \
client stays in LAST_ACK retransmitting it (:OUTPUT DROP [6:312], the UNTRACKED rule counted the other 5 \
packets). Why: the FIN is INVALID at PREROUTING (with vs.conntrack=0 no entry survives, and a FIN cannot start \
one), so it carries no conntrack; ip_vs_notrack only replaces a conntrack the packet has, and conntrack \
(ipv4_conntrack_local) looks at the packet again at LOCAL_OUT, with its new tuple: INVALID again. Every other \
packet had a fresh entry that ip_vs_notrack turned into UNTRACKED. IPVS itself saw every FIN retransmission \
(InPkts 11) and ends in TIME_WAIT."

setup() {
  topo_nat director
  on director iptables -A INPUT -d 203.0.113.100/32 -p tcp -m tcp --dport 80 -j ACCEPT
  on director iptables -A OUTPUT -m state --state NEW,RELATED,ESTABLISHED,UNTRACKED -j ACCEPT
  on director iptables -P OUTPUT DROP
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
