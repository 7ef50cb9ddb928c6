/**
 * The operator's requests to a controller (D126), as files in its state dir, so that they
 * survive restarts and work whether the daemon runs or not:
 *
 * - `control.json` — suspension: the whole fleet (`uplink suspend`) and single sites
 *   (`uplink suspend SITE`), each with who, why and when. Written by the CLI (atomically),
 *   read by the daemon every second and at start, and by `uplink rollout`.
 * - `retry-request.json` — `uplink retry`: roll the commit in force out again (after a
 *   halt) without a new commit. The daemon takes it (deletes it) and acts on it.
 *
 * The daemon never writes `control.json` and the CLI never writes `controller-state.json`,
 * so the two never overwrite each other.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { UplinkError } from '../errors.js';
import { writeFileAtomic } from './write-file-atomic.js';

export const CONTROL_FILE = 'control.json';
export const RETRY_REQUEST_FILE = 'retry-request.json';

const suspension = z
  .object({
    by: z.string().min(1).max(200),
    reason: z.string().max(2000),
    at: z.number().int().nonnegative(),
  })
  .strict();
export type Suspension = z.infer<typeof suspension>;

const control = z
  .object({
    version: z.literal(1),
    fleet: suspension.nullable(),
    sites: z.record(z.string().min(1).max(63), suspension),
  })
  .strict();
export type Control = z.infer<typeof control>;

const retryRequest = z
  .object({ by: z.string().min(1).max(200), at: z.number().int().nonnegative() })
  .strict();
export type RetryRequest = z.infer<typeof retryRequest>;

export function emptyControl(): Control {
  return { version: 1, fleet: null, sites: {} };
}

/** Suspends the fleet (no sites given) or the sites given. */
export function suspend(c: Control, who: Suspension, sites: readonly string[] = []): Control {
  if (sites.length === 0) return { ...c, fleet: who };
  return { ...c, sites: { ...c.sites, ...Object.fromEntries(sites.map((s) => [s, who])) } };
}

/** Resumes the fleet (no sites given: also every suspended site) or the sites given. */
export function resume(c: Control, sites: readonly string[] = []): Control {
  if (sites.length === 0) return { ...c, fleet: null, sites: {} };
  const rest = { ...c.sites };
  for (const s of sites) delete rest[s];
  return { ...c, sites: rest };
}

export async function readControl(stateDir: string): Promise<Control> {
  const file = join(stateDir, CONTROL_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyControl();
    throw new UplinkError('failed', `${file}: cannot read it: ${(e as Error).message}`);
  }
  const parsed = control.safeParse(safeJson(text));
  if (!parsed.success)
    throw new UplinkError(
      'failed',
      `${file}: not a control file (${parsed.error.issues[0]?.message}); remove it to resume everything, or fix it`,
    );
  return parsed.data;
}

export async function writeControl(stateDir: string, c: Control): Promise<void> {
  await writeFileAtomic(join(stateDir, CONTROL_FILE), `${JSON.stringify(c, null, 2)}\n`);
}

export async function requestRetry(stateDir: string, request: RetryRequest): Promise<void> {
  await writeFileAtomic(join(stateDir, RETRY_REQUEST_FILE), `${JSON.stringify(request)}\n`);
}

/** The pending retry request, removed from disk (the caller acts on it); undefined when none. */
export async function takeRetryRequest(stateDir: string): Promise<RetryRequest | undefined> {
  const file = join(stateDir, RETRY_REQUEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  await rm(file, { force: true });
  const parsed = retryRequest.safeParse(safeJson(text));
  return parsed.success ? parsed.data : undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
