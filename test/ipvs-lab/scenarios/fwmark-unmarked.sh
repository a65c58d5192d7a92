# The fwmark virtual service of fwmark-marked, but nothing sets the mark: the packets to the VIP reach the
# director's own stack, where nothing listens on port 80.
# Reproduces: LVS-HOWTO 29.8 (sources/002): "packets may never get to your FWMARK rules" (a mark that is never
# set leaves the fwmark service without traffic).
TITLE="fwmark service without its MARK rule"
SOURCE="LVS-HOWTO 29.3, 29.8 (sources/002_470e9850247cd7a0.txt)"
NOTES="Connection refused at once: the SYN to the VIP reaches the director's own TCP, which has no listener on :80 \
and answers RST. The FWM 1 service counters stay at zero."

setup() {
  topo_nat director
  on director ipvsadm -A -f 1 -s rr
  on director ipvsadm -a -f 1 -r 10.1.0.11:8080 -m
  on director ipvsadm -a -f 1 -r 10.1.0.12:8080 -m
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
