# The director of dr-state-new (INPUT policy DROP, only --state NEW to :80 and RELATED,ESTABLISHED accepted) with
# net.ipv4.vs.conntrack=1: does keeping netfilter's conntrack entries for IPVS connections rescue a DR director
# that filters statefully? (The director still never sees the replies.)
# Reproduces: LVS-HOWTO 29.16 and 29.5 (sources/002): "the standard netfilter stateful filtering can't be used
# with LVS-DR"; "We support -m state for DR and TUN too" (Julian, on ipvs_nfct).
TITLE="LVS-DR, INPUT accepts only --state NEW, vs.conntrack=1"
SOURCE="LVS-HOWTO 29.16, 29.5 (sources/002_470e9850247cd7a0.txt)"
NOTES="Surprise: vs.conntrack=1 makes it worse. The SYN is NEW and IPVS now keeps its conntrack entry (conntrack \
-L: SYN_SENT [UNREPLIED], since the director never sees the SYN/ACK), so the client's next packets belong to \
an existing connection that is neither NEW nor ESTABLISHED and fall to the DROP policy. The client completes \
its handshake (the SYN/ACK comes straight from the realserver) but the realserver never gets the ACK or the \
request: no response. ipvsadm -Lnc: SYN_RECV, InPkts=1. \
Fix (the :80 accept without --state, vs.conntrack still 1) run in the VM: works; the ACK, request and FIN are \
INVALID to conntrack and pass the stateless rule."

setup() {
  topo_dr
  sysctls director net.ipv4.vs.conntrack=1
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
