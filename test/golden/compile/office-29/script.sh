#!/bin/sh
# Uplink desired state for site office-29
# content hash 6df9e20c0504f2654fcfc8b2cfbace5d560b0a33ec8df0b050fd1615b9c031d0
# A review copy: on a managed router the agent applies this itself (one ip -batch,
# one nft transaction, ownership checks, commit-confirmed). Do not run it there.
set -e

# Values only the router knows, read when the script runs
ISP1_GW=$(ip -4 route show default dev wan1 | awk '{print $3; exit}')  # gateway: detect (DHCP)
ISP1_ADDR=$(ip -4 -o addr show dev wan1 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of wan1
ISP2_ADDR=$(ip -4 -o addr show dev enp3s0 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of enp3s0

# Kernel settings
sysctl -qw net.ipv4.conf.all.rp_filter=2
sysctl -qw net.ipv4.conf.enp3s0.rp_filter=2
sysctl -qw net.ipv4.conf.wan1.rp_filter=2
sysctl -qw net.ipv4.ip_forward=1

# Routing tables
# table 200: balanced default route
ip route replace default via "$ISP1_GW" dev wan1 table 200 proto 252  # balance:default
# table 100: provider isp1 (wan1)
ip route replace default via "$ISP1_GW" dev wan1 table 100 proto 252  # provider:isp1:default; removed while isp1 is down
# table 101: provider isp2 (enp3s0)
ip route replace default via 198.51.100.57 dev enp3s0 table 101 proto 252  # provider:isp2:default; removed while isp2 is down

# Policy rules, in priority order
ip rule add priority 900 lookup main suppress_prefixlength 0 protocol 252  # main-specific-routes
ip rule add priority 1000 fwmark 0x100/0xff00 lookup 100 protocol 252  # track:isp1
ip rule add priority 1001 fwmark 0x200/0xff00 lookup 101 protocol 252  # track:isp2
ip rule add priority 2000 from "$ISP1_ADDR" lookup 100 protocol 252  # source:isp1
ip rule add priority 2001 from "$ISP2_ADDR" lookup 101 protocol 252  # source:isp2
ip rule add priority 2001 from 203.0.113.224/29 lookup 101 protocol 252  # source:isp2:routed#0
ip rule add priority 30000 lookup 200 protocol 252  # balance
ip rule add priority 30001 lookup 101 protocol 252  # fallback:isp2

# Netfilter: table inet uplink, replaced in one transaction (mark mask 0xff00)
nft -f - <<'NFT'
add table inet uplink
delete table inet uplink
table inet uplink {
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    meta nfproto ipv4 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
    meta nfproto ipv4 iifname "enp3s0" ct state new ct mark set ct mark and 0xffff00ff or 0x200 comment "uplink:track-save"
    meta nfproto ipv4 iifname "wan1" ct state new ct mark set ct mark and 0xffff00ff or 0x100 comment "uplink:track-save"
  }
  chain output {
    type route hook output priority mangle; policy accept;
    meta nfproto ipv4 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    meta nfproto ipv4 oifname "enp3s0" masquerade comment "uplink:masquerade"
    meta nfproto ipv4 oifname "wan1" masquerade comment "uplink:masquerade"
  }
}
NFT
