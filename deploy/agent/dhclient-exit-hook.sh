# Uplink: tells the agent which prefix the ISP delegated over $interface (DHCPv6-PD, D155).
# No kernel object says which uplink a delegated prefix came from, so the DHCPv6 client says
# it: the agent records it under its state directory and the daemon follows it (source rule,
# NPTv6), as it follows a new DHCP lease.
#
# Install for Debian's ISC client (dhclient -6 -P):
#   install -m 0644 /usr/local/lib/uplink/dhclient-exit-hook /etc/dhcp/dhclient-exit-hooks.d/uplink-delegated
# dhclient-script *sources* this file: no `exit` here, and every name starts with uplink_.
# UPLINK_AGENT and UPLINK_AGENT_STATE_DIR override the agent and its state directory.
uplink_agent="${UPLINK_AGENT:-/usr/local/bin/uplink-agent}"
uplink_state_dir="${UPLINK_AGENT_STATE_DIR:-/var/lib/uplink-agent}"
case "$reason" in
  BOUND6|RENEW6|REBIND6|REBOOT6)
    if [ -n "$new_ip6_prefix" ]; then
      "$uplink_agent" delegated --state-dir "$uplink_state_dir" --interface "$interface" \
        --prefix "$new_ip6_prefix" ${new_max_life:+--valid-lifetime "$new_max_life"} >/dev/null ||
        logger -t uplink-delegated "could not record prefix $new_ip6_prefix of $interface"
    fi
    ;;
  EXPIRE6|RELEASE6)
    # STOP6 (the client stopping) keeps the record: the prefix stays routed until its valid
    # lifetime ends, and the agent drops it then.
    if [ -n "$old_ip6_prefix" ]; then
      "$uplink_agent" delegated --state-dir "$uplink_state_dir" --interface "$interface" --clear >/dev/null ||
        logger -t uplink-delegated "could not clear the delegated prefix of $interface"
    fi
    ;;
esac
