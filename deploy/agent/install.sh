#!/bin/sh
# Installs the Uplink agent on a router. POSIX sh, idempotent, run as root.
#
#   install.sh --controller-key FILE [--agent FILE] [--user NAME] [--node PATH]
#              [--rpc-bridge node|socat] [--prefix DIR] [--no-systemd]
#
# Installs:
#   /usr/local/lib/uplink/uplink-agent.mjs     the agent (one bundled file, dist/uplink-agent.mjs)
#   /usr/local/lib/uplink/uplink-agent-rpc.mjs the rpc bridge alone (dist/uplink-agent-rpc.mjs,
#                                              beside --agent), started on every SSH connection
#   /usr/local/lib/uplink/uplink-rpc-socat     with --rpc-bridge socat: the bridge in sh + socat
#   /usr/local/lib/uplink/uplink-shell         login shell of the agent user: runs the forced
#                                              command and nothing else (nologin otherwise)
#   /usr/local/bin/uplink-agent                wrapper: node + the bundle, socket path exported
#   /var/lib/uplink-agent                      state directory (0700, owned by the agent user)
#   /etc/systemd/system/uplink-agent.service   the daemon (unless --no-systemd)
#   ~USER/.ssh/authorized_keys                 the controller's key, as
#                                              restrict,command="/usr/local/bin/uplink-agent rpc" KEY
# and creates the system user `uplink` (unless --user names an existing account, which is
# then used as it is: its shell is not changed).
#
# --prefix DIR installs under DIR *and points every path at it* (wrapper, forced command,
# unit), so tests can run the installed agent from a temporary root. It is not a DESTDIR
# for packaging.
#
# Before installing anything it checks the router's tools (D85): `ip` (iproute2), `nft`
# (nftables) and `sysctl` (procps) are required — missing, it stops and installs nothing;
# `ping` (iputils-ping), `conntrack` (conntrack) and `socat` (socat) are warned about. They
# are looked up in $PATH and the sbin directories (where the service finds them, even when
# this shell's PATH lacks them); UPLINK_TOOL_PATH, if set, is searched instead.
set -eu

die() { echo "install.sh: $*" >&2; exit 1; }
usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
key_file=
agent_file=$here/../../dist/uplink-agent.mjs
user=uplink
user_given=no
node=
prefix=
systemd=yes
rpc_bridge=node

while [ "$#" -gt 0 ]; do
  case $1 in
    --controller-key) [ "$#" -ge 2 ] || usage; key_file=$2; shift 2 ;;
    --agent) [ "$#" -ge 2 ] || usage; agent_file=$2; shift 2 ;;
    --user) [ "$#" -ge 2 ] || usage; user=$2; user_given=yes; shift 2 ;;
    --node) [ "$#" -ge 2 ] || usage; node=$2; shift 2 ;;
    --rpc-bridge) [ "$#" -ge 2 ] || usage; rpc_bridge=$2; shift 2 ;;
    --prefix) [ "$#" -ge 2 ] || usage; prefix=${2%/}; shift 2 ;;
    --no-systemd) systemd=no; shift ;;
    -h|--help) usage ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root"
[ -n "$key_file" ] || die "--controller-key FILE is required"
[ -r "$key_file" ] || die "$key_file: cannot read"
[ -r "$agent_file" ] || die "$agent_file: no agent bundle (run \`node scripts/build.mjs\` first, or pass --agent)"
case $user in ''|-*|*[!a-z0-9_-]*) die "--user $user: not a plain user name" ;; esac
case $prefix in ''|/*) ;; *) die "--prefix must be an absolute path" ;; esac
case $prefix in *[!A-Za-z0-9/._-]*) die "--prefix $prefix: use letters, digits and / . _ - only" ;; esac
if [ -z "$node" ]; then node=$(command -v node) || die "node not found; pass --node PATH"; fi
[ -x "$node" ] || die "$node: not executable"
case $rpc_bridge in
  node|socat) ;;
  *) die "--rpc-bridge $rpc_bridge: use node or socat" ;;
esac

# The router's tools, checked before anything is installed.
tool_path=${UPLINK_TOOL_PATH:-$PATH:/usr/local/sbin:/usr/sbin:/sbin}
have() { (PATH=$tool_path; command -v "$1") >/dev/null 2>&1; }
missing=
packages=
for tool in ip:iproute2 nft:nftables sysctl:procps; do
  if ! have "${tool%%:*}"; then
    missing="$missing, ${tool%%:*} (Debian package ${tool#*:})"
    packages="$packages ${tool#*:}"
  fi
done
if [ -n "$missing" ]; then
  die "missing on this router: ${missing#, }; install them first (apt-get install${packages}). Nothing was installed."
fi
[ "$rpc_bridge" != socat ] || have socat \
  || die "--rpc-bridge socat: socat is not installed (Debian package socat). Nothing was installed."
warn() { echo "install.sh: warning: $*" >&2; }
have ping || warn "ping not found (Debian package iputils-ping): ICMP health probes cannot run, so no uplink is ever declared down by them"
have conntrack || warn "conntrack not found (Debian package conntrack): connections through a dead uplink are not flushed on failover"
have socat || warn "socat not found (Debian package socat): TCP health probes cannot run"

# The bridge alone, built beside the agent; without it the wrapper runs rpc from the agent.
rpc_file=$(dirname -- "$agent_file")/uplink-agent-rpc.mjs

# The controller's public key: one line `TYPE BASE64 [COMMENT]`, no options of its own.
key=$(grep -v '^[[:space:]]*#' "$key_file" | grep -v '^[[:space:]]*$' || true)
[ "$(printf '%s\n' "$key" | grep -c .)" = 1 ] || die "$key_file: expected exactly one public key line"
case $key in
  ssh-ed25519\ *|ssh-rsa\ *|ecdsa-sha2-nistp256\ *|ecdsa-sha2-nistp384\ *|ecdsa-sha2-nistp521\ *|sk-ssh-ed25519@openssh.com\ *|sk-ecdsa-sha2-nistp256@openssh.com\ *) ;;
  *) die "$key_file: not a public key line (it must start with the key type, without options)" ;;
esac
case $key in *\"*|*\\*) die "$key_file: quotes or backslashes in the key line" ;; esac

lib=$prefix/usr/local/lib/uplink
bin=$prefix/usr/local/bin
state_dir=$prefix/var/lib/uplink-agent
run_dir=$prefix/run/uplink-agent
unit_dir=$prefix/etc/systemd/system
command="$bin/uplink-agent rpc"

# 1. The user.
if id "$user" >/dev/null 2>&1; then
  :
elif [ "$user_given" = yes ] && [ "$user" != uplink ]; then
  die "--user $user: no such user"
else
  home=/var/lib/uplink
  # Created with a locked password; the login shell is set below.
  useradd --system --user-group --home-dir "$home" --create-home --shell /usr/sbin/nologin "$user" \
    || die "useradd $user failed"
fi
group=$(id -gn "$user")
home=$(getent passwd "$user" | cut -d: -f6)
[ -n "$home" ] || die "$user has no home directory"

# 2. The agent, its wrapper and the restricted login shell.
install -d -m 0755 "$lib" "$bin"
install -m 0644 "$agent_file" "$lib/uplink-agent.mjs.new"
mv -f "$lib/uplink-agent.mjs.new" "$lib/uplink-agent.mjs"
install -m 0644 "$here/README.md" "$lib/README.md"
# The DHCPv6-PD hook (D155): copied where dhclient looks only by the administrator (README).
install -m 0644 "$here/dhclient-exit-hook.sh" "$lib/dhclient-exit-hook"

# `uplink-agent rpc` (the forced command) starts on every SSH connection: the wrapper runs
# the smallest bridge there is, not the whole agent (D55, D56).
if [ "$rpc_bridge" = socat ]; then
  install -m 0755 "$here/uplink-rpc-socat.sh" "$lib/uplink-rpc-socat.new"
  mv -f "$lib/uplink-rpc-socat.new" "$lib/uplink-rpc-socat"
  rpc_exec="$lib/uplink-rpc-socat"
elif [ -r "$rpc_file" ]; then
  install -m 0644 "$rpc_file" "$lib/uplink-agent-rpc.mjs.new"
  mv -f "$lib/uplink-agent-rpc.mjs.new" "$lib/uplink-agent-rpc.mjs"
  rpc_exec="$node $lib/uplink-agent-rpc.mjs rpc"
else
  echo "install.sh: no $rpc_file; rpc runs from the whole agent bundle (slower per connection)" >&2
  rpc_exec="$node $lib/uplink-agent.mjs rpc"
fi
if [ "$rpc_bridge" = socat ] || [ ! -r "$rpc_file" ]; then rm -f "$lib/uplink-agent-rpc.mjs"; fi
if [ "$rpc_bridge" != socat ]; then rm -f "$lib/uplink-rpc-socat"; fi

cat > "$bin/uplink-agent.new" <<WRAPPER
#!/bin/sh
# Installed by deploy/agent/install.sh.
: "\${UPLINK_AGENT_SOCKET:=$run_dir/agent.sock}"
export UPLINK_AGENT_SOCKET
if [ "\$#" = 1 ] && [ "\$1" = rpc ]; then exec $rpc_exec; fi
# UPLINK_AGENT_NODE_FLAGS: node flags for the daemon (the systemd unit sets --lite-mode, D153).
exec $node \${UPLINK_AGENT_NODE_FLAGS-} $lib/uplink-agent.mjs "\$@"
WRAPPER
chmod 0755 "$bin/uplink-agent.new"
mv -f "$bin/uplink-agent.new" "$bin/uplink-agent"

# OpenSSH runs a forced command as `SHELL -c COMMAND`, so a nologin shell would refuse it.
# This shell runs exactly the forced command and refuses everything else, like nologin.
cat > "$lib/uplink-shell.new" <<SHELL
#!/bin/sh
# Login shell of the Uplink agent user (installed by deploy/agent/install.sh).
if [ "\$#" = 2 ] && [ "\$1" = -c ] && [ "\$2" = "$command" ]; then
  exec $bin/uplink-agent rpc
fi
echo "This account is currently not available." >&2
exit 1
SHELL
chmod 0755 "$lib/uplink-shell.new"
mv -f "$lib/uplink-shell.new" "$lib/uplink-shell"
if [ "$user_given" = no ] || [ "$user" = uplink ]; then
  usermod --shell "$lib/uplink-shell" "$user"
fi

# 3. State and runtime directories.
install -d -m 0700 -o "$user" -g "$group" "$state_dir"
install -d -m 0750 -o "$user" -g "$group" "$run_dir"

# 4. The controller's key, restricted to the agent protocol.
ssh_dir=$prefix$home/.ssh
keys=$ssh_dir/authorized_keys
line="restrict,command=\"$command\" $key"
install -d -m 0700 -o "$user" -g "$group" "$ssh_dir"
touch "$keys"
if ! grep -qxF "$line" "$keys"; then
  printf '%s\n' "$line" >> "$keys"
fi
chown "$user:$group" "$keys"
chmod 0600 "$keys"

# 5. The service.
if [ "$systemd" = yes ]; then
  install -d -m 0755 "$unit_dir"
  sed -e "s|@USER@|$user|g" -e "s|@GROUP@|$group|g" -e "s|@BIN@|$bin|g" \
      -e "s|@STATE_DIR@|$state_dir|g" -e "s|@RUN_DIR@|$run_dir|g" \
      "$here/uplink-agent.service" > "$unit_dir/uplink-agent.service.new"
  chmod 0644 "$unit_dir/uplink-agent.service.new"
  mv -f "$unit_dir/uplink-agent.service.new" "$unit_dir/uplink-agent.service"
  if [ -z "$prefix" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable uplink-agent.service
    systemctl restart uplink-agent.service
  fi
fi

echo "uplink-agent installed: $bin/uplink-agent (user $user, state $state_dir, key in $keys)"
