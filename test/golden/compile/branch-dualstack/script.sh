#!/bin/sh
# Uplink desired state for site branch-dualstack
# content hash d5b4711e240cf22b52d8bde387ba02307dcde5cd15bc6462ccb1d214c69b3fe9
# A review copy: on a managed router the agent applies this itself (one ip -batch,
# one nft transaction, ownership checks, commit-confirmed). Do not run it there.
set -e

# Values only the router knows, read when the script runs
ISP2_GW=$(ip -4 route show default dev wan2 | awk '{print $3; exit}')  # gateway: detect (DHCP)
ISP2_GW6=$(ip -6 route show default dev wan2 | awk '{print $3; exit}')  # IPv6 gateway: detect (the RA's)
ISP1_ADDR=$(ip -4 -o addr show dev wan1 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of wan1
ISP1_ADDR6=$(ip -6 -o addr show dev wan1 scope global -tentative | awk '{split($4, a, "/"); print a[1]; exit}')  # current IPv6 address of wan1
ISP2_ADDR=$(ip -4 -o addr show dev wan2 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of wan2
ISP2_ADDR6=$(ip -6 -o addr show dev wan2 scope global -tentative | awk '{split($4, a, "/"); print a[1]; exit}')  # current IPv6 address of wan2

# Kernel settings
sysctl -qw net.ipv4.conf.all.rp_filter=2
sysctl -qw net.ipv4.conf.wan1.rp_filter=2
sysctl -qw net.ipv4.conf.wan2.rp_filter=2
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv6.conf.all.forwarding=1
sysctl -qw net.ipv6.conf.wan2.accept_ra=2

# Routing tables
# table 200: balanced default route
ip route replace default table 200 proto 252 \
    nexthop via 198.51.100.33 dev wan1 weight 1 \
    nexthop via "$ISP2_GW" dev wan2 weight 1  # balance:default
ip -6 route replace default table 200 proto 252 \
    nexthop via fe80::1 dev wan1 weight 1 \
    nexthop via "$ISP2_GW6" dev wan2 weight 1  # balance:default:ipv6
# table 100: provider isp1 (wan1)
ip route replace default via 198.51.100.33 dev wan1 table 100 proto 252  # provider:isp1:default; removed while isp1 is down
ip -6 route replace default via fe80::1 dev wan1 table 100 proto 252  # provider:isp1:default:ipv6; removed while isp1 is down
# table 101: provider isp2 (wan2)
ip route replace default via "$ISP2_GW" dev wan2 table 101 proto 252  # provider:isp2:default; removed while isp2 is down
ip -6 route replace default via "$ISP2_GW6" dev wan2 table 101 proto 252  # provider:isp2:default:ipv6; removed while isp2 is down

# Policy rules, in priority order
ip rule add priority 900 lookup main suppress_prefixlength 0 protocol 252  # main-specific-routes
ip -6 rule add priority 900 lookup main suppress_prefixlength 0 protocol 252  # main-specific-routes:ipv6
ip rule add priority 1000 fwmark 0x100/0xff00 lookup 100 protocol 252  # track:isp1
ip -6 rule add priority 1000 fwmark 0x100/0xff00 lookup 100 protocol 252  # track:isp1:ipv6
ip rule add priority 1001 fwmark 0x200/0xff00 lookup 101 protocol 252  # track:isp2
ip -6 rule add priority 1001 fwmark 0x200/0xff00 lookup 101 protocol 252  # track:isp2:ipv6
ip rule add priority 2000 from "$ISP1_ADDR" lookup 100 protocol 252  # source:isp1
ip -6 rule add priority 2000 from "$ISP1_ADDR6" lookup 100 protocol 252  # source:isp1:ipv6
ip -6 rule add priority 2000 from 2001:db8:a1::/48 lookup 100 protocol 252  # source:isp1:prefix#0
ip rule add priority 2001 from "$ISP2_ADDR" lookup 101 protocol 252  # source:isp2
ip -6 rule add priority 2001 from "$ISP2_ADDR6" lookup 101 protocol 252  # source:isp2:ipv6
ip -6 rule add priority 2001 from 2001:db8:b2::/48 lookup 101 protocol 252  # source:isp2:prefix#0
ip rule add priority 10000 ipproto tcp dport 25 lookup 100 protocol 252  # policy:mail:isp1#0
ip -6 rule add priority 10000 ipproto tcp dport 25 lookup 100 protocol 252  # policy:mail:isp1:ipv6#0
ip rule add priority 10001 ipproto tcp dport 25 lookup 101 protocol 252  # policy:mail:isp2#1
ip -6 rule add priority 10001 ipproto tcp dport 25 lookup 101 protocol 252  # policy:mail:isp2:ipv6#1
ip -6 rule add priority 10010 to 2001:db8:cafe::/48 lookup 101 protocol 252  # policy:partner6:isp2:ipv6#0
ip rule add priority 30000 lookup 200 protocol 252  # balance
ip -6 rule add priority 30000 lookup 200 protocol 252  # balance:ipv6

# Netfilter: table inet uplink, replaced in one transaction (mark mask 0xff00)
nft -f - <<'NFT'
add table inet uplink
delete table inet uplink
table inet uplink {
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    meta nfproto ipv6 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv6 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
    meta nfproto ipv6 iifname "wan1" ct state new ct mark set ct mark and 0xffff00ff or 0x100 comment "uplink:track-save"
    meta nfproto ipv6 iifname "wan2" ct state new ct mark set ct mark and 0xffff00ff or 0x200 comment "uplink:track-save"
    meta nfproto ipv4 iifname "wan1" ct state new ct mark set ct mark and 0xffff00ff or 0x100 comment "uplink:track-save"
    meta nfproto ipv4 iifname "wan2" ct state new ct mark set ct mark and 0xffff00ff or 0x200 comment "uplink:track-save"
  }
  chain output {
    type route hook output priority mangle; policy accept;
    meta nfproto ipv6 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv6 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    meta nfproto ipv4 oifname "wan1" masquerade comment "uplink:masquerade"
    meta nfproto ipv4 oifname "wan2" masquerade comment "uplink:masquerade"
    meta nfproto ipv6 oifname "wan2" ip6 saddr 2001:db8:a1::/48 snat ip6 prefix to 2001:db8:b2::/48 comment "uplink:npt"
    meta nfproto ipv6 oifname "wan1" ip6 saddr 2001:db8:b2::/48 snat ip6 prefix to 2001:db8:a1::/48 comment "uplink:npt"
  }
}
NFT
