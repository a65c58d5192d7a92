# LVS-NAT with the source-hashing scheduler (sh) over two realservers, one of them quiesced (weight 0), and a
# client whose address hashes to the quiesced one's bucket: sh does not rehash (without -b sh-fallback), so that
# client is refused although the other realserver is available.
# Reproduces: net/netfilter/ipvs/ip_vs_sh.c (ip_vs_sh_reassign gives every destination, weight 0 too, its
# buckets; ip_vs_sh_schedule returns no destination when the hashed one is unavailable, unless sh-fallback);
# found by the random lab scenarios (random-scenarios.ts), where trace's sh left weight-0 destinations out of
# the table. The kernel's list is the reverse of the order destinations were added: 10.1.0.12 first, then
# 10.1.0.11, gives the list 10.1.0.11, 10.1.0.12 (the listing's order); 203.0.113.10 hashes to bucket 162, the
# first destination's (buckets alternate: weight 1, then weight 0 with one bucket).
TITLE="LVS-NAT, sh, the client's bucket belongs to a weight-0 realserver"
SOURCE="net/netfilter/ipvs/ip_vs_sh.c ip_vs_sh_reassign, ip_vs_sh_schedule; random IPVS lab scenarios"
NOTES="The client is refused at once (ICMP port unreachable from ip_vs_leave: connect() fails with ECONNREFUSED) \
although 10.1.0.12 has weight 1: no connection entry, the service's counters stay 0. With -b sh-fallback \
(nat-sh-fallback) the same client goes to 10.1.0.12."

setup() {
  topo_nat director
  on director ipvsadm -A -t 203.0.113.100:80 -s sh
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.12:8080 -m -w 1
  on director ipvsadm -a -t 203.0.113.100:80 -r 10.1.0.11:8080 -m -w 0
  server rs1 8080
  server rs2 8080
}

run() { exchange client 203.0.113.10 203.0.113.100:80; }
