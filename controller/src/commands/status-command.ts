/**
 * `uplink status`: the controller's view of the fleet. Reads the running daemon's last
 * status document (`status.json` in its state dir), or builds one from the persisted state
 * when there is none. Exit 0; 1 when the rollout is halted or a site has failed or is
 * unreachable (a refused commit is shown but changes nothing, so it alone is not a failure).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadControllerConfig } from '../config/index.js';
import { ExitCode, UsageError } from '../errors.js';
import type { ApiStatus } from '../http/api-status.js';
import { buildApiStatus } from '../http/build-api-status.js';
import { STATUS_FILE } from '../run/controller-daemon.js';
import { CONTROLLER_STATE_FILE, readControllerState } from '../state/index.js';

export interface StatusOptions {
  config?: string;
  stateDir?: string;
  format: 'text' | 'json';
}

export async function statusCommand(opts: StatusOptions, version: string): Promise<void> {
  const stateDir =
    opts.stateDir ?? (opts.config ? (await loadControllerConfig(opts.config)).stateDir : undefined);
  if (!stateDir) throw new UsageError('status: pass --config FILE or --state-dir DIR');
  const status = await readStatus(stateDir, version);
  if (opts.format === 'json') process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
  else process.stdout.write(formatStatus(status));
  const bad =
    status.rollout?.phase === 'halted' ||
    status.summary.byState.failed > 0 ||
    status.summary.byState.unreachable > 0;
  if (bad) throw new ExitCode(1);
}

async function readStatus(stateDir: string, version: string): Promise<ApiStatus> {
  try {
    return JSON.parse(await readFile(join(stateDir, STATUS_FILE), 'utf8')) as ApiStatus;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const state = await readControllerState(join(stateDir, CONTROLLER_STATE_FILE));
  return buildApiStatus({
    now: Date.now(),
    version,
    controller: {
      repo: null,
      branch: null,
      pollIntervalMs: null,
      lastFetchAt: null,
      lastFetchError: null,
      signatureVerification: false,
    },
    state,
    reports: new Map(),
    events: [],
  });
}

export function formatStatus(s: ApiStatus): string {
  const lines: string[] = [];
  const short = (c: string | null) => (c ? c.slice(0, 12) : 'none');
  lines.push(`commit in force: ${short(s.lastGoodCommit)}`);
  if (s.lastInvalidCommit) {
    lines.push(
      `last refused commit: ${short(s.lastInvalidCommit.commit)} (${s.lastInvalidCommit.reason}): ${s.lastInvalidCommit.message}`,
    );
    for (const d of s.lastInvalidCommit.diagnostics.slice(0, 20)) lines.push(`  ${d}`);
  }
  if (s.controller.lastFetchError) lines.push(`last fetch failed: ${s.controller.lastFetchError}`);
  if (s.controller.lastError)
    lines.push(
      `last error${s.controller.lastError.commit ? ` (commit ${short(s.controller.lastError.commit)})` : ''}: ${s.controller.lastError.message}`,
    );
  const by = Object.entries(s.summary.byState)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  lines.push(
    `sites: ${s.summary.sites}${by ? ` (${by})` : ''}; drifted ${s.summary.drifted}; degraded ${s.summary.degraded}`,
  );
  const r = s.rollout;
  if (r) {
    lines.push(
      `rollout ${short(r.commit)}: ${r.phase}; ${r.progress.confirmed}/${r.progress.planned} confirmed, ${r.progress.failed} failed, ${r.unchanged} unchanged`,
    );
    if (r.halt) lines.push(`  halted: ${r.halt.reason} (${r.halt.failed.join(', ')})`);
    for (const w of r.waves) {
      lines.push(`  wave ${w.name}: ${w.state} — ${w.sites.map((x) => `${x.site}=${x.status}`).join(' ')}`);
    }
  }
  for (const site of s.sites) {
    const health = site.health
      .map((h) => `${h.name}:${h.state}${h.probeError ? ` (probes cannot run: ${h.probeError})` : ''}`)
      .join(' ');
    const drift = site.drift && site.drift.items.length > 0 ? ` drift=${site.drift.items.length}` : '';
    const gen = site.applied ? site.applied.generation.slice(0, 20) : '-';
    lines.push(
      `${site.name.padEnd(24)} ${site.state.padEnd(12)} ${gen}${drift}${health ? ` ${health}` : ''}${site.statusError ? ` (${site.statusError})` : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
