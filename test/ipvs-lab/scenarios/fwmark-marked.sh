# An fwmark virtual service (ipvsadm -A -f 1) with its mangle PREROUTING MARK rule: IPVS matches the mark set
# before LOCAL_IN. LVS-NAT, realserver gateway = director.
# Reproduces: LVS-HOWTO 29.3 (sources/002): "filter rules intercept packets before ip_vs sees them, otherwise
# firewall mark (fwmark) would not work"; the VIP stays on the director ("you still need the VIP ... by
# VIP-less methods like fwmark").
TITLE="fwmark service with its MARK rule"
SOURCE="LVS-HOWTO 29.3, 29.8 (sources/002_470e9850247cd7a0.txt)"
NOTES="Works; ipvsadm -Ln shows the service as FWM 1 and -Lnc lists the connection under the VIP:80 it was \
addressed to (TIME_WAIT after the close)."

setup() {
  topo_nat director
  on director iptables -t mangle -A PREROUTING -d 203.0.113.100/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x1/0xffffffff
  on director ipvsadm -A -f 1 -s rr
  on director ipvsadm -a -f 1 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -f 1 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
