# LVS-DR whose director accepts the service only with "-m state --state NEW" (INPUT policy DROP): the director
# sees only the client's half of the connection, so netfilter never calls it ESTABLISHED.
# Reproduces: LVS-HOWTO 29.1 (Sebastiaan Tesink 2006/2007: "iptables -A INPUT -m state --state NEW -p tcp
# --dport 80 -j ACCEPT ... caused connections to be denied") and 29.16 (Thomas Pedoussaut 2008: "the TCP-FIN
# packets that are arriving on the load balancer are never passed to the real server") (sources/002).
TITLE="LVS-DR, INPUT accepts only --state NEW"
SOURCE="LVS-HOWTO 29.1, 29.16 (sources/002_470e9850247cd7a0.txt)"
NOTES=""

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
