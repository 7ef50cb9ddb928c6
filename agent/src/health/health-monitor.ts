/**
 * The probe engine: one probe loop per provider of the applied desired state, each round
 * probing every target through that uplink (run-probe.ts), folded into the provider's
 * verdict (provider-verdict.ts). The daemon reconciles when the set of down providers
 * changes, then calls `settled` with the health the kernel followed: only then are the
 * conntrack entries of a provider the kernel now routes around flushed — its mark's (D34)
 * and those NATed to its address (D84) — so they re-establish over the routes now in the
 * kernel (none under the last resort, D32, D81), and the operator's hook run. Probing never
 * waits for either. Probes that cannot run count neither way (D83); their error is logged
 * once per provider and error, and shown in `status`.
 */

import { healthKey } from '../core/resolve.js';
import type { HealthSource } from '../daemon/health-source.js';
import { CommandRunner } from '../dataplane/run-command.js';
import type { DesiredState, Provider } from '../model/desired-state.js';
import type { Facts, Health } from '../model/kernel-state.js';
import type { ProviderHealth } from '../model/protocol.js';
import { flushConntrackMark, flushConntrackNat } from './flush-conntrack.js';
import {
  initialVerdict,
  type ProbeOutcome,
  recordRound,
  toProviderHealth,
  type VerdictState,
} from './provider-verdict.js';
import { type ProbeRunner, processProbeRunner } from './run-probe.js';
import { type TransitionEvent, TransitionHook } from './run-transition-hook.js';

export interface HealthMonitorOptions {
  /** Interfaces, addresses and detected gateways (for `detect` and point-to-point gateways). */
  readonly readFacts: () => Promise<Facts>;
  readonly log: (line: string) => void;
  readonly probe?: ProbeRunner;
  /** Flushes the conntrack entries of a mark (default: `conntrack -D -f FAMILY -m MARK/MASK`). */
  readonly flushConntrack?: (mark: number, markMask: number, family?: 'ipv4' | 'ipv6') => Promise<number>;
  /** Flushes the entries NATed to an address (default: `conntrack -D --reply-dst ADDRESS`). */
  readonly flushNat?: (address: string) => Promise<number>;
  /** Path of the operator's hook, run on transitions. */
  readonly onTransition?: string | undefined;
  readonly hookTimeoutMs?: number;
  readonly now?: () => number;
}

interface Probed {
  /** Updated in place when a new desired state changes nothing the probes use. */
  provider: Provider;
  /** `inet6`: the provider's IPv6 half, probed and judged on its own (D183). */
  readonly family: 'inet6' | undefined;
  /** Identity of what is probed and how; a change restarts the loop (the verdict is kept). */
  readonly key: string;
  state: VerdictState;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
  /** The probe error last logged, so a lasting one is logged once, not every round. */
  loggedProbeError: string | null;
}

/** Facts are read at most this often for gateway targets (a DHCP gateway rarely changes). */
const FACTS_TTL_MS = 5_000;

export class HealthMonitor implements HealthSource {
  readonly #options: HealthMonitorOptions;
  readonly #probe: ProbeRunner;
  readonly #flush: (mark: number, markMask: number, family?: 'ipv4' | 'ipv6') => Promise<number>;
  readonly #flushNat: (address: string) => Promise<number>;
  readonly #hook: TransitionHook | undefined;
  readonly #now: () => number;
  readonly #listeners = new Set<(health: Health) => void>();
  readonly #providers = new Map<string, Probed>();
  readonly #hooks = new Set<Promise<void>>();
  #desired: DesiredState | null = null;
  /** Providers whose conntrack entries were flushed for the current down period. */
  readonly #flushed = new Set<string>();
  /** The same for the entries NATed to its addresses (D84); retried while the facts cannot be read. */
  readonly #natFlushed = new Set<string>();
  /** Transitions not yet handed to the hook (it runs once the kernel has followed). */
  #unreported: TransitionEvent[] = [];
  #lastDown = '';
  #facts: { at: number; facts: Promise<Facts> } | undefined;
  #closed = false;

  constructor(options: HealthMonitorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#probe = options.probe ?? processProbeRunner();
    const runner = new CommandRunner();
    this.#flush =
      options.flushConntrack ?? ((mark, mask, family) => flushConntrackMark(runner, mark, mask, family));
    this.#flushNat = options.flushNat ?? ((address) => flushConntrackNat(runner, address));
    this.#hook =
      options.onTransition === undefined
        ? undefined
        : new TransitionHook(options.onTransition, options.hookTimeoutMs ?? 10_000, options.log);
  }

  current(): Health {
    const health: Record<string, 'up' | 'down'> = {};
    for (const [name, probed] of this.#providers) {
      if (probed.state.verdict !== 'unknown') health[name] = probed.state.verdict;
    }
    return health;
  }

  report(): ProviderHealth[] {
    return [...this.#providers.entries()].map(([name, p]) =>
      toProviderHealth(name, p.state, p.provider.health.enabled && !p.stopped),
    );
  }

  configure(desired: DesiredState | null): void {
    if (this.#closed) return;
    this.#desired = desired;
    // One verdict per provider and family: `isp1` (IPv4) and `isp1:ipv6` (D183).
    const wanted = new Map<string, { provider: Provider; family: 'inet6' | undefined }>();
    for (const p of desired?.providers ?? []) {
      if (p.gateway.kind !== 'none') wanted.set(p.name, { provider: p, family: undefined });
      if (p.ipv6 !== undefined) wanted.set(healthKey(p.name, 'inet6'), { provider: p, family: 'inet6' });
    }
    for (const [name, probed] of this.#providers) {
      const entry = wanted.get(name);
      if (entry === undefined || probeKey(entry.provider, entry.family) !== probed.key) {
        this.#stop(probed);
        this.#providers.delete(name);
        if (entry !== undefined)
          this.#start(entry.provider, entry.family, probed.state, probed.loggedProbeError);
        else {
          this.#flushed.delete(name);
          this.#natFlushed.delete(name);
        }
      } else {
        probed.provider = entry.provider;
      }
    }
    for (const [name, entry] of wanted) {
      if (!this.#providers.has(name)) this.#start(entry.provider, entry.family, initialVerdict);
    }
    this.#lastDown = downKey(this.current());
  }

  onChange(listener: (health: Health) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async settled(effective: Health): Promise<void> {
    const desired = this.#desired;
    if (desired === null) return;
    for (const provider of desired.providers) {
      const v6 = healthKey(provider.name, 'inet6');
      if (provider.ipv6 !== undefined && effective[v6] !== 'down') this.#flushed.delete(v6);
      if (provider.ipv6 !== undefined && effective[v6] === 'down' && !this.#flushed.has(v6)) {
        this.#flushed.add(v6);
        try {
          const deleted = await this.#flush(provider.mark, desired.settings.markMask, 'ipv6');
          this.#options.log(`health: ${v6} down: flushed ${deleted} IPv6 conntrack entries of its mark`);
        } catch (error) {
          this.#options.log(`health: ${v6}: conntrack flush failed: ${message(error)}`);
        }
      }
      // Down in the probes but kept by the last resort: its connections still route by it.
      if (effective[provider.name] !== 'down') {
        this.#flushed.delete(provider.name);
        this.#natFlushed.delete(provider.name);
        continue;
      }
      if (!this.#flushed.has(provider.name)) {
        this.#flushed.add(provider.name);
        try {
          const deleted = await this.#flush(provider.mark, desired.settings.markMask);
          this.#options.log(
            `health: ${provider.name} down: flushed ${deleted} conntrack entries of its mark`,
          );
        } catch (error) {
          this.#options.log(`health: ${provider.name}: conntrack flush failed: ${message(error)}`);
        }
      }
      if (!this.#natFlushed.has(provider.name) && (await this.#flushNatted(provider, desired, effective)))
        this.#natFlushed.add(provider.name);
    }
    const events = this.#unreported;
    this.#unreported = [];
    if (this.#hook === undefined) return;
    for (const event of events) {
      const running = this.#hook.run(event);
      this.#hooks.add(running);
      void running.finally(() => this.#hooks.delete(running));
    }
  }

  /**
   * Drops the connections source-NATed to the provider's addresses (D84): its fixed SNAT
   * address, or (masquerade) every IPv4 address of its interface now — read afresh, a DHCP
   * or PPP address may have changed, and masquerade may have picked any of them. An address
   * a provider that is not down also uses (a shared SNAT address, one public /32 on several
   * PPP links) is left alone: its entries may be live. False when the facts could not be
   * read, so the next `settled` tries again.
   */
  async #flushNatted(provider: Provider, desired: DesiredState, effective: Health): Promise<boolean> {
    if (provider.snat.kind === 'none') return true;
    let facts: Facts;
    try {
      facts = await this.#options.readFacts();
    } catch (error) {
      this.#options.log(
        `health: ${provider.name}: no NAT flush yet, the facts cannot be read: ${message(error)}`,
      );
      return false;
    }
    const live = new Set(
      desired.providers
        .filter((p) => p.name !== provider.name && effective[p.name] !== 'down')
        .flatMap((p) => usedAddresses(p, facts)),
    );
    const natted =
      provider.snat.kind === 'address' ? [provider.snat.address] : usedAddresses(provider, facts);
    for (const address of new Set(natted)) {
      if (live.has(address)) {
        this.#options.log(
          `health: ${provider.name} down: no NAT flush of ${address}, a provider that is up uses it too`,
        );
        continue;
      }
      try {
        const deleted = await this.#flushNat(address);
        this.#options.log(
          `health: ${provider.name} down: flushed ${deleted} conntrack entries NATed to ${address}`,
        );
      } catch (error) {
        this.#options.log(
          `health: ${provider.name}: conntrack flush of ${address} failed: ${message(error)}`,
        );
      }
    }
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const probed of this.#providers.values()) this.#stop(probed);
    this.#listeners.clear();
    await Promise.all([...this.#hooks]);
  }

  #start(
    provider: Provider,
    family: 'inet6' | undefined,
    state: VerdictState,
    loggedProbeError: string | null = null,
  ): void {
    const probed: Probed = {
      provider,
      family,
      key: probeKey(provider, family),
      state,
      timer: undefined,
      stopped: false,
      loggedProbeError,
    };
    this.#providers.set(healthKey(provider.name, family), probed);
    if (!provider.health.enabled) return;
    probed.timer = setTimeout(() => void this.#round(probed), 0);
  }

  #stop(probed: Probed): void {
    probed.stopped = true;
    clearTimeout(probed.timer);
  }

  async #round(probed: Probed): Promise<void> {
    if (probed.stopped) return;
    const started = this.#now();
    const { health } = probed.provider;
    let outcomes: ProbeOutcome[];
    try {
      const targets =
        probed.family === 'inet6'
          ? await this.#targets6(probed.provider)
          : await this.#targets(probed.provider);
      outcomes = await Promise.all(
        targets.map((target) =>
          this.#probe({
            ...(probed.family === 'inet6' ? { family: 'inet6' as const } : {}),
            method: health.method,
            target,
            tcpPort: health.tcpPort,
            interface: probed.provider.interface,
            mark: probed.provider.mark,
            timeoutMs: health.timeoutMs,
          }),
        ),
      );
    } catch (error) {
      // Facts could not be read: the round counts as failed, with the reason.
      outcomes = [{ target: 'gateway', ok: false, error: message(error) }];
    }
    if (probed.stopped) return;
    const result = recordRound(probed.state, outcomes, health, this.#now());
    probed.state = result.state;
    this.#logProbeError(probed);
    if (result.transition !== undefined) {
      const t = result.transition;
      const name = healthKey(probed.provider.name, probed.family);
      this.#options.log(`health: ${name} ${t.from} → ${t.to}: ${t.reason}`);
      this.#unreported.push({
        site: this.#desired?.site ?? '',
        provider: name,
        state: t.to,
        previous: t.from,
        reason: t.reason,
        at: t.at,
      });
      this.#notifyIfDownChanged();
    }
    const delay = Math.max(0, started + health.intervalMs - this.#now());
    probed.timer = setTimeout(() => void this.#round(probed), delay);
  }

  /** Logs a probe error when it appears or changes, and when it is gone; not every round. */
  #logProbeError(probed: Probed): void {
    const error = probed.state.probeError;
    if (error === probed.loggedProbeError) return;
    const name = healthKey(probed.provider.name, probed.family);
    if (error !== null) {
      this.#options.log(
        `health: ${name}: probes cannot run, they count neither up nor down (verdict stays ${probed.state.verdict}): ${error}`,
      );
    } else {
      this.#options.log(`health: ${name}: probes run again`);
    }
    probed.loggedProbeError = error;
  }

  #notifyIfDownChanged(): void {
    const health = this.current();
    const key = downKey(health);
    if (key === this.#lastDown) return;
    this.#lastDown = key;
    for (const listener of this.#listeners) {
      try {
        listener(health);
      } catch (error) {
        this.#options.log(`health: a listener failed (a bug): ${message(error)}`);
      }
    }
  }

  /** The configured targets, else the gateway (static, detected, or the PPP peer). */
  async #targets(provider: Provider): Promise<string[]> {
    if (provider.health.targets.length > 0) return [...provider.health.targets];
    if (provider.gateway.kind === 'static') return [provider.gateway.address];
    if (provider.gateway.kind === 'none') return [];
    const iface = (await this.#readFacts()).interfaces[provider.interface];
    const gateway = provider.gateway.kind === 'detect' ? iface?.detectedGateway : iface?.addresses[0]?.peer;
    // No gateway known yet: a round without targets fails.
    return gateway === undefined ? [] : [gateway];
  }

  /** The IPv6 targets, else the IPv6 gateway (static, or the RA's). */
  async #targets6(provider: Provider): Promise<string[]> {
    const ipv6 = provider.ipv6;
    if (ipv6 === undefined) return [];
    if (ipv6.healthTargets.length > 0) return [...ipv6.healthTargets];
    if (ipv6.gateway.kind === 'static') return [ipv6.gateway.address];
    const gateway = (await this.#readFacts()).interfaces[provider.interface]?.detectedGateway6;
    return gateway === undefined ? [] : [gateway];
  }

  #readFacts(): Promise<Facts> {
    const now = this.#now();
    if (this.#facts === undefined || now - this.#facts.at > FACTS_TTL_MS) {
      const facts = this.#options.readFacts();
      this.#facts = { at: now, facts };
      facts.catch(() => {
        if (this.#facts?.facts === facts) this.#facts = undefined;
      });
    }
    return this.#facts.facts;
  }
}

function probeKey(p: Provider, family?: 'inet6'): string {
  return family === 'inet6'
    ? JSON.stringify([p.interface, p.mark, p.ipv6?.gateway, p.ipv6?.healthTargets, p.health])
    : JSON.stringify([p.interface, p.mark, p.gateway, p.health]);
}

function downKey(health: Health): string {
  return Object.keys(health)
    .filter((name) => health[name] === 'down')
    .sort()
    .join(',');
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The IPv4 addresses a provider's traffic leaves with: its interface's, and its fixed SNAT address. */
function usedAddresses(provider: Provider, facts: Facts): string[] {
  const own = (facts.interfaces[provider.interface]?.addresses ?? []).map((a) => a.address);
  return provider.snat.kind === 'address' ? [...own, provider.snat.address] : own;
}
