#!/bin/sh
# Uplink desired state for site shorewall-style
# content hash cbe8510f7125f36ad8d67294ddf6dfa90011fea33ff34de29715da4ff2938405
# A review copy: on a managed router the agent applies this itself (one ip -batch,
# one nft transaction, ownership checks, commit-confirmed). Do not run it there.
set -e

# Values only the router knows, read when the script runs
BACKUP_GW=$(ip -4 route show default dev eth3 | awk '{print $3; exit}')  # gateway: detect (DHCP)
COMCAST_ADDR=$(ip -4 -o addr show dev eth1 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of eth1
AVVANTA_ADDR=$(ip -4 -o addr show dev eth2 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of eth2
BACKUP_ADDR=$(ip -4 -o addr show dev eth3 | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of eth3

# Kernel settings
sysctl -qw net.ipv4.conf.all.rp_filter=2
sysctl -qw net.ipv4.conf.eth1.rp_filter=2
sysctl -qw net.ipv4.conf.eth2.rp_filter=2
sysctl -qw net.ipv4.conf.eth3.rp_filter=2
sysctl -qw net.ipv4.ip_forward=1

# Routing tables
# table 253: balanced default route
ip route replace default table 253 proto 252 \
    nexthop via 198.51.100.17 dev eth1 weight 1 \
    nexthop via 198.51.100.25 dev eth2 weight 3  # balance:default
# table 101: provider comcast (eth1)
ip route replace default via 198.51.100.17 dev eth1 table 101 proto 252  # provider:comcast:default; removed while comcast is down
# table 102: provider avvanta (eth2)
ip route replace default via 198.51.100.25 dev eth2 table 102 proto 252  # provider:avvanta:default; removed while avvanta is down
# table 103: provider backup (eth3)
ip route replace default via "$BACKUP_GW" dev eth3 table 103 proto 252  # provider:backup:default; removed while backup is down

# Policy rules, in priority order
ip rule add priority 900 lookup main suppress_prefixlength 0 protocol 252  # main-specific-routes
ip rule add priority 1000 fwmark 0x100/0xff00 lookup 101 protocol 252  # track:comcast
ip rule add priority 1001 fwmark 0x200/0xff00 lookup 102 protocol 252  # track:avvanta
ip rule add priority 2000 from "$COMCAST_ADDR" lookup 101 protocol 252  # source:comcast
ip rule add priority 2001 from "$AVVANTA_ADDR" lookup 102 protocol 252  # source:avvanta
ip rule add priority 2002 from "$BACKUP_ADDR" lookup 103 protocol 252  # source:backup
ip rule add priority 11000 from 172.20.5.0/24 lookup 102 protocol 252  # policy:voip-subnet:avvanta#0
ip rule add priority 11001 from 172.20.5.0/24 lookup 101 protocol 252  # policy:voip-subnet:comcast#1
ip rule add priority 11010 to 203.0.113.64/26 lookup 101 protocol 252  # policy:partner-network:comcast#0
ip rule add priority 11020 to 192.0.2.192/26 unreachable protocol 252  # policy:blocked-range#0
ip rule add priority 30000 lookup default protocol 252  # balance
ip rule add priority 30001 lookup 103 protocol 252  # fallback:backup

# Netfilter: table inet uplink, replaced in one transaction (mark mask 0xff00)
nft -f - <<'NFT'
add table inet uplink
delete table inet uplink
table inet uplink {
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    meta nfproto ipv4 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
    meta nfproto ipv4 iifname "eth1" ct state new ct mark set ct mark and 0xffff00ff or 0x100 comment "uplink:track-save"
    meta nfproto ipv4 iifname "eth2" ct state new ct mark set ct mark and 0xffff00ff or 0x200 comment "uplink:track-save"
  }
  chain output {
    type route hook output priority mangle; policy accept;
    meta nfproto ipv4 ct mark and 0xff00 == 0x100 meta mark set meta mark and 0xffff00ff or 0x100 comment "uplink:track-restore"
    meta nfproto ipv4 ct mark and 0xff00 == 0x200 meta mark set meta mark and 0xffff00ff or 0x200 comment "uplink:track-restore"
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    meta nfproto ipv4 oifname "eth1" masquerade comment "uplink:masquerade"
    meta nfproto ipv4 oifname "eth2" masquerade comment "uplink:masquerade"
    meta nfproto ipv4 oifname "eth3" masquerade comment "uplink:masquerade"
  }
}
NFT
