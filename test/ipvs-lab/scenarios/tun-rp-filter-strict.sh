# LVS-TUN with strict reverse-path filtering on the realserver (rp_filter=1 on all and tunl0): the decapsulated
# SYN arrives on tunl0, but the route back to the client leaves by eth0.
# Reproduces: LVS-HOWTO 29.3 (sources/002): "rp_filter would probably need to be disabled" when packets arrive
# on another interface than the route back.
TITLE="LVS-TUN, realserver tunl0 with rp_filter=1"
SOURCE="LVS-HOWTO 29.3 (sources/002_470e9850247cd7a0.txt)"
NOTES="The decapsulated SYN is dropped by the realserver's reverse-path filter (rp_filter is max(all, tunl0) = 1; \
eth0 keeps rp_filter=0): connect times out. The director's ipvsadm -Lnc holds SYN_RECV with InPkts=2, \
exactly as for a failed NAT connection. \
Fix (net.ipv4.conf.tunl0.rp_filter=2 with all=1: the effective max(all, tunl0) = 2, loose) run in the VM: works."

setup() {
  topo_dr
  on director ipvsadm -A -t 10.0.0.100:80 -s rr
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -i
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12:80 -i
  for rs in rs1 rs2; do
    on $rs ip link set tunl0 up
    dr_vip $rs 10.0.0.100 tunl0
    sysctls $rs net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.tunl0.rp_filter=1
    server $rs 80
  done
}

run() { exchange client 198.51.100.10 10.0.0.100:80; }
