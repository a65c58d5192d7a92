# LVS-NAT with a stateful OUTPUT chain on the director (policy DROP, NEW,ESTABLISHED,RELATED accepted) and
# the default net.ipv4.vs.conntrack=0. IPVS sends the packets it forwards to the realserver through the
# LOCAL_OUT hook, so filter OUTPUT judges them.
# Reproduces: LVS-HOWTO 29.15 (sources/002), Laurentiu C. Badea 2008: "OUTPUT allows NEW,ESTABLISHED,RELATED
# states and FORWARD is open ... the OUTPUT chain blocked *only* that FIN-ACK packet" (kernel 2.6.20).
TITLE="LVS-NAT, stateful OUTPUT chain, vs.conntrack=0"
SOURCE="LVS-HOWTO 29.15 (sources/002_470e9850247cd7a0.txt)"
NOTES="Surprise: on kernel 6.1 it is not the last FIN/ACK (LVS-HOWTO 29.15, kernel 2.6.20) but the very first SYN \
that dies. IPVS sends the packet it forwards to the realserver through LOCAL_OUT after detaching its \
conntrack (vs.conntrack=0: the packet is UNTRACKED), so the state rule does not match and the OUTPUT policy \
drops it: iptables-save shows :OUTPUT DROP [2:120] (the SYN and its retransmission), ipvsadm -Lnc SYN_RECV, \
OutPkts=0. The director's conntrack -L stays empty. \
vs.conntrack=1 alone (nat-output-stateful-ct1) and the stateless accepts toward the realservers alone (run \
in the VM) each make it work. With UNTRACKED accepted too, the FIN/ACK of 29.15 is what dies: \
nat-output-untracked."

setup() {
  topo_nat director
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
