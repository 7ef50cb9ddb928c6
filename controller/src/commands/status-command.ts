/**
 * `uplink status [SITE]`: the controller's view of the fleet, or of one site with its
 * timeline. Reads the running daemon's last status document (`status.json` in its state dir),
 * or builds one from the persisted state when there is none.
 *
 * Exit codes (D124): 0 every site in sync and healthy, nothing halted, refused, suspended or
 * failing (the document's `attention` is empty; for SITE: the site is in sync); 1 something
 * needs attention (each thing is listed); 2 usage or error (no state to read).
 * `--watch` redraws every `--interval` until interrupted, and exits with the last view's code.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RouterFacts } from '#agent/model';
import type { ControllerConfig } from '../config/index.js';
import { ExitCode, UsageError } from '../errors.js';
import { GitSource } from '../git/index.js';
import type { ApiSite, ApiSiteDetail, ApiStatus, ApiTimelineEntry } from '../http/api-status.js';
import { buildApiStatus } from '../http/build-api-status.js';
import { shortGeneration } from '../report/generation.js';
import { isoTime } from '../report/iso-time.js';
import { unknownSiteMessage } from '../report/suggest-names.js';
import { compileCommit } from '../run/compile-commit.js';
import { STATUS_FILE } from '../run/controller-daemon.js';
import { readControl } from '../state/control-file.js';
import { CONTROLLER_STATE_FILE, type ControllerState, readControllerState } from '../state/index.js';
import { TimelineStore } from '../state/timeline-store.js';
import { parseCliDuration } from './cli-duration.js';
import { controllerStateDir } from './controller-dir.js';
import { outputFormat } from './output-format.js';

export interface StatusOptions {
  config?: string;
  stateDir?: string;
  format?: string;
  watch?: boolean;
  interval?: string;
}

export async function statusCommand(
  site: string | undefined,
  opts: StatusOptions,
  version: string,
): Promise<void> {
  const format = await outputFormat(opts.format, ['text', 'wide', 'json']);
  const { stateDir, config } = await controllerStateDir('status', opts);
  const view = async (): Promise<{ text: string; code: number }> => {
    const status = await readStatus(stateDir, version, config);
    if (site !== undefined) {
      const found = status.sites.find((s) => s.name === site);
      if (!found)
        throw new UsageError(
          unknownSiteMessage(
            site,
            status.sites.map((s) => s.name),
          ),
        );
      const detail: ApiSiteDetail = {
        now: status.now,
        target: status.target,
        site: found,
        timeline: await TimelineStore.read(join(stateDir, 'timeline'), site),
      };
      return {
        text:
          format === 'json'
            ? `${JSON.stringify(detail, null, 2)}\n`
            : formatSiteDetail(detail, format === 'wide'),
        code: found.state === 'in-sync' ? 0 : 1,
      };
    }
    return {
      text:
        format === 'json' ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status, format === 'wide'),
      code: status.attention.length === 0 ? 0 : 1,
    };
  };
  if (!opts.watch) {
    const { text, code } = await view();
    process.stdout.write(text);
    if (code !== 0) throw new ExitCode(code);
    return;
  }
  const intervalMs = parseCliDuration('--interval', opts.interval ?? '2s', { min: 200 });
  const tty = process.stdout.isTTY === true;
  let last = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let previous = '';
  try {
    while (!stopped) {
      const { text, code } = await view();
      last = code;
      if (tty) process.stdout.write(`\x1b[H\x1b[2J${text}\n(every ${intervalMs / 1000} s; Ctrl-C to stop)\n`);
      else if (text !== previous) process.stdout.write(`${text}\n`);
      previous = text;
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (last !== 0) throw new ExitCode(last);
}

/**
 * The daemon's document if it wrote one, else one built from the persisted state: the
 * target's desired hashes compiled from the state dir's repository mirror when there is one,
 * else taken from the persisted rollout's plan.
 */
export async function readStatus(
  stateDir: string,
  version: string,
  config?: ControllerConfig,
): Promise<ApiStatus> {
  try {
    return JSON.parse(await readFile(join(stateDir, STATUS_FILE), 'utf8')) as ApiStatus;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const state = await readControllerState(join(stateDir, CONTROLLER_STATE_FILE));
  const control = await readControl(stateDir);
  const target = await targetOf(stateDir, state);
  return buildApiStatus({
    now: Date.now(),
    version,
    controller: {
      repo: config?.repo.url ?? null,
      branch: config?.repo.branch ?? null,
      pollIntervalMs: null,
      lastFetchAt: null,
      lastFetchError: null,
      signatureVerification: config?.signatures.enabled ?? false,
    },
    state,
    ...target,
    reports: new Map(),
    events: [],
    suspension: { fleet: control.fleet, sites: control.sites },
  });
}

async function targetOf(
  stateDir: string,
  state: ControllerState,
): Promise<Pick<Parameters<typeof buildApiStatus>[0], 'fleet' | 'desiredHashes'>> {
  const commit = state.lastGoodCommit;
  if (!commit) return {};
  try {
    const compiled = await compileCommit(await GitSource.open(join(stateDir, 'fleet.git')), commit);
    if (compiled.ok)
      return {
        fleet: compiled.fleet,
        desiredHashes: new Map([...compiled.desired].map(([s, d]) => [s, d.hash] as const)),
      };
  } catch {
    // no mirror here (`uplink rollout --repo … --state-dir`): fall back to the plan
  }
  const plan = state.rollout?.plan;
  if (plan?.commit !== commit) return {};
  const hashes = new Map<string, string>();
  for (const w of plan.waves) for (const s of w.sites) hashes.set(s.site, s.hash);
  for (const site of plan.unchanged) {
    const applied = state.sites[site]?.lastApplied?.hash;
    if (applied) hashes.set(site, applied);
  }
  return { desiredHashes: hashes };
}

const time = (ms: number | null | undefined) => (ms === null || ms === undefined ? '—' : isoTime(ms));
const short = (c: string | null | undefined) => (c ? c.slice(0, 12) : 'none');

export function formatStatus(s: ApiStatus, wide = false): string {
  const lines: string[] = [];
  const target = s.target ?? (s.lastGoodCommit ? { commit: s.lastGoodCommit, since: null } : null);
  lines.push(
    `target:    ${target ? `${short(target.commit)}${target.since ? ` (since ${time(target.since)})` : ''}` : 'none (no commit has validated yet)'}`,
  );
  const running = (s.running ?? []).map(
    (r) =>
      `${r.commit === 'nothing' || r.commit === 'override' || r.commit === 'unknown' ? r.commit : short(r.commit)} on ${r.sites.length} site${r.sites.length === 1 ? '' : 's'}${r.sites.length <= 3 ? ` (${r.sites.join(', ')})` : ''}`,
  );
  if (running.length > 0) lines.push(`routers:   ${running.join('; ')}`);
  if (s.suspended)
    lines.push(`SUSPENDED: by ${s.suspended.by} at ${time(s.suspended.at)}: ${s.suspended.reason}`);
  if (s.reconcile) lines.push(`reconcile: ${s.reconcile}`);
  if (s.lastInvalidCommit) {
    lines.push(
      `refused:   ${short(s.lastInvalidCommit.commit)} (${s.lastInvalidCommit.reason}): ${s.lastInvalidCommit.message}`,
    );
    for (const d of s.lastInvalidCommit.diagnostics.slice(0, 20)) lines.push(`  ${d}`);
  }
  if (s.controller.lastFetchError) lines.push(`fetch:     failing: ${s.controller.lastFetchError}`);
  if (s.controller.lastError)
    lines.push(
      `error:     ${s.controller.lastError.commit ? `(commit ${short(s.controller.lastError.commit)}) ` : ''}${s.controller.lastError.message}`,
    );
  const r = s.rollout;
  if (r) {
    lines.push(
      `rollout:   ${short(r.commit)} ${r.phase}${r.trigger && r.trigger !== 'commit' ? ` (${r.trigger})` : ''}; ${r.progress.confirmed}/${r.progress.planned} confirmed, ${r.progress.failed} failed, ${r.unchanged} unchanged${r.suspended?.length ? `, ${r.suspended.length} suspended` : ''}`,
    );
    if (r.halt) lines.push(`  halted: ${r.halt.reason} (${r.halt.failed.join(', ')})`);
    for (const w of r.waves) {
      lines.push(
        `  wave ${w.name}${w.standInFrom ? ` (canary stand-in from ${w.standInFrom})` : ''}: ${w.state} — ${w.sites.map((x) => `${x.site}=${x.status}`).join(' ')}`,
      );
    }
  }
  const by = Object.entries(s.summary.byState)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  lines.push(`sites:     ${s.summary.sites}${by ? ` (${by})` : ''}`);
  lines.push('');
  const header = wide
    ? ['SITE', 'STATE', 'RUNS', 'WAVE', 'PROVIDERS', 'DRIFT', 'LAST SEEN', 'NOTE']
    : ['SITE', 'STATE', 'RUNS', 'PROVIDERS'];
  const rows = s.sites.map((site) => siteRow(site, s.now, wide));
  lines.push(...table([header, ...rows]));
  // Faults of the routers' environment (D103), each named as what it is.
  const faulty = s.sites.filter((site) => site.faults.length > 0);
  if (faulty.length > 0) {
    lines.push('', 'faults on routers:');
    for (const site of faulty) {
      lines.push(`${site.name}:`);
      for (const fault of site.faults) lines.push(`  fault ${fault.kind}: ${fault.message}`);
    }
  }
  const attention = s.attention ?? [];
  if (attention.length > 0) {
    lines.push('', `needs attention (${attention.length}):`);
    for (const a of attention) lines.push(`  ${a}`);
  }
  return `${lines.join('\n')}\n`;
}

function providers(site: ApiSite, wide: boolean): string {
  return site.health
    .map((h) => {
      const measured = wide
        ? ` ${h.latencyMs === null ? '—' : `${h.latencyMs.toFixed(1)}ms`}/${Math.round(h.loss * 100)}%`
        : '';
      return `${h.name}:${h.unavailable ? 'unavailable' : h.state}${measured}${h.unavailable ? ` (${h.unavailable})` : ''}${h.probeError ? ` (probes cannot run: ${h.probeError})` : ''}`;
    })
    .join(' ');
}

function siteRow(site: ApiSite, now: number, wide: boolean): string[] {
  const runs = site.applied ? shortGeneration(site.applied.generation) : '—';
  const base = [site.name, site.suspended ? `${site.state} (suspended)` : site.state, runs];
  if (!wide) return [...base, providers(site, false) || '—'];
  const drift = site.drift
    ? site.drift.items.length === 0
      ? 'none'
      : `${site.drift.items.length} (${site.drift.policy})`
    : '—';
  const seen =
    site.lastSeen === null ? 'never' : `${Math.max(0, Math.round((now - site.lastSeen) / 1000))}s ago`;
  return [...base, site.wave ?? '—', providers(site, true) || '—', drift, seen, site.reconcile?.note ?? ''];
}

/** Columns padded to their widest cell; the last column is not padded. */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

export function formatSiteDetail(d: ApiSiteDetail, wide = false): string {
  const s = d.site;
  const lines: string[] = [];
  lines.push(
    `site:      ${s.name}${
      Object.keys(s.labels).length
        ? `  (${Object.entries(s.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ')})`
        : ''
    }`,
  );
  lines.push(
    `state:     ${s.state}${s.suspended ? ` — suspended by ${s.suspended.by}: ${s.suspended.reason}` : ''}`,
  );
  for (const c of s.conditions) lines.push(`  ${c.state}: ${c.message}`);
  lines.push(`target:    ${d.target ? short(d.target.commit) : 'none'}${s.wave ? ` (wave ${s.wave})` : ''}`);
  lines.push(
    `runs:      ${s.applied ? `${s.applied.generation} (applied ${time(s.applied.at)})` : 'nothing applied'}`,
  );
  if (s.pending)
    lines.push(`pending:   ${s.pending.generation}, reverts at ${time(s.pending.deadline)} unless confirmed`);
  if (s.override) lines.push(`override:  by ${s.override.by}: ${s.override.reason}`);
  if (s.lastAttempt)
    lines.push(
      `last try:  ${s.lastAttempt.outcome} at ${time(s.lastAttempt.at)} (commit ${short(s.lastAttempt.commit)})${s.lastAttempt.error ? `: ${s.lastAttempt.error}` : ''}`,
    );
  if (s.reconcile)
    lines.push(
      `reconcile: ${s.reconcile.note}${s.reconcile.nextAt ? ` (next ${time(s.reconcile.nextAt)})` : ''}`,
    );
  lines.push(`last seen: ${time(s.lastSeen)}${s.statusError ? ` — ${s.statusError}` : ''}`);
  // A status.json from before router facts has no field at all.
  const facts = s.facts ?? null;
  lines.push(
    facts === null
      ? 'facts:     none reported (an agent older than protocol revision 4, or no answer yet): explain and plan use stand-ins'
      : `facts:     reported ${time(facts.reportedAt)} (read on the router ${time(facts.readAt)}), hash ${facts.hash.slice(0, 12)}; ${describeAddresses(facts.facts)}`,
  );
  lines.push('', 'providers:');
  if (s.health.length === 0) lines.push('  —');
  for (const h of s.health)
    lines.push(
      `  ${h.name.padEnd(12)} ${h.state.padEnd(8)} since ${time(h.since)}  latency ${h.latencyMs === null ? '—' : `${h.latencyMs.toFixed(1)} ms`}  loss ${Math.round(h.loss * 100)}%${h.reason ? `  (${h.reason})` : ''}${h.unavailable ? `  unavailable: ${h.unavailable}` : ''}${h.probeError ? `  probes cannot run: ${h.probeError}` : ''}`,
    );
  lines.push(
    '',
    `drift:${s.drift ? ` policy ${s.drift.policy}, checked ${time(s.drift.checkedAt)}` : ' not reported yet'}`,
  );
  for (const item of s.drift?.items ?? []) {
    lines.push(`  ${item.kind} ${item.object} (since ${time(item.firstSeen)})`);
    lines.push(`    expected: ${item.expected ?? 'nothing'}`);
    lines.push(`    found:    ${item.found ?? 'nothing'}`);
  }
  if (s.drift && s.drift.shadowed > 0)
    lines.push(`  ${s.drift.shadowed} foreign object(s) shadow Uplink's (warnings)`);
  lines.push('', `timeline (${d.timeline.length}, newest last):`);
  const entries = wide ? d.timeline : d.timeline.slice(-30);
  if (entries.length < d.timeline.length)
    lines.push(`  … ${d.timeline.length - entries.length} older (-o wide shows all)`);
  for (const e of entries) lines.push(`  ${formatEntry(e)}`);
  return `${lines.join('\n')}\n`;
}

function formatEntry(e: ApiTimelineEntry): string {
  return `${time(e.at)}  ${e.level.padEnd(5)} ${e.kind.padEnd(16)} ${e.message}`;
}

/** `ppp0 192.0.2.2 peer 192.0.2.1, wan1 198.51.100.2/30 198.51.100.3/30` — every address, by interface. */
function describeAddresses(facts: RouterFacts): string {
  const parts = Object.entries(facts.interfaces)
    .filter(([name, f]) => name !== 'lo' && f.addresses.length > 0)
    .map(
      ([name, f]) =>
        `${name}${f.up ? '' : ' (down)'} ${f.addresses
          .map((a) =>
            a.peer === undefined ? `${a.address}/${a.prefixLength}` : `${a.address} peer ${a.peer}`,
          )
          .join(' ')}`,
    );
  return parts.length === 0 ? 'no addresses' : parts.join(', ');
}
