#!/bin/sh
# Uplink desired state for site branch-vlan-lte
# content hash f072ee85eaa2696eaade1698e40e3b0d802f4cc7a92c948b957127a335e0432a
# A review copy: on a managed router the agent applies this itself (one ip -batch,
# one nft transaction, ownership checks, commit-confirmed). Do not run it there.
set -e

# Values only the router knows, read when the script runs
LTE_GW=$(ip -4 route show default dev wwan0 | awk '{print $3; exit}')  # gateway: detect (DHCP)
LTE_USB_GW=$(ip -4 route show default dev enp0s20f0u1 | awk '{print $3; exit}')  # gateway: detect (DHCP)
FIBRE_ADDR=$(ip -4 -o addr show dev enp1s0.100 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of enp1s0.100
DSL_ADDR=$(ip -4 -o addr show dev ppp0 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of ppp0
LTE_ADDR=$(ip -4 -o addr show dev wwan0 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of wwan0
LTE_USB_ADDR=$(ip -4 -o addr show dev enp0s20f0u1 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of enp0s20f0u1

# Kernel settings
sysctl -qw net.ipv4.conf.all.rp_filter=2
sysctl -qw net.ipv4.conf.enp0s20f0u1.rp_filter=2
sysctl -qw net.ipv4.conf.enp1s0/100.accept_local=0
sysctl -qw net.ipv4.conf.enp1s0/100.rp_filter=2
sysctl -qw net.ipv4.conf.ppp0.rp_filter=0
sysctl -qw net.ipv4.conf.wwan0.rp_filter=2
sysctl -qw net.ipv4.ip_forward=1

# Routing tables
# table 200: balanced default route
ip route replace default table 200 proto 252 \
    nexthop via 198.51.100.49 dev enp1s0.100 weight 3 \
    nexthop dev ppp0 weight 1  # balance:default
# table 100: provider fibre (enp1s0.100)
ip route replace default via 198.51.100.49 dev enp1s0.100 table 100 proto 252  # provider:fibre:default; removed while fibre is down
# table 101: provider dsl (ppp0)
ip route replace default dev ppp0 scope link table 101 proto 252  # provider:dsl:default; removed while dsl is down
# table 102: provider lte (wwan0)
ip route replace default via "$LTE_GW" dev wwan0 table 102 proto 252  # provider:lte:default; removed while lte is down
# table 103: provider lte-usb (enp0s20f0u1)
ip route replace default via "$LTE_USB_GW" dev enp0s20f0u1 table 103 proto 252  # provider:lte-usb:default; removed while lte-usb is down

# Policy rules, in priority order
ip rule add priority 900 lookup main suppress_prefixlength 0 protocol 252  # main-specific-routes
ip rule add priority 1000 fwmark 0x100/0xff00 lookup 100 protocol 252  # track:fibre
ip rule add priority 1001 fwmark 0x200/0xff00 lookup 101 protocol 252  # track:dsl
ip rule add priority 1002 fwmark 0x300/0xff00 lookup 102 protocol 252  # track:lte
ip rule add priority 1003 fwmark 0x400/0xff00 lookup 103 protocol 252  # track:lte-usb
ip rule add priority 2000 from "$FIBRE_ADDR" lookup 100 protocol 252  # source:fibre
ip rule add priority 2001 from "$DSL_ADDR" lookup 101 protocol 252  # source:dsl
ip rule add priority 2002 from "$LTE_ADDR" lookup 102 protocol 252  # source:lte
ip rule add priority 2003 from "$LTE_USB_ADDR" lookup 103 protocol 252  # source:lte-usb
ip rule add priority 10000 from 172.20.31.0/24 iif br-lan lookup 101 protocol 252  # policy:guests-via-dsl:dsl#0
ip rule add priority 10001 from 172.20.31.0/24 iif br-lan.20 lookup 101 protocol 252  # policy:guests-via-dsl:dsl#1
ip rule add priority 10002 from 172.20.31.0/24 iif br-lan lookup 102 protocol 252  # policy:guests-via-dsl:lte#2
ip rule add priority 10003 from 172.20.31.0/24 iif br-lan.20 lookup 102 protocol 252  # policy:guests-via-dsl:lte#3
ip rule add priority 10004 from 172.20.31.0/24 iif br-lan lookup 103 protocol 252  # policy:guests-via-dsl:lte-usb#4
ip rule add priority 10005 from 172.20.31.0/24 iif br-lan.20 lookup 103 protocol 252  # policy:guests-via-dsl:lte-usb#5
ip rule add priority 10010 ipproto udp dport 5060-5061 lookup 100 protocol 252  # policy:voip-via-fibre:fibre#0
ip rule add priority 10011 ipproto udp dport 5060-5061 lookup 101 protocol 252  # policy:voip-via-fibre:dsl#1
ip rule add priority 30000 lookup 200 protocol 252  # balance
ip rule add priority 30001 lookup 102 protocol 252  # fallback:lte
ip rule add priority 30002 lookup 103 protocol 252  # fallback:lte-usb

# Netfilter: table inet uplink, replaced in one transaction (mark mask 0xff00)
nft -f - <<'NFT'
add table inet uplink
delete table inet uplink
table inet uplink {
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    meta nfproto ipv4 ct mark and 0xff00 == 0x400 meta mark set meta mark and 0xffff00ff or 0x400 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x300 meta mark set meta mark and 0xffff00ff or 0x300 comment "uplink:track-restore"
    meta nfproto ipv4 iifname "enp0s20f0u1" ct state new ct mark set ct mark and 0xffff00ff or 0x400 comment "uplink:track-save"
    meta nfproto ipv4 iifname "enp1s0.100" ct state new ct mark set ct mark and 0xffff00ff or 0x100 comment "uplink:track-save"
    meta nfproto ipv4 iifname "ppp0" ct state new ct mark set ct mark and 0xffff00ff or 0x200 comment "uplink:track-save"
    meta nfproto ipv4 iifname "wwan0" ct state new ct mark set ct mark and 0xffff00ff or 0x300 comment "uplink:track-save"
  }
  chain output {
    type route hook output priority mangle; policy accept;
    meta nfproto ipv4 ct mark and 0xff00 == 0x400 meta mark set meta mark and 0xffff00ff or 0x400 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x300 meta mark set meta mark and 0xffff00ff or 0x300 comment "uplink:track-restore"
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    meta nfproto ipv4 oifname "enp0s20f0u1" masquerade comment "uplink:masquerade"
    meta nfproto ipv4 oifname "enp1s0.100" masquerade comment "uplink:masquerade"
    meta nfproto ipv4 oifname "ppp0" masquerade comment "uplink:masquerade"
    meta nfproto ipv4 oifname "wwan0" masquerade comment "uplink:masquerade"
  }
}
NFT
