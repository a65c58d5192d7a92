# nat-sh-quiesced-bucket with -b sh-fallback: when the client's bucket holds an unavailable destination (weight
# 0), ip_vs_sh_get_fallback walks on from that bucket to the next available one.
# Reproduces: net/netfilter/ipvs/ip_vs_sh.c ip_vs_sh_get_fallback; ipvsadm(8) -b sh-fallback.
TITLE="LVS-NAT, sh with sh-fallback, the client's bucket belongs to a weight-0 realserver"
SOURCE="net/netfilter/ipvs/ip_vs_sh.c ip_vs_sh_get_fallback; ipvsadm(8) --sched-flags"
NOTES="Works: the client goes to 10.1.0.12 (rs2), the only destination with a weight; ipvsadm -Sn shows \
-b sh-fallback."

setup() {
  topo_nat director
  on director ipvsadm -A -t 203.0.113.100:80 -s sh -b sh-fallback
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m -w 1
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m -w 0
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
