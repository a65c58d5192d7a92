# LVS-DR with net.ipv4.ip_forward=0 on the director: IPVS takes the client's packets at LOCAL_IN and sends them
# to the realserver's MAC itself; the director never forwards in the routing sense.
# Reproduces: LVS-HOWTO 29.3 (sources/002): the incoming path "PREROUTING -> LOCAL_IN -> POSTROUTING".
TITLE="LVS-DR, director ip_forward=0"
SOURCE="LVS-HOWTO 29.3 (sources/002_470e9850247cd7a0.txt)"
NOTES="Works exactly like dr-stateless (FIN_WAIT in ipvsadm -Lnc afterwards): LVS-DR does not need ip_forward on \
the director."

setup() {
  topo_dr
  sysctls director net.ipv4.ip_forward=0
  on director ipvsadm -A -t 10.0.0.100:80 -s rr
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g
  dr_vip rs1 10.0.0.100
  dr_vip rs2 10.0.0.100
  server rs1 80
  server rs2 80
}

run() { exchange client 198.51.100.10 10.0.0.100:80; }
