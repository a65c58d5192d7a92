# LVS-DR whose director accepts the service only with "-m state --state NEW" (INPUT policy DROP): the director
# sees only the client's half of the connection, so netfilter never calls it ESTABLISHED.
# Reproduces: LVS-HOWTO 29.1 (Sebastiaan Tesink 2006/2007: "iptables -A INPUT -m state --state NEW -p tcp
# --dport 80 -j ACCEPT ... caused connections to be denied") and 29.16 (Thomas Pedoussaut 2008: "the TCP-FIN
# packets that are arriving on the load balancer are never passed to the real server") (sources/002).
TITLE="LVS-DR, INPUT accepts only --state NEW"
SOURCE="LVS-HOWTO 29.1, 29.16 (sources/002_470e9850247cd7a0.txt)"
NOTES="Handshake and response work (every client packet is NEW to netfilter: IPVS drops the conntrack of each \
packet, so none is ever ESTABLISHED and the loose TCP pickup makes plain ACKs NEW; iptables-save -c: the NEW \
rule counted all 5 packets, the RELATED,ESTABLISHED rule none), but the client's FIN is INVALID and dropped \
by the policy: the server never sees it, the client stays in LAST_ACK. iptables-save :INPUT DROP [7:364] = \
the FIN and its retransmissions until the snapshot (52 bytes each). ipvsadm -Lnc keeps the connection \
ESTABLISHED with 15 min to live: the ActiveConn inflation of LVS-HOWTO 29.1 (1,200 -> 30,000 active \
connections). \
The 15 min and the 2 min of dr-stateless are ip_vs_proto_tcp.c's INPUT-ONLY rows (DR/TUN connections carry \
IP_VS_CONN_F_NOOUTPUT): the client's FIN moves ESTABLISHED to FIN_WAIT, nothing else does. Fix (the :80 accept \
without --state) run in the VM: works."

setup() {
  topo_dr
  on director iptables -A INPUT -i lo -j ACCEPT
  on director iptables -A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
  on director iptables -A INPUT -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT
  on director iptables -P INPUT DROP
  on director ipvsadm -A -t 10.0.0.100:80 -s rr
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g
  dr_vip rs1 10.0.0.100
  dr_vip rs2 10.0.0.100
  server rs1 80
  server rs2 80
}

run() { exchange client 198.51.100.10 10.0.0.100:80; }
