# LVS-NAT whose director filters INPUT statefully (policy DROP; RELATED,ESTABLISHED accepted; NEW to the VIP's
# port accepted), with the default net.ipv4.vs.conntrack=0.
# Reproduces: LVS-HOWTO 29.15 (sources/002), Laurentiu C. Badea 2008, last paragraph: "the INPUT chain would have
# blocked the same packet in the same configuration, so both INPUT and OUTPUT need to have a stateless ACCEPT".
TITLE="LVS-NAT, stateful INPUT chain, vs.conntrack=0"
SOURCE="LVS-HOWTO 29.15 (sources/002_470e9850247cd7a0.txt)"
NOTES="Handshake and response work, the client's FIN is lost: with vs.conntrack=0 every packet from the client is \
NEW to netfilter (iptables-save -c: the NEW rule counted all 5 packets, the RELATED,ESTABLISHED rule 0), and \
the FIN, which cannot open a connection, is INVALID and falls to the DROP policy (:INPUT DROP [7:364], the \
FIN and its retransmissions). So on 6.1 it is INPUT, not OUTPUT, that eats the last FIN/ACK of 29.15. \
ipvsadm -Lnc leaves the connection in FIN_WAIT (the server's FIN passed). \
Either fix works in the VM: vs.conntrack=1 with the same chain (everything after the SYN is ESTABLISHED; \
conntrack -L: TIME_WAIT [ASSURED]) or a stateless accept to the VIP's port."

setup() {
  topo_nat director
  on director iptables -A INPUT -i lo -j ACCEPT
  on director iptables -A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
  on director iptables -A INPUT -d 203.0.113.100/32 -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT
  on director iptables -P INPUT DROP
  on director ipvsadm -A -t 203.0.113.100:80 -s rr
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
