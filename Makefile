# Uplink — build, check and test. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
DEB_PACKAGES := iproute2 nftables openssh-server openssh-client iputils-ping conntrack socat tcpdump git gnupg chromium curl dnsmasq-base isc-dhcp-client isc-dhcp-server prometheus
# Commands whose absence means a Debian package is missing (command -> package is 1:1 above, roughly).
NEEDED_COMMANDS := ip nft sshd ssh ping conntrack socat tcpdump git gpg chromium curl dnsmasq dhclient dhcpd promtool

.PHONY: test check deps npm typecheck lint build package unit clean demo demo-down

test: deps npm check

check: typecheck lint build
	npx vitest run

# No package may start a service on this machine while it is installed (prometheus would
# listen on :9090, openssh on :22): policy-rc.d says no for the length of the install.
deps:
	@missing=""; for c in $(NEEDED_COMMANDS); do command -v $$c >/dev/null 2>&1 || PATH="$$PATH:/usr/sbin:/sbin" command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages (missing:$$missing)"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: run as root to install $(DEB_PACKAGES)" >&2; exit 1; fi; \
	  policy=/usr/sbin/policy-rc.d; created=""; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\n# make deps: install packages, start no service on this host\nexit 101\n' > $$policy && chmod 755 $$policy && created=1; fi; \
	  apt-get update && apt-get install -y --no-install-recommends $(DEB_PACKAGES); status=$$?; \
	  if [ -n "$$created" ]; then rm -f $$policy; fi; \
	  exit $$status; \
	fi
	@mkdir -p /run/sshd

npm: node_modules/.package-lock.json
node_modules/.package-lock.json: package-lock.json package.json
	npm ci --foreground-scripts
	@touch $@

typecheck:
	npx tsc --noEmit -p tsconfig.json

lint:
	npx biome check .

build:
	node scripts/build.mjs

# dist/uplink-VERSION.tgz: `npm install -g ./dist/uplink-VERSION.tgz` puts uplink and uplink-agent on PATH.
package:
	node scripts/pack.mjs

unit:
	npx vitest run agent/src controller/src

clean:
	rm -rf dist build node_modules

# The demo: a lab fleet in network namespaces, the controller, the first rollout, next steps.
# DEMO_DIR (default /tmp/uplink-demo) and DEMO_PORT (9470) can be set. Run as root.
demo: deps npm build
	scripts/demo.sh up

demo-down:
	@if [ -f dist/uplink-lab.mjs ]; then scripts/demo.sh down; else echo "nothing to remove (no dist/uplink-lab.mjs)"; fi
