# LVS-TUN: the director encapsulates the client's packets in IPIP to the realserver, whose tunl0 carries the VIP
# and has rp_filter=0 (the decapsulated packets come in on tunl0 from a client routed via eth0).
# Reproduces: LVS-HOWTO 29.2/29.3 (sources/002), LVS-Tun like LVS-DR: "the reply packets do not go through the
# director"; the usual LVS-Tun realserver: "ip addr add VIP/32 dev tunl0", rp_filter off on tunl0.
TITLE="LVS-TUN, realserver tunl0 with rp_filter=0"
SOURCE="LVS-HOWTO 29.2, 29.3 (sources/002_470e9850247cd7a0.txt)"
NOTES="Works: the realserver decapsulates on tunl0 and answers from the VIP via its default route; the director's \
ipvsadm -Lnc shows FIN_WAIT afterwards (as for DR)."

setup() {
  topo_dr
  on director ipvsadm -A -t 10.0.0.100:80 -s rr
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -i
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12:80 -i
  for rs in rs1 rs2; do
    on $rs ip link set tunl0 up
    dr_vip $rs 10.0.0.100 tunl0
    sysctls $rs net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.tunl0.rp_filter=0
    server $rs 80
  done
}

run() { exchange client 198.51.100.10 10.0.0.100:80; }
