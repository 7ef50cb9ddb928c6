#!/bin/sh
# The rpc bridge without node (install.sh --rpc-bridge socat): what `uplink-agent rpc` does,
# in sh + socat, so an SSH connection does not pay for starting node (D56).
#
# Line 1 to the daemon is the preamble with SSH_CONNECTION, written before any byte of the
# client's: only line 1 of a connection is read as a preamble, so a client cannot forge it.
# This bridge does not count bytes per line; the daemon enforces the line limit and
# validates everything. The socket comes from the wrapper (UPLINK_AGENT_SOCKET).
sock=${UPLINK_AGENT_SOCKET:-/run/uplink-agent/agent.sock}
connection=null
case ${SSH_CONNECTION-} in
  '' | *[!0-9A-Fa-f.:\ ]*) ;; # unset, or not the "addr port addr port" sshd writes: left out
  *) connection="\"$SSH_CONNECTION\"" ;;
esac
case $sock in
  *[!A-Za-z0-9/._-]*)
    echo "uplink-agent rpc: socket path $sock: use letters, digits and / . _ - only" >&2
    exit 2
    ;;
esac
if [ ! -S "$sock" ]; then
  printf '{"v":1,"id":null,"ok":false,"error":{"code":"unavailable","message":"the uplink-agent daemon is not reachable at %s","retryable":true}}\n' "$sock"
  echo "uplink-agent rpc: cannot reach the daemon at $sock" >&2
  exit 7
fi
# -t: after the client's end of input, wait this long for the daemon to answer what it was
# sent (an apply) and close; the daemon closes as soon as it has answered everything.
{
  printf '{"bridge":1,"sshConnection":%s}\n' "$connection"
  exec cat
} | exec socat -t 300 - "UNIX-CONNECT:$sock"
