# LVS-DR behind Red Hat's stock firewall chain: RELATED,ESTABLISHED accepted, NEW to port 80 accepted, then
# "REJECT --reject-with icmp-host-prohibited", used from both INPUT and FORWARD.
# Reproduces: LVS-HOWTO 29.14 (sources/002), Klaas Jan Wierenga 2007: long sessions through an LVS-DR director
# terminated by icmp-host-prohibited; the ruleset below is his /etc/sysconfig/iptables.
TITLE="LVS-DR, RH-Firewall-1-INPUT (ESTABLISHED + NEW :80 + REJECT)"
SOURCE="LVS-HOWTO 29.14 (sources/002_470e9850247cd7a0.txt)"
NOTES="Like dr-state-new, but the FIN (INVALID) reaches the REJECT: the director answers each FIN retransmission \
with ICMP host-prohibited, which the client's TCP ignores (stays in LAST_ACK). Surprise: those ICMP errors \
are counted by IPVS as OutPkts of the DR service (-Ln --stats OutPkts=6, OutBytes=480 = 6 x 80-byte ICMP), \
the only time a DR service shows outgoing packets. ipvsadm -Lnc: ESTABLISHED, 15 min. \
Why OutPkts: ip_vs_out_hook at LOCAL_OUT sees the director's own ICMP error, ip_vs_out_icmp finds the DR \
connection from the header inside it, and since 5.10 (\"ipvs: inspect reply packets from DR/TUN real servers\") \
handle_response_icmp counts non-MASQ connections too. Fix (lvsdoctor check / trace --fix: the port-80 accept \
without --state) run in the VM: works, FIN_WAIT afterwards."

setup() {
  topo_dr
  on director iptables -N RH-Firewall-1-INPUT
  on director iptables -A FORWARD -j RH-Firewall-1-INPUT
  on director iptables -A INPUT -j RH-Firewall-1-INPUT
  on director iptables -A RH-Firewall-1-INPUT -i lo -j ACCEPT
  on director iptables -A RH-Firewall-1-INPUT -p icmp -m icmp --icmp-type any -j ACCEPT
  on director iptables -A RH-Firewall-1-INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
  on director iptables -A RH-Firewall-1-INPUT -p tcp -m state -m tcp --dport 80 --state NEW -j ACCEPT
  on director iptables -A RH-Firewall-1-INPUT -j REJECT --reject-with icmp-host-prohibited
  on director ipvsadm -A -t 10.0.0.100:80 -s rr
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g
  on director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g
  dr_vip rs1 10.0.0.100
  dr_vip rs2 10.0.0.100
  server rs1 80
  server rs2 80
}

run() { exchange client 198.51.100.10 10.0.0.100:80; }
