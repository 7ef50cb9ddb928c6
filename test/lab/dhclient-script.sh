#!/bin/sh
# The configuration script the ISC DHCP client (dhclient -sf) runs for the lab: it does what
# Debian's /sbin/dhclient-script does for addresses and the default route — and nothing else:
# Debian's would also rewrite /etc/resolv.conf, which namespaces share with the host.
# The default route goes into main with `proto dhcp` and the metric in $UPLINK_DHCP_METRIC,
# as a router should be told to install it: Uplink reads the gateway from it (`gateway: detect`)
# and its rule 900 keeps main's default route from deciding any traffic.
# Each call is appended to $UPLINK_DHCP_EVENTS: "<epoch seconds.ns> <reason> <old> <new> <router>".
metric="${UPLINK_DHCP_METRIC:-100}"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
log() { [ -n "$UPLINK_DHCP_EVENTS" ] && echo "$(date +%s.%N) $reason ${old_ip_address:--} ${new_ip_address:--} ${new_routers:--}" >> "$UPLINK_DHCP_EVENTS"; }
case "$reason" in
  PREINIT)
    ip link set dev "$interface" up
    ;;
  BOUND|RENEW|REBIND|REBOOT)
    if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
      ip -4 addr flush dev "$interface" to "$old_ip_address/32"
    fi
    ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" \
      valid_lft "${new_dhcp_lease_time:-forever}" preferred_lft "${new_dhcp_lease_time:-forever}"
    for router in $new_routers; do
      ip -4 route replace default via "$router" dev "$interface" proto dhcp metric "$metric"
      break
    done
    log
    ;;
  EXPIRE|FAIL|RELEASE|STOP)
    if [ -n "$old_ip_address" ]; then ip -4 addr flush dev "$interface" to "$old_ip_address/32"; fi
    log
    ;;
esac
exit 0
