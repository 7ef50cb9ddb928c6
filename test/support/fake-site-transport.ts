/**
 * An in-memory fleet of agents for the executor's tests, with the agent's commit-confirmed
 * semantics: an apply that changes something is pending until confirmed; a site marked
 * `cutsManagement` for a hash applies it but cannot be confirmed and reverts; a site marked
 * `down` is unreachable; `providersAfter` sets provider health once a hash is applied.
 * It records every call in order, so tests assert order and connection counts.
 */
import { type DesiredState, type RouterFacts, routerFactsHash, type StatusResult } from '#agent/model';
import type { SiteTransport, StatusOptions } from '../../controller/src/run/site-transport.js';
import type { ValidSite } from '../../controller/src/spec/valid-site.js';
import type { ApplyOutcome } from '../../controller/src/transport/index.js';

interface FakeAgent {
  applied: { generation: string; hash: string; at: number } | null;
  pending: { generation: string; hash: string; at: number; deadline: number } | null;
  lastRevert: {
    generation: string;
    hash: string;
    reason: 'confirm-timeout';
    at: number;
    result: 'ok';
  } | null;
  health: { name: string; state: 'up' | 'down' | 'unknown' }[];
}

export interface FakeCall {
  /** `applySettled`: an apply call returned (late ones included). */
  readonly method: 'status' | 'apply' | 'confirm' | 'applySettled';
  readonly site: string;
  readonly hash?: string;
  /** status: whether the answer carried the router facts in full (not just their hash). */
  readonly factsSent?: boolean;
}

export class FakeFleet implements SiteTransport {
  readonly agents = new Map<string, FakeAgent>();
  readonly calls: FakeCall[] = [];
  /** Sites whose agent cannot be reached. */
  readonly down = new Set<string>();
  /** site → hash whose apply cuts the management path (never confirmed, reverted). */
  readonly cutsManagement = new Map<string, string>();
  /** site → hash after whose apply the given providers go down. */
  readonly providersDownAfter = new Map<string, { hash: string; providers: string[] }>();
  /** Sites whose apply never answers (until the caller aborts it: then it is unreachable). */
  readonly hangs = new Set<string>();
  /**
   * Sites whose apply answers only when the caller aborts it or `answer(site)` is called: the
   * apply then lands pending and is confirmed only if the caller has not aborted meanwhile
   * (otherwise the agent reverts it at its deadline).
   */
  readonly answersLate = new Set<string>();
  /** Sites whose every apply cannot be confirmed (whatever the hash): the agent reverts it. */
  readonly neverConfirmed = new Set<string>();
  /** Router facts a site's agent reports (revision 4); sites not listed report none. */
  readonly routerFacts = new Map<string, RouterFacts>();
  #answer = new Map<string, () => void>();
  /** Called at the start of every apply; the apply waits for the promise it returns, if any. */
  holdApply: ((site: string, hash: string) => Promise<void> | undefined) | undefined;
  /** Called at the start of every status call; the call waits for the promise it returns, if any. */
  holdStatus: ((site: string) => Promise<void> | undefined) | undefined;
  clock = 1_000_000;

  constructor(sites: readonly string[], initial?: (site: string) => string | undefined) {
    for (const site of sites) {
      const hash = initial?.(site);
      this.agents.set(site, {
        applied: hash ? { generation: `g0-${site}`, hash, at: 1 } : null,
        pending: null,
        lastRevert: null,
        health: [{ name: 'isp1', state: 'up' }],
      });
    }
  }

  appliedHash(site: string): string | undefined {
    return this.agents.get(site)?.applied?.hash;
  }

  applies(site?: string): FakeCall[] {
    return this.calls.filter((c) => c.method === 'apply' && (site === undefined || c.site === site));
  }

  private agent(site: ValidSite): FakeAgent {
    if (this.down.has(site.name)) throw new Error(`${site.name}: connection refused`);
    const agent = this.agents.get(site.name);
    if (!agent) throw new Error(`${site.name}: no such agent`);
    return agent;
  }

  async status(site: ValidSite, options: StatusOptions = {}): Promise<StatusResult> {
    const facts = this.routerFacts.get(site.name);
    const hash = facts === undefined ? undefined : routerFactsHash(facts);
    const factsSent = facts !== undefined && options.factsHash !== hash;
    this.calls.push({ method: 'status', site: site.name, ...(facts === undefined ? {} : { factsSent }) });
    await this.holdStatus?.(site.name);
    await Promise.resolve();
    const a = this.agent(site);
    return {
      agent: 'fake',
      protocol: 1,
      site: site.name,
      applied: a.applied ? { ...a.applied, site: site.name } : null,
      pending: a.pending ? { ...a.pending, site: site.name } : null,
      lastRevert: a.lastRevert,
      owned: { rules: 0, routes: 0, nftRules: null, sysctls: 0 },
      facts: { interfaces: 0, providers: [] },
      health: a.health.map((h) => ({
        ...h,
        since: null,
        probing: true,
        latencyMs: 1,
        loss: 0,
        transitions: [],
      })),
      drift: null,
      now: this.clock,
      ...(hash === undefined
        ? {}
        : { routerFacts: { hash, readAt: this.clock, ...(factsSent ? { facts } : {}) } }),
    };
  }

  async apply(
    site: ValidSite,
    desired: DesiredState,
    generation: string,
    confirmWithinMs: number,
    signal?: AbortSignal,
  ): Promise<ApplyOutcome> {
    try {
      return await this.#apply(site, desired, generation, confirmWithinMs, signal);
    } finally {
      this.calls.push({ method: 'applySettled', site: site.name, hash: desired.hash });
    }
  }

  /** Let a site in `answersLate` answer its apply now. */
  answer(site: string): void {
    this.#answer.get(site)?.();
  }

  async #apply(
    site: ValidSite,
    desired: DesiredState,
    generation: string,
    confirmWithinMs: number,
    signal: AbortSignal | undefined,
  ): Promise<ApplyOutcome> {
    this.calls.push({ method: 'apply', site: site.name, hash: desired.hash });
    await this.holdApply?.(site.name, desired.hash);
    const base = { site: site.name, generation };
    if (this.hangs.has(site.name)) {
      await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve()));
      return {
        ...base,
        outcome: 'unreachable',
        error: { kind: 'transport', message: `${site.name}: given up` },
        attempts: { apply: 1, confirm: 0 },
      };
    }
    if (this.answersLate.has(site.name)) {
      await new Promise<void>((resolve) => {
        this.#answer.set(site.name, resolve);
        signal?.addEventListener('abort', () => resolve());
      });
      this.#answer.delete(site.name);
    }
    await Promise.resolve();
    let a: FakeAgent;
    try {
      a = this.agent(site);
    } catch (e) {
      return {
        ...base,
        outcome: 'unreachable',
        error: { kind: 'transport', message: String(e) },
        attempts: { apply: 1, confirm: 0 },
      };
    }
    if (a.applied?.hash === desired.hash) {
      a.applied = { generation, hash: desired.hash, at: this.clock };
      return { ...base, outcome: 'unchanged', changes: 0, attempts: { apply: 1, confirm: 0 } };
    }
    if (
      this.cutsManagement.get(site.name) === desired.hash ||
      this.neverConfirmed.has(site.name) ||
      signal?.aborted
    ) {
      // Applied, the confirm connection fails, the agent reverts at its deadline.
      a.lastRevert = {
        generation,
        hash: desired.hash,
        reason: 'confirm-timeout',
        at: this.clock,
        result: 'ok',
      };
      a.pending = null;
      return {
        ...base,
        outcome: 'unconfirmed',
        changes: 3,
        error: { kind: 'transport', message: `${site.name}: confirm connection timed out` },
        attempts: { apply: 1, confirm: 4 },
      };
    }
    a.pending = { generation, hash: desired.hash, at: this.clock, deadline: this.clock + confirmWithinMs };
    this.calls.push({ method: 'confirm', site: site.name, hash: desired.hash });
    a.applied = { generation, hash: desired.hash, at: this.clock };
    a.pending = null;
    const down = this.providersDownAfter.get(site.name);
    if (down?.hash === desired.hash) {
      for (const h of a.health) if (down.providers.includes(h.name)) h.state = 'down';
    }
    return { ...base, outcome: 'applied', changes: 3, attempts: { apply: 1, confirm: 1 } };
  }

  async confirm(site: ValidSite, generation: string): Promise<void> {
    this.calls.push({ method: 'confirm', site: site.name });
    await Promise.resolve();
    const a = this.agent(site);
    if (a.pending?.generation !== generation) throw new Error(`${site.name}: not-pending`);
    a.applied = { generation, hash: a.pending.hash, at: this.clock };
    a.pending = null;
  }

  /** Put an apply of `hash` pending on `site`, as a controller that died before its confirm leaves it. */
  leavePending(site: string, generation: string, hash: string): void {
    const a = this.agents.get(site)!;
    a.pending = { generation, hash, at: this.clock, deadline: this.clock + 60_000 };
  }
}
