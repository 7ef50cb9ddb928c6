#!/usr/bin/env bash
# The Uplink demo: a fleet of lab routers in network namespaces, the controller watching a
# local fleet repository, the first rollout (canary first), then what to try next.
#
#   scripts/demo.sh up      (what `make demo` runs, after installing dependencies and building)
#   scripts/demo.sh down    (what `make demo-down` runs: removes every namespace, process and file)
#
# Environment: DEMO_DIR (default /tmp/uplink-demo), DEMO_PORT (default 9470: the status page on
# 127.0.0.1). Run as root from the repository. Running `up` again replaces the previous demo.
set -euo pipefail

cd "$(dirname "$0")/.."
DIR=${DEMO_DIR:-/tmp/uplink-demo}
PORT=${DEMO_PORT:-9470}
PREFIX=uplink
CTRL_NS=$PREFIX-ctrl
NODE=$(command -v node)
LAB=(node dist/uplink-lab.mjs)
UPLINK_IN_CTRL=(ip netns exec "$CTRL_NS" "$NODE" "$PWD/dist/uplink.mjs")
CONFIG=$DIR/controller/controller.yaml

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }

down() {
  "${LAB[@]}" down --dir "$DIR"
}

up() {
  [ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces)" >&2; exit 1; }
  bold "== 1/4 the lab: one router namespace per site of fleet-repo-example"
  "${LAB[@]}" up --dir "$DIR" --name-prefix "$PREFIX"

  bold "== 2/4 the controller (uplink run) in namespace $CTRL_NS, status page on 127.0.0.1:$PORT"
  mkdir -p "$DIR/controller/state"
  cat > "$CONFIG" <<EOF
# The demo controller's config (see deploy/controller/controller.example.yaml).
repo:
  url: $DIR/fleet.git
  branch: main
  pollInterval: 3s
ssh:
  identity: $DIR/controller/id_ed25519
  knownHosts: $DIR/controller/known_hosts
http:
  listen: 192.0.2.1:9470
stateDir: $DIR/controller/state
status:
  pollInterval: 3s
  freshFor: 10s
EOF
  # Short commands: `uplink` on PATH runs in the controller's namespace with the demo's defaults.
  mkdir -p "$DIR/bin"
  cat > "$DIR/uplink.yaml" <<EOF
# The demo's uplink defaults (README "Defaults"): no --repo, --identity, --known-hosts, --config.
repo: $DIR/fleet
identity: $DIR/controller/id_ed25519
knownHosts: $DIR/controller/known_hosts
controller: $CONFIG
EOF
  cat > "$DIR/bin/uplink" <<EOF
#!/bin/sh
# uplink in the demo's controller namespace ($CTRL_NS), with the demo's defaults.
exec ip netns exec $CTRL_NS env UPLINK_CONFIG=$DIR/uplink.yaml $NODE $PWD/dist/uplink.mjs "\$@"
EOF
  chmod +x "$DIR/bin/uplink"
  # The first rollout in the foreground, with its progress display; the daemon takes over after.
  bold "== 3/4 the first rollout: canary wave first (bake 30s), then the others"
  "${UPLINK_IN_CTRL[@]}" rollout --config "$CONFIG" || {
    echo "demo: the first rollout did not finish; see above" >&2
    exit 1
  }
  "${LAB[@]}" spawn --dir "$DIR" --name controller --ns "$CTRL_NS" --log "$DIR/controller.log" -- \
    "$NODE" "$PWD/dist/uplink.mjs" run --config "$CONFIG"
  # The controller listens inside its namespace; this forwards 127.0.0.1:PORT on the host to it.
  "${LAB[@]}" spawn --dir "$DIR" --name status-forward --log "$DIR/status-forward.log" -- \
    socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" \
    "EXEC:ip netns exec $CTRL_NS socat STDIO TCP\:192.0.2.1\:9470"
  for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  write_changes
  # The controller's first status poll of every site takes a moment; until then (and until
  # it writes its status file) a site reads `unknown`.
  for _ in $(seq 1 40); do
    "${UPLINK_IN_CTRL[@]}" status --config "$CONFIG" 2>/dev/null | grep -q '^sites: .*unknown' || break
    sleep 0.5
  done
  bold "== 4/4 the fleet"
  "${UPLINK_IN_CTRL[@]}" status --config "$CONFIG" || true
  next_steps
}

# Ready-made changes to push, as patches made against the lab's fleet repository (so they apply).
write_changes() {
  local tmp
  tmp=$(mktemp -d)
  mkdir -p "$DIR/changes"
  git clone -q "$DIR/fleet.git" "$tmp/fleet"
  # 1. SMTP of branch-adsl-vpn leaves via isp2 instead of isp1.
  sed -i 's/^    via: \[isp1\]$/    via: [isp2]/' "$tmp/fleet/sites/branch-adsl-vpn.yaml"
  git -C "$tmp/fleet" diff > "$DIR/changes/smtp-via-isp2.patch"
  git -C "$tmp/fleet" checkout -q -- .
  # 2. Main's specific routes (the management LAN among them) move after the policies, and
  #    lartc-split sends everything root sends — sshd's replies to the controller too — via isp1.
  sed -i 's/^    suppressMain: 900 .*/    suppressMain: 29999    # main after the policies: a bad idea/' \
    "$tmp/fleet/fleet.yaml"
  sed -i 's/^policies:$/policies:\n  - name: root-via-isp1\n    uid: 0\n    via: [isp1]/' \
    "$tmp/fleet/sites/lartc-split.yaml"
  git -C "$tmp/fleet" diff > "$DIR/changes/cut-management.patch"
  rm -rf "$tmp"
  [ -s "$DIR/changes/smtp-via-isp2.patch" ] && [ -s "$DIR/changes/cut-management.patch" ] || {
    echo "demo: could not prepare the example changes" >&2
    exit 1
  }
}

next_steps() {
  local fleet=$DIR/fleet
  cat <<EOF

The demo is up. The status page: http://127.0.0.1:$PORT/  (curl http://127.0.0.1:$PORT/api/status)
For short commands (uplink runs in the controller's namespace with the demo's defaults):
     export PATH=$DIR/bin:\$PATH
The fleet from the command line:  uplink status    (one site and its timeline: uplink status lartc-split)
Controller log: $DIR/controller.log    Lab: node dist/uplink-lab.mjs status --dir $DIR

1. Roll out a change: move branch-adsl-vpn's SMTP policy from isp1 to isp2.
     cd $fleet
     git apply $DIR/changes/smtp-via-isp2.patch
     git commit -qam 'smtp via isp2' && git push -q
   The controller sees the commit within seconds and rolls it out (canaries first, then
   branch-adsl-vpn). Watch the status page, or the router's rules:
     ip -n $PREFIX-branch-adsl-vpn-router rule show | grep 'dport 25'

2. Kill an uplink and watch failover: the ISP behind lartc-split's main link goes dark.
     ip -n $PREFIX-lartc-split-router route get 203.0.113.10        # dev wan1
     ip -n $PREFIX-lartc-split-isp-wan1 link set cust down
     sleep 3; ip -n $PREFIX-lartc-split-router route get 203.0.113.10   # dev wan2 (the dsl fallback)
     ip -n $PREFIX-lartc-split-isp-wan1 link set cust up               # and back
   The status page shows isp1 down (and its loss), then up again; the failover is in the site's
   timeline: uplink status lartc-split  (or http://127.0.0.1:$PORT/sites/lartc-split)

3. Hand-edit a router and watch drift: delete Uplink's balance rule on dmz-redundant.
     ip -n $PREFIX-dmz-redundant-router rule del pref 30000
   The agent reports drift (status page, drift column; or:
     uplink drift)

4. Push a change that cuts the management path: main's routes (the management LAN among
   them) move after the policies, and lartc-split (a canary) sends everything root sends —
   its SSH replies to the controller included — out of isp1:
     cat $DIR/changes/cut-management.patch
     cd $fleet
     git apply $DIR/changes/cut-management.patch
     git commit -qam 'main after policies; root via isp1' && git push -q
   The canary's agent refuses it before touching the kernel (its management-path guard names
   the rule), the canary wave fails and the rollout halts: no other site changes (status page:
   rollout halted, four sites out-of-date). Now force it onto the canary by hand, past the guard:
     uplink apply lartc-split --allow-management-change --confirm-within 15s
   The apply goes through, the router's replies now leave by isp1, the confirm over a new
   connection never arrives — the apply says at what time the router reverts — and 15 s
   later it does, by itself:
     tail -2 $DIR/sites/lartc-split/agent.log
   Then undo the commit the GitOps way; the next rollout brings the fleet back in sync:
     git revert --no-edit HEAD && git push -q

5. Pause and resume: uplink suspend --reason "change freeze" holds any pushed commit back
   (the page and uplink status say who and why); uplink resume rolls it out.

6. IPv6 failover on the dual-stack branch: a LAN host numbered from ISP1's prefix keeps IPv6
   when ISP1's IPv6 goes dark (its IPv4 keeps working), through ISP2 and NPTv6 onto ISP2's prefix.
     ip -n $PREFIX-branch-dualstack-router -6 route get 2001:db8:99::10 from 2001:db8:a1:1::10 iif lan0   # dev wan1
     ip netns exec $PREFIX-branch-dualstack-isp-wan1 nft add table ip6 dark
     ip netns exec $PREFIX-branch-dualstack-isp-wan1 nft add chain ip6 dark forward '{ type filter hook forward priority -10; policy drop; }'
     sleep 3; ip -n $PREFIX-branch-dualstack-router -6 route get 2001:db8:99::10 from 2001:db8:a1:1::10 iif lan0   # dev wan2
     ip netns exec $PREFIX-branch-dualstack-lan ping -6 -c1 2001:db8:99::10          # still answers
     ip -n $PREFIX-branch-dualstack-router route get 203.0.113.10 from 172.20.50.10 iif lan0   # IPv4: wan1 still in use
     ip netns exec $PREFIX-branch-dualstack-isp-wan1 nft delete table ip6 dark        # and back
   The status page shows isp1:ipv6 down while isp1 (IPv4) stays up.

Remove everything: make demo-down
EOF
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
