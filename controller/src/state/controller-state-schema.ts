/**
 * zod schema of the persisted controller state, checked on every load: a file that does not
 * match is reported as corrupt rather than half-trusted. The compile-time checks at the end
 * keep it in step with the TypeScript types of the rollout state machine.
 */
import { z } from 'zod';
import type { RolloutState } from '../rollout/step-rollout.js';

export const CONTROLLER_STATE_VERSION = 1;

const siteName = z.string().min(1).max(63);
const commit = z.string().regex(/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/, 'a full commit id');
/** Rollout plans in tests use short made-up commits; the controller always writes full ids. */
const planCommit = z.string().min(1).max(64);
const hash = z.string().min(1).max(128);

export const siteOutcome = z.enum([
  'applied',
  'unchanged',
  'refused',
  'unreachable',
  'unconfirmed',
  'failed',
  'unhealthy',
  'rolled-back',
]);

export const siteRecord = z
  .object({
    generation: z.string().min(1).max(128),
    hash,
    commit,
    /** Unix time, ms. */
    at: z.number().int().nonnegative(),
    outcome: siteOutcome,
    error: z.string().max(4000).optional(),
  })
  .strict();

/** Reconciliation's backoff for one site (D125): failed tries of `hash`, and when to try again. */
export const reconcileBackoff = z
  .object({
    hash,
    failures: z.number().int().nonnegative(),
    nextAt: z.number().int().nonnegative(),
  })
  .strict();

export const siteHistory = z
  .object({
    lastAttempted: siteRecord.optional(),
    lastApplied: siteRecord.optional(),
    reconcile: reconcileBackoff.optional(),
  })
  .strict();

const plannedSite = z
  .object({
    site: siteName,
    hash,
    previousHash: hash.optional(),
    reason: z.enum(['changed', 'new', 'unknown']),
  })
  .strict();

const plannedWave = z
  .object({
    name: z.string().min(1),
    standInFrom: z.string().min(1).optional(),
    sites: z.array(plannedSite),
    concurrency: z.number().int().positive(),
    maxFailures: z.number().int().nonnegative(),
    bakeMs: z.number().int().nonnegative(),
  })
  .strict();

const rolloutPlan = z
  .object({
    commit: planCommit,
    trigger: z.enum(['commit', 'retry', 'reconcile', 'resume']).optional(),
    suspended: z.array(siteName).optional(),
    waves: z.array(plannedWave),
    unchanged: z.array(siteName),
    rollbackOnFailure: z.boolean(),
    confirmWithinMs: z.number().int().nonnegative(),
    siteTimeoutMs: z.number().int().nonnegative(),
  })
  .strict();

const siteProgress = z
  .object({
    site: siteName,
    status: z.enum(['pending', 'applying', 'confirmed', 'failed', 'unreachable', 'reverted', 'rolled-back']),
    attempts: z.number().int().nonnegative(),
    failure: z.enum(['failed', 'refused', 'unconfirmed', 'unreachable', 'unhealthy']).optional(),
    error: z.string().optional(),
    rollingBack: z.boolean().optional(),
  })
  .strict();

export const rolloutState = z
  .object({
    plan: rolloutPlan,
    waveIndex: z.number().int().nonnegative(),
    perSite: z.array(siteProgress),
    phase: z.enum(['running', 'baking', 'halted', 'done', 'superseded', 'suspended']),
    bakeUntil: z.number().int().optional(),
    supersededBy: planCommit.optional(),
    suspending: z.boolean().optional(),
    halt: z
      .object({ wave: z.string(), reason: z.string(), failed: z.array(siteName) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const planned = s.plan.waves.flatMap((w) => w.sites.map((p) => p.site));
    if (planned.length !== s.perSite.length || planned.some((site, i) => s.perSite[i]!.site !== site)) {
      ctx.addIssue({
        code: 'custom',
        path: ['perSite'],
        message: 'does not list the planned sites in plan order',
      });
    }
    if (s.waveIndex > s.plan.waves.length) {
      ctx.addIssue({ code: 'custom', path: ['waveIndex'], message: 'beyond the last wave' });
    }
  });

/**
 * The bake check's baseline of one rollout (D86): per planned site, the providers that were up
 * in its status answer before the rollout applied it. A site with none up is left out.
 */
export const healthBaseline = z
  .object({
    commit: planCommit,
    upBefore: z.record(siteName, z.array(z.string().min(1).max(63))),
  })
  .strict();

const diagnostic = z
  .object({
    severity: z.enum(['error', 'warning']),
    file: z.string(),
    line: z.number().int(),
    col: z.number().int(),
    path: z.string(),
    message: z.string(),
  })
  .strict();

export const controllerState = z
  .object({
    version: z.literal(CONTROLLER_STATE_VERSION),
    sites: z.record(siteName, siteHistory),
    rollout: rolloutState.nullable(),
    /** Absent in files written before D86, and whenever no rollout needs one. */
    healthBaseline: healthBaseline.optional(),
    /** The newest commit that validated and compiled: the one in force. */
    lastGoodCommit: commit.nullable(),
    /** When it was recorded (absent in older files). */
    lastGoodCommitAt: z.number().int().nonnegative().optional(),
    /** The last rollout that finished: when, how, and why it ran (absent before the first). */
    lastRollout: z
      .object({
        commit: planCommit,
        phase: z.enum(['done', 'halted', 'superseded', 'suspended']),
        trigger: z.enum(['commit', 'retry', 'reconcile', 'resume']),
        at: z.number().int().nonnegative(),
      })
      .strict()
      .optional(),
    /** The newest commit refused (invalid spec or bad signature), with why. */
    lastInvalidCommit: z
      .object({
        commit,
        at: z.number().int().nonnegative(),
        reason: z.enum(['invalid-spec', 'signature']),
        message: z.string(),
        diagnostics: z.array(diagnostic),
      })
      .strict()
      .nullable(),
  })
  .strict();

// Keep the schema and the state machine's types in step (both directions).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Mutable<T> = T extends object ? { -readonly [K in keyof T]: Mutable<T[K]> } : T;
const schemaMatchesRolloutState: Same<Mutable<RolloutState>, z.infer<typeof rolloutState>> = true;
void schemaMatchesRolloutState;
