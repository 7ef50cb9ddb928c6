/**
 * The daemon's watch over the kernel, after an apply is confirmed:
 *
 * - follow: when an uplink's link or address changes (PPP reconnect, new DHCP lease) or a
 *   provider's health verdict changes, re-apply the confirmed desired state with the new
 *   facts and health. Following is not drift: the `from` rules move with the address and
 *   failover moves routes, and nothing is reported.
 * - drift: otherwise compare what Uplink owns with the confirmed state resolved against the
 *   same facts and health (`findDrift`), keep `firstSeen` per item, log each new item, and
 *   under the `heal` policy re-apply, with exponential backoff so two writers never loop.
 *
 * Every check runs in CommitConfirmed's one-writer queue, so it never interleaves with an
 * apply, confirm or revert, and never runs while an apply is pending confirmation (it runs
 * again when the pending apply is confirmed or reverted). Checks are triggered by kernel
 * events (debounced), by a cheap poll of table inet uplink (netfilter raises no rtnetlink
 * event), and by a periodic full check (sysctls raise no event either).
 */
import {
  type DriftFinding,
  findDrift,
  findingKey,
  formatFinding,
  stampFirstSeen,
} from '../core/find-drift.js';
import { formatChanges } from '../core/format-changes.js';
import { ownershipScope } from '../core/owned.js';
import { acceptDelegated } from '../core/resolve.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { readCurrent } from '../engine/read-current.js';
import { reconcile } from '../engine/reconcile.js';
import { StateStore } from '../engine/state-store.js';
import { InterfaceMissingError } from '../errors.js';
import { effectiveHealth } from '../health/effective-health.js';
import type { DesiredState } from '../model/desired-state.js';
import type { Facts, Health } from '../model/kernel-state.js';
import type { DriftItem, DriftReport } from '../model/protocol.js';
import type { CommitConfirmed, StateChange } from './commit-confirmed.js';
import type { KernelEvent, KernelEventKind, KernelEvents } from './kernel-watch.js';

export interface WatchOptions {
  /** Kernel change notifications (ip monitor); without them only polls and periodic checks run. */
  readonly events?: KernelEvents;
  /** A cheap read of what raises no event (table inet uplink); a check runs when it changes. */
  readonly fingerprint?: () => Promise<string>;
  /** How often `fingerprint` is polled (default 500 ms: with the debounce, a change is seen within 1 s). */
  readonly pollMs?: number;
  /** How often a full check runs regardless of events (default 30 s): sysctls, missed events. */
  readonly fullCheckMs?: number;
  /** Events closer together than this are handled by one check (default 150 ms). */
  readonly debounceMs?: number;
  /** Heal backoff: the first retry after this long, doubling up to `healMaxMs` (defaults 1 s, 5 min). */
  readonly healInitialMs?: number;
  readonly healMaxMs?: number;
}

export interface DriftWatchContext {
  readonly stateDir: string;
  readonly dataplane: (markMask: number | undefined) => Dataplane;
  readonly now: () => number;
  readonly log: (line: string) => void;
}

type Trigger = KernelEventKind | 'nft' | 'periodic' | 'health' | 'state' | 'heal-backoff';

export class DriftWatch {
  readonly #commit: CommitConfirmed;
  readonly #context: DriftWatchContext;
  readonly #options: WatchOptions;
  readonly #store: StateStore;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #unsubscribe: (() => void)[] = [];
  #report: DriftReport | null = null;
  /** The facts and health the kernel was last brought to; a check with others follows. */
  #baseline: { readonly facts: string; readonly health: string } | undefined;
  #followNeeded = false;
  /**
   * Health changes seen, and how many of them a follow has settled: `settled` is owed while
   * the first is ahead. A count, not a flag, so a change during a follow's reconcile is
   * still owed after that follow settles the health it applied.
   */
  #healthChanges = 0;
  #settledChanges = 0;
  #debounce: NodeJS.Timeout | undefined;
  #queued = false;
  #again = false;
  #running: Promise<void> = Promise.resolve();
  #fingerprint: string | undefined;
  #polling = false;
  #closed = false;
  #heal = { count: 0, last: null as number | null, nextAt: 0, delay: 0 };
  #lastFollowError: string | undefined;
  /** The last poll and check failures logged: a failure is logged once per change of message. */
  #lastPollError: string | undefined;
  #lastCheckError: string | undefined;
  #healTimer = false;
  /** `provider prefix` of the delegated prefixes refused last time (D155). */
  #refusedDelegated = new Set<string>();
  /** The uplinks' interfaces: a link or address event on one of them is followed. */
  #uplinks = new Set<string>();

  constructor(commit: CommitConfirmed, context: DriftWatchContext, options: WatchOptions) {
    this.#commit = commit;
    this.#context = context;
    this.#options = options;
    this.#store = new StateStore(context.stateDir, commit.engineOptions);
  }

  /** Subscribes to events, health and commit state; the first check follows (see #onStateChange). */
  start(): void {
    this.#commit.reportDriftFrom(() => this.report());
    this.#unsubscribe.push(this.#commit.onStateChange((event) => this.#onStateChange(event)));
    this.#unsubscribe.push(
      this.#commit.health.onChange(() => {
        this.#healthChanges++;
        this.trigger('health');
      }),
    );
    this.#options.events?.onEvent((event) => this.#onKernelEvent(event));
    if (this.#options.fingerprint !== undefined) this.#every(this.#options.pollMs ?? 500, () => this.#poll());
    this.#every(this.#options.fullCheckMs ?? 30_000, () => this.trigger('periodic'));
    this.#onStateChange('open');
  }

  /** The drift report for `status`; null while nothing confirmed is in force. */
  report(): DriftReport | null {
    return this.#report;
  }

  /** Asks for a check soon; several triggers within the debounce window make one check. */
  trigger(reason: Trigger): void {
    if (this.#closed) return;
    if (reason === 'health') this.#followNeeded = true;
    if (this.#debounce !== undefined) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#enqueue();
    }, this.#options.debounceMs ?? 150);
  }

  /** Stops timers and events and waits for a running check. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    // clearInterval and clearTimeout are interchangeable in Node.
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers.clear();
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    await this.#options.events?.close();
    await this.#running;
  }

  /**
   * A link or address change of an uplink (or one the line does not name) is followed, even
   * when the facts read the same afterwards: a link that went down and up within the
   * debounce lost its routes, and that is the link's doing, not drift.
   */
  #onKernelEvent(event: KernelEvent): void {
    const uplink = event.iface === undefined || this.#uplinks.has(event.iface);
    // IPv6 address events come with every router advertisement (lifetimes) and every
    // link-local DAD: followed only when the facts change, which the check compares (D180).
    const addressFollowed = event.kind === 'address' && event.family === undefined;
    // A delegated prefix the DHCPv6 client reported or withdrew (D155) is always a change of facts.
    if (((event.kind === 'link' || addressFollowed) && uplink) || event.kind === 'facts')
      this.#followNeeded = true;
    this.trigger(event.kind);
  }

  /**
   * An apply, confirm or revert changed what is in force; what was reported is about the
   * old state. After an apply (confirmed or applied at once) the kernel was just verified
   * against the current facts: they become the baseline, and a follow runs only if an
   * uplink changed meanwhile (events while pending are kept). After a revert, a rollback or
   * a start, the kernel holds a state resolved against older facts: follow.
   */
  #onStateChange(event: StateChange): void {
    if (this.#report !== null) this.#report = { ...this.#report, items: [], shadowed: [] };
    this.#baseline = undefined;
    if (event === 'reverted' || event === 'rolled-back' || event === 'open') this.#followNeeded = true;
    this.trigger('state');
  }

  #every(ms: number, fn: () => void): void {
    const timer = setInterval(fn, ms);
    timer.unref();
    this.#timers.add(timer);
  }

  async #poll(): Promise<void> {
    if (this.#polling || this.#closed) return;
    this.#polling = true;
    try {
      const fingerprint = await this.#options.fingerprint!();
      if (this.#fingerprint !== undefined && fingerprint !== this.#fingerprint) this.trigger('nft');
      this.#fingerprint = fingerprint;
      if (this.#lastPollError !== undefined)
        this.#context.log('drift: polling table inet uplink works again');
      this.#lastPollError = undefined;
    } catch (error) {
      this.#commit.faults.noteError(error);
      const text = message(error);
      if (text !== this.#lastPollError) this.#context.log(`drift: polling table inet uplink failed: ${text}`);
      this.#lastPollError = text;
    } finally {
      this.#polling = false;
    }
  }

  /** One check in the queue at a time; a trigger during a check runs one more after it. */
  #enqueue(): void {
    if (this.#closed) return;
    if (this.#queued) {
      this.#again = true;
      return;
    }
    this.#queued = true;
    this.#running = this.#commit
      .exclusive(() => this.#check())
      .catch((error: unknown) => {
        this.#commit.faults.noteError(error);
        const text = message(error);
        if (text !== this.#lastCheckError) this.#context.log(`drift: check failed: ${text}`);
        this.#lastCheckError = text;
      })
      .finally(() => {
        this.#queued = false;
        if (this.#again) {
          this.#again = false;
          this.#enqueue();
        }
      });
  }

  async #check(): Promise<void> {
    if (this.#closed) return;
    // Drift is measured against the confirmed state; a pending apply is checked after it settles.
    if (this.#commit.record.pending !== null) return;
    const applied = await this.#store.readApplied();
    if (applied === undefined) {
      this.#report = null;
      return;
    }
    const confirmed = this.#commit.record.applied;
    if (confirmed !== null && confirmed.hash !== applied.desired.hash) {
      // applied.json names a state nobody confirmed (a revert whose record could not be
      // written yet, an apply by hand outside the daemon): never follow or heal toward it (D100).
      const text = `drift: applied.json holds ${applied.desired.hash.slice(0, 12)}, not the confirmed ${confirmed.generation}; not following or checking it`;
      if (text !== this.#lastCheckError) this.#context.log(text);
      this.#lastCheckError = text;
      return;
    }
    const desired = applied.desired;
    this.#uplinks = new Set(desired.providers.map((p) => p.interface));
    const dataplane = this.#context.dataplane(desired.settings.markMask);
    const scope = ownershipScope(desired);
    // Read together (no await between): `health` includes exactly the first `changes` changes.
    const changes = this.#healthChanges;
    const health = this.#commit.health.current();
    let current = await readCurrent(dataplane, scope);
    this.#noteRefusedDelegated(desired, current.facts);
    const baseline = { facts: JSON.stringify(current.facts), health: JSON.stringify(health) };
    const follow =
      this.#followNeeded ||
      changes > this.#settledChanges ||
      (this.#baseline !== undefined &&
        (this.#baseline.facts !== baseline.facts || this.#baseline.health !== baseline.health));
    this.#followNeeded = false;
    if (follow) {
      const followed = await this.#follow(dataplane, desired, health);
      if (followed === true) {
        this.#baseline = baseline;
        current = await readCurrent(dataplane, scope);
        if (JSON.stringify(current.facts) !== baseline.facts) {
          // The uplinks changed again while the follow ran (a modem pulled out as it was
          // plugged in): the kernel holds what the older facts asked for. That is the next
          // follow's to fix, not drift (D92).
          this.#followNeeded = true;
          this.trigger('state');
          return;
        }
        await this.#settle(desired, current.facts, health, changes);
      } else if (
        followed instanceof InterfaceMissingError &&
        JSON.stringify((await readCurrent(dataplane, scope)).facts) !== baseline.facts
      ) {
        // An interface went away under the re-apply (a modem pulled out as the follow ran):
        // that is a change of facts, so follow them again now; the kernel holds neither
        // state, and comparing it with the older facts would report drift that is not.
        this.#context.log(
          `follow: ${followed.interfaces.join(', ')} went away while ${desired.site} was re-applied; following the new facts`,
        );
        this.#followNeeded = true;
        this.trigger('state');
        return;
      } else {
        if (followed instanceof InterfaceMissingError) this.#followFailed(desired, followed);
        this.#followNeeded = true;
      }
    } else this.#baseline ??= baseline;
    this.#lastCheckError = undefined;
    let findings = findDrift({ desired, facts: current.facts, health, current: current.kernel, scope });
    if (desired.settings.drift === 'heal' && findings.items.length > 0) {
      // Reported (and logged) before it is healed, so every drift leaves a trace.
      this.#record(desired, findings.items, findings.shadowed);
      if (await this.#healNow(dataplane, desired, health, findings.items)) {
        current = await readCurrent(dataplane, scope);
        findings = findDrift({ desired, facts: current.facts, health, current: current.kernel, scope });
      }
    } else if (findings.items.length === 0) this.#relaxBackoff();
    this.#record(desired, findings.items, findings.shadowed);
  }

  /**
   * Re-applies the confirmed state with the current facts and health; false when the engine
   * refused; an interface that vanished during it is returned for the caller to judge (the
   * facts changed: follow again; or they did not: a failure like any other).
   */
  async #follow(
    dataplane: Dataplane,
    desired: DesiredState,
    health: Health,
  ): Promise<boolean | InterfaceMissingError> {
    try {
      const report = await reconcile(dataplane, desired, health, this.#commit.engineOptions);
      if (this.#lastFollowError !== undefined)
        this.#context.log(`follow: re-applying ${desired.site} works again`);
      this.#lastFollowError = undefined;
      if (report.changes.length > 0) {
        this.#context.log(
          `follow: re-applied the confirmed state of ${desired.site} to the current addresses and health (${report.changes.length} change(s)): ${formatChanges(report.changes).join('; ')}`,
        );
      }
      return true;
    } catch (error) {
      if (error instanceof InterfaceMissingError) return error;
      this.#followFailed(desired, error);
      return false;
    }
  }

  /** A delegated prefix the agent will not route is logged once when it appears and once when gone (D155). */
  #noteRefusedDelegated(desired: DesiredState, facts: Facts): void {
    const now = new Map(
      acceptDelegated(desired, facts).refused.map((r) => [
        `${r.provider} ${r.prefix}`,
        `delegated: ${desired.site}: provider ${r.provider}: the delegated prefix ${r.prefix} ${r.reason}; not routed`,
      ]),
    );
    for (const [key, line] of now) if (!this.#refusedDelegated.has(key)) this.#context.log(line);
    for (const key of this.#refusedDelegated)
      if (!now.has(key)) this.#context.log(`delegated: ${desired.site}: ${key} is no longer refused`);
    this.#refusedDelegated = new Set(now.keys());
  }

  #followFailed(desired: DesiredState, error: unknown): void {
    this.#commit.faults.noteError(error);
    const text = message(error);
    if (text !== this.#lastFollowError)
      this.#context.log(`follow: re-applying ${desired.site} failed: ${text}`);
    this.#lastFollowError = text;
  }

  /**
   * Tells the health source what the kernel now follows: the health as resolve applied it,
   * so a provider kept by the last resort (D32) is not treated as routed around.
   */
  async #settle(desired: DesiredState, facts: Facts, health: Health, changes: number): Promise<void> {
    if (changes <= this.#settledChanges) return;
    this.#settledChanges = changes;
    await this.#commit.health.settled(effectiveHealth(desired, facts, health));
  }

  /** Heals now unless the backoff says wait (then a check is scheduled for when it ends). */
  async #healNow(
    dataplane: Dataplane,
    desired: DesiredState,
    health: Health,
    items: readonly DriftFinding[],
  ): Promise<boolean> {
    const now = this.#context.now();
    const heal = this.#heal;
    if (now < heal.nextAt) {
      this.#healLater(heal.nextAt - now);
      return false;
    }
    heal.delay =
      heal.delay === 0
        ? (this.#options.healInitialMs ?? 1_000)
        : Math.min(heal.delay * 2, this.#options.healMaxMs ?? 300_000);
    heal.nextAt = now + heal.delay;
    try {
      const report = await reconcile(dataplane, desired, health, {
        ...this.#commit.engineOptions,
        now: () => new Date(now),
      });
      heal.count++;
      heal.last = now;
      this.#context.log(
        `drift: healed ${items.length} drifted object(s) of ${desired.site} (heal ${heal.count}; next heal no sooner than ${heal.delay} ms from now): ${formatChanges(report.changes).join('; ')}`,
      );
      return true;
    } catch (error) {
      this.#context.log(
        `drift: healing ${desired.site} failed (retrying in ${heal.delay} ms): ${message(error)}`,
      );
      this.#healLater(heal.delay);
      return false;
    }
  }

  /** After a calm period as long as the current backoff, the next heal is immediate again. */
  #relaxBackoff(): void {
    const heal = this.#heal;
    if (heal.delay > 0 && this.#context.now() >= heal.nextAt + heal.delay) {
      heal.delay = 0;
      heal.nextAt = 0;
    }
  }

  /** One check when the heal backoff ends (one timer at a time). */
  #healLater(ms: number): void {
    if (this.#healTimer) return;
    this.#healTimer = true;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#healTimer = false;
      this.trigger('heal-backoff');
    }, ms);
    timer.unref();
    this.#timers.add(timer);
  }

  #record(desired: DesiredState, items: readonly DriftFinding[], shadowed: readonly DriftFinding[]): void {
    const now = this.#context.now();
    const previous = this.#report;
    const stampedItems = stampFirstSeen(items, previous?.items ?? [], now);
    const stampedShadowed = stampFirstSeen(shadowed, previous?.shadowed ?? [], now);
    this.#logTransitions(desired.site, previous?.items ?? [], stampedItems, 'drift');
    this.#logTransitions(desired.site, previous?.shadowed ?? [], stampedShadowed, 'shadowed');
    this.#report = {
      policy: desired.settings.drift,
      checkedAt: now,
      items: stampedItems,
      shadowed: stampedShadowed,
      heals: this.#heal.count,
      lastHeal: this.#heal.last,
    };
  }

  #logTransitions(
    site: string,
    before: readonly DriftItem[],
    after: readonly DriftItem[],
    what: string,
  ): void {
    const had = new Set(before.map(findingKey));
    const has = new Set(after.map(findingKey));
    for (const item of after)
      if (!had.has(findingKey(item))) this.#context.log(`${what}: ${site}: ${formatFinding(item)}`);
    for (const item of before)
      if (!has.has(findingKey(item))) this.#context.log(`${what} gone: ${site}: ${item.kind} ${item.object}`);
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
