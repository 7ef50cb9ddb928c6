#!/bin/bash
# Records real iproute2/nftables JSON outputs from this machine into agent/src/core/fixtures,
# from a throwaway namespace holding representative rules, routes, addresses and nft tables.
# Run as root from the repository root:  bash test/lab/record-fixtures.sh
# Touches nothing outside the namespace it creates (deleted by name on exit).
set -euo pipefail
cd "$(dirname "$0")/../.."
IP_VERSION=$(ip -V | sed -n 's/.*iproute2-\([0-9]*\.[0-9]*\).*/\1/p')
NFT_VERSION=$(nft -v | sed -n 's/^nftables v\([0-9.]*\).*/\1/p')
IPDIR=agent/src/core/fixtures/iproute2-$IP_VERSION
NFTDIR=agent/src/core/fixtures/nftables-$NFT_VERSION
mkdir -p "$IPDIR" "$NFTDIR"
NS="ul-fixtures-$$"
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
ip netns add "$NS"
ipn() { ip -n "$NS" "$@"; }
inns() { ip netns exec "$NS" "$@"; }

ipn link set dev lo up
ipn link add name isp1 type veth peer name isp1-peer
ipn link add name isp2 type veth peer name isp2-peer
ipn link add name ppp0 type veth peer name ppp0-peer
ipn link add name lan0 type veth peer name lan0-peer
ipn link add name spare type veth peer name spare-peer   # left admin down
for d in isp1 isp1-peer isp2 isp2-peer lan0 lan0-peer; do ipn link set dev "$d" up; done
ipn link set dev ppp0 up                                  # peer down: NO-CARRIER, LOWERLAYERDOWN
ipn addr add 198.51.100.2/29 dev isp1
ipn addr add 198.51.100.3/29 dev isp1                     # secondary
ipn addr add 192.0.2.2/29 dev isp2
ipn addr add 100.64.0.2 peer 100.64.0.1/32 dev ppp0       # point-to-point
ipn addr add 172.20.1.1/24 dev lan0

# Protocols are numeric on rule lines: iproute2 6.1's rtnl_rtprot_a2n caches the last
# name it resolved but overwrites the cached number when it parses a numeric protocol, so
# in one batch `proto static` after `proto 252` silently becomes 252.
ip -4 -n "$NS" -batch - <<'BATCH'
route replace 0.0.0.0/0 via 192.0.2.1 dev isp2 proto dhcp metric 100
route replace 0.0.0.0/0 via 198.51.100.1 dev isp1 table 101 proto 252
route replace 0.0.0.0/0 via 192.0.2.1 dev isp2 src 192.0.2.2 table 102 proto 252
route replace 10.50.0.0/16 dev isp2 scope link metric 100 table 102 proto 252
route replace 203.0.113.7 via 198.51.100.1 dev isp1 table 101 proto 252
route replace blackhole 10.60.0.0/16 table 101 proto 252
route replace unreachable 10.61.0.0/16 table 101 proto 252
route replace prohibit 10.62.0.0/16 table 101 proto 252
route replace throw 10.63.0.0/16 table 101 proto 252
route replace 0.0.0.0/0 table 200 proto 252 nexthop via 198.51.100.1 dev isp1 weight 8 nexthop via 192.0.2.1 dev isp2 weight 2
route replace 0.0.0.0/0 table 201 proto 252 nexthop dev isp1 weight 1 nexthop dev ppp0 weight 3
route replace 10.70.0.0/16 via 192.0.2.4 dev isp2 table 102
route replace 10.71.0.0/16 via 192.0.2.4 dev isp2 table 102 proto static
rule add priority 900 lookup main suppress_prefixlength 0 protocol 252
rule add priority 1000 fwmark 0x100/0xff00 lookup 101 protocol 252
rule add priority 2000 from 198.51.100.2/32 lookup 101 protocol 252
rule add priority 4000 not from 10.3.0.0/16 goto 5000 protocol 4
rule add priority 4001 iif lo l3mdev protocol 3
rule add priority 4002 fwmark 0x7/0xffffffff lookup 7
rule add priority 4003 ipproto 47 lookup 7
rule add priority 5000 from 10.1.0.0/16 lookup 150
rule add priority 10000 from 172.20.1.0/24 to 192.0.2.128/25 iif lan0 lookup 102 protocol 252
rule add priority 10001 oif isp1 lookup 101 protocol 252
rule add priority 10002 uidrange 108-108 lookup 102 protocol 252
rule add priority 10003 ipproto tcp dport 25 lookup 101 protocol 252
rule add priority 10004 ipproto udp sport 1000-2000 dport 53 lookup 101 protocol 252
rule add priority 10005 tos 0x10 lookup 101 protocol 252
rule add priority 10006 from 10.9.0.0/16 blackhole protocol 252
rule add priority 10007 from 10.8.0.0/16 unreachable protocol 252
rule add priority 10008 from 10.7.0.0/16 prohibit protocol 252
rule add priority 10009 ipproto icmp lookup 101 protocol 252
rule add priority 10010 fwmark 0x5 lookup 102 protocol 252
rule add priority 10011 ipproto tcp dport 8000-8080 to 203.0.113.0/24 lookup 102 protocol 252
rule add priority 30000 lookup 200 protocol 252
BATCH

pretty() { python3 -m json.tool --indent 2; }
ip -4 -n "$NS" -N -j -d rule show | pretty > "$IPDIR/rule-show.json"
ip -4 -n "$NS" -j -d rule show | pretty > "$IPDIR/rule-show-names.json"
ip -4 -n "$NS" -N -j -d route show table all | pretty > "$IPDIR/route-show-table-all.json"
ip -4 -n "$NS" -j -d route show table all | pretty > "$IPDIR/route-show-table-all-names.json"
ip -n "$NS" -j addr show | pretty > "$IPDIR/addr-show.json"
ip -4 -n "$NS" -N -j route show table main | pretty > "$IPDIR/route-show-main.json"

# nft: the table exactly as render-nft writes it (the unit test checks the .nft file is
# renderNftTable's output), then a tampered copy, then another table that must be ignored.
inns nft -f "$NFTDIR/uplink-table.nft"
inns nft -j list table inet uplink | pretty > "$NFTDIR/uplink-table.json"
inns nft -f - <<'NFT'
add rule inet uplink prerouting meta nfproto ipv4 iifname "isp1" ct state new ct mark set ct mark and 0xffff00ff or 0x100
add rule inet uplink postrouting oifname "isp2" masquerade comment "uplink:masquerade"
add rule inet uplink output meta nfproto ipv4 ct mark and 0xff00 == 0x300 meta mark set meta mark and 0xffff00ff or 0x300 comment "uplink:track-restore"
add chain inet uplink extra
add set inet uplink blocked { type ipv4_addr; }
NFT
inns nft -j list table inet uplink | pretty > "$NFTDIR/uplink-table-tampered.json"
inns nft -f - <<'NFT'
add table inet uplink
delete table inet uplink
table inet uplink {
  chain prerouting {
    type filter hook prerouting priority raw; policy accept;
  }
}
NFT
inns nft -j list table inet uplink | pretty > "$NFTDIR/uplink-table-wrong-chain.json"
inns nft -f - <<'NFT'
add table inet uplink
delete table inet uplink
table inet uplink {
}
NFT
inns nft -j list table inet uplink | pretty > "$NFTDIR/uplink-table-empty.json"
if inns nft -j list table inet nosuch >/dev/null 2>"$NFTDIR/list-missing-table.stderr"; then
  echo "expected a missing table to fail" >&2; exit 1
fi
echo "recorded into $IPDIR and $NFTDIR"
