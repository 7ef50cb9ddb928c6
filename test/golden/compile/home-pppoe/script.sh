#!/bin/sh
# Uplink desired state for site home-pppoe
# content hash be6022a65b45597e73f0c5bda7e83c059f85a907b96a481d82cca6b26b44ca34
# A review copy: on a managed router the agent applies this itself (one ip -batch,
# one nft transaction, ownership checks, commit-confirmed). Do not run it there.
set -e

# Values only the router knows, read when the script runs
PPP0_ADDR=$(ip -4 -o addr show dev ppp0 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of ppp0
PPP1_ADDR=$(ip -4 -o addr show dev ppp1 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of ppp1

# Kernel settings
sysctl -qw net.ipv4.conf.all.rp_filter=2
sysctl -qw net.ipv4.conf.ppp0.rp_filter=2
sysctl -qw net.ipv4.conf.ppp1.rp_filter=2
sysctl -qw net.ipv4.ip_forward=1

# Routing tables
# table 200: balanced default route
ip route replace default dev ppp0 table 200 proto 252  # balance:default
# table 100: provider ppp0 (ppp0)
ip route replace default dev ppp0 scope link table 100 proto 252  # provider:ppp0:default; removed while ppp0 is down
# table 101: provider ppp1 (ppp1)
ip route replace default dev ppp1 scope link table 101 proto 252  # provider:ppp1:default; removed while ppp1 is down

# Policy rules, in priority order
ip rule add priority 900 lookup main suppress_prefixlength 0 protocol 252  # main-specific-routes
ip rule add priority 1000 fwmark 0x100/0xff00 lookup 100 protocol 252  # track:ppp0
ip rule add priority 1001 fwmark 0x200/0xff00 lookup 101 protocol 252  # track:ppp1
ip rule add priority 2000 from "$PPP0_ADDR" lookup 100 protocol 252  # source:ppp0
ip rule add priority 2001 from "$PPP1_ADDR" lookup 101 protocol 252  # source:ppp1
ip rule add priority 10000 uidrange 108-108 lookup 101 protocol 252  # policy:p2p-user:ppp1#0
ip rule add priority 10001 uidrange 108-108 lookup 100 protocol 252  # policy:p2p-user:ppp0#1
ip rule add priority 30000 lookup 200 protocol 252  # balance

# Netfilter: table inet uplink, replaced in one transaction (mark mask 0xff00)
nft -f - <<'NFT'
add table inet uplink
delete table inet uplink
table inet uplink {
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    meta nfproto ipv4 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
    meta nfproto ipv4 iifname "ppp0" ct state new ct mark set ct mark and 0xffff00ff or 0x100 comment "uplink:track-save"
    meta nfproto ipv4 iifname "ppp1" ct state new ct mark set ct mark and 0xffff00ff or 0x200 comment "uplink:track-save"
  }
  chain output {
    type route hook output priority mangle; policy accept;
    meta nfproto ipv4 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    meta nfproto ipv4 oifname "ppp0" masquerade comment "uplink:masquerade"
    meta nfproto ipv4 oifname "ppp1" masquerade comment "uplink:masquerade"
  }
}
NFT
