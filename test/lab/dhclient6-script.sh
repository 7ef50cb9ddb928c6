#!/bin/sh
# The configuration script the ISC DHCP client runs for DHCPv6 prefix delegation in the lab
# (dhclient -6 -P -sf): a prefix-only lease configures nothing on the interface, so it only
# logs the call and then sources Uplink's hook (deploy/agent/dhclient-exit-hook.sh) as Debian's
# /sbin/dhclient-script does its dhclient-exit-hooks.d — Debian's own would also rewrite
# /etc/resolv.conf, which namespaces share with the host.
# Each call is appended to $UPLINK_DHCP_EVENTS: "<epoch seconds.ns> <reason> <old prefix> <new prefix>".
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
[ -n "$UPLINK_DHCP_EVENTS" ] &&
  echo "$(date +%s.%N) $reason ${old_ip6_prefix:--} ${new_ip6_prefix:--}" >> "$UPLINK_DHCP_EVENTS"
. "$UPLINK_DHCLIENT_HOOK"
