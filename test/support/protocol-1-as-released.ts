/**
 * The response schemas of protocol 1 exactly as first released (agent/src/model/protocol.ts
 * at d92e929, before D103), as an older controller holds them: strict objects, closed
 * enums. The agent must answer a session below protocol revision 3 in words these
 * accept (test/agent-daemon.test.ts). Copied, not imported, so later edits of the protocol
 * cannot move this fixture with them.
 */
import { z } from 'zod';

const generation = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9._:+-]+$/, 'generation: letters, digits and . _ : + - only');
const requestId = z.union([z.string().max(64), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]);
const PROTOCOL_VERSION = 1;

/** Error codes on the wire. Only `busy` and `unavailable` are worth retrying. */
const errorCode = z.enum([
  'bad-request',
  'unsupported-version',
  'unknown-method',
  'too-large',
  'busy',
  'conflict',
  'management-path',
  'refused',
  'kernel',
  'verify-failed',
  'not-pending',
  'unavailable',
  'internal',
]);

export const errorResponse = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    id: requestId.nullable(),
    ok: z.literal(false),
    error: z.object({ code: errorCode, message: z.string().max(4000), retryable: z.boolean() }).strict(),
  })
  .strict();
export type ErrorResponse = z.infer<typeof errorResponse>;

export const generationInfo = z
  .object({ generation, hash: z.string(), site: z.string(), at: z.number().int() })
  .strict();
export type GenerationInfo = z.infer<typeof generationInfo>;

export const pendingInfo = generationInfo.extend({ deadline: z.number().int() }).strict();
export type PendingInfo = z.infer<typeof pendingInfo>;

/** One change of an apply or plan, for people and logs (the full before/after stays on the router). */
export const changeSummary = z
  .object({
    action: z.enum(['create', 'update', 'delete', 'replace']),
    kind: z.enum(['rule', 'route', 'nft', 'sysctl']),
    key: z.string(),
  })
  .strict();
export type ChangeSummary = z.infer<typeof changeSummary>;

export const unavailableProvider = z.object({ provider: z.string(), reason: z.string() }).strict();

/** How a reply to the controller leaves the router: `forward` out `dev` from `src`, or why not. */
export const pathVerdict = z
  .object({ kind: z.string(), dev: z.string().optional(), src: z.string().optional() })
  .strict();
export type PathVerdict = z.infer<typeof pathVerdict>;

/**
 * The management-path guard's answer for one change: how replies to the controller (the
 * client address of SSH_CONNECTION) leave now and would leave under the new state.
 */
export const managementPathCheck = z
  .object({
    controller: z.string(),
    current: pathVerdict,
    next: pathVerdict,
    unchanged: z.boolean(),
    /** Set when the path changes: which rule or route captures the replies. */
    message: z.string().optional(),
  })
  .strict();
export type ManagementPathCheck = z.infer<typeof managementPathCheck>;

export const helloResult = z
  .object({
    protocol: z.number().int(),
    supported: z.array(z.number().int()).min(1),
    agent: z.string(),
    site: z.string().nullable(),
  })
  .strict();
export type HelloResult = z.infer<typeof helloResult>;

export const planResult = z
  .object({
    changes: z.array(changeSummary),
    steps: z.number().int().min(0),
    unavailable: z.array(unavailableProvider),
    problems: z.array(z.string()),
    conflicts: z.array(z.string()),
    /** null when the session did not come over SSH (no SSH_CONNECTION) or nothing changes. */
    managementPath: managementPathCheck.nullable(),
  })
  .strict();
export type PlanResult = z.infer<typeof planResult>;

export const applyResult = z
  .object({
    generation,
    changes: z.array(changeSummary),
    steps: z.number().int().min(0),
    unavailable: z.array(unavailableProvider),
    /** Set when something changed: confirm before `deadline` or the agent reverts. */
    pending: pendingInfo.nullable(),
    /** Set when nothing changed: the generation is applied at once, there is nothing to confirm. */
    applied: generationInfo.nullable(),
    managementPath: managementPathCheck.nullable(),
  })
  .strict();
export type ApplyResult = z.infer<typeof applyResult>;

export const confirmResult = z
  .object({
    generation,
    applied: generationInfo,
    /** The generation was already confirmed (a repeated confirm is harmless). */
    alreadyConfirmed: z.boolean(),
  })
  .strict();
export type ConfirmResult = z.infer<typeof confirmResult>;

export const revertReason = z.enum([
  /** No confirm arrived before the deadline. */
  'confirm-timeout',
  /** The controller asked (`revert`). */
  'requested',
  /** The agent started with a pending apply whose deadline had passed. */
  'deadline-passed-at-start',
  /** The agent stopped in the middle of an apply. */
  'interrupted-apply',
]);
export type RevertReason = z.infer<typeof revertReason>;

export const revertInfo = z
  .object({
    generation,
    hash: z.string(),
    reason: revertReason,
    at: z.number().int(),
    result: z.enum(['ok', 'failed']),
    message: z.string().optional(),
  })
  .strict();
export type RevertInfo = z.infer<typeof revertInfo>;

export const revertResult = z
  .object({
    reverted: revertInfo,
    changes: z.array(changeSummary),
    /** What is applied now (the generation before the reverted one, if the agent knows it). */
    applied: generationInfo.nullable(),
  })
  .strict();
export type RevertResult = z.infer<typeof revertResult>;

/** One object that differs from the confirmed desired state (or shadows it). */
export const driftItem = z
  .object({
    /** Stable identity, as in diffs: e.g. `rule 10010 from 172.20.1.0/24 lookup 101`. */
    object: z.string(),
    kind: z.enum(['missing', 'unexpected', 'changed', 'shadowed']),
    /** Human-readable expected and found forms; null when absent on that side. */
    expected: z.string().nullable(),
    found: z.string().nullable(),
    /** Milliseconds since the epoch when the agent first saw this difference. */
    firstSeen: z.number().int(),
  })
  .strict();
export type DriftItem = z.infer<typeof driftItem>;

export const driftReport = z
  .object({
    policy: z.enum(['report', 'heal']),
    /** When the last full check finished; null before the first one. */
    checkedAt: z.number().int().nullable(),
    /** Owned objects that differ from the confirmed state (failover and readdressing are not drift). */
    items: z.array(driftItem),
    /** Foreign objects that capture traffic before Uplink's rules (warnings, never healed). */
    shadowed: z.array(driftItem),
    heals: z.number().int().min(0),
    lastHeal: z.number().int().nullable(),
  })
  .strict();
export type DriftReport = z.infer<typeof driftReport>;

export const healthTransition = z
  .object({
    at: z.number().int(),
    from: z.enum(['up', 'down', 'unknown']),
    to: z.enum(['up', 'down', 'unknown']),
    reason: z.string(),
  })
  .strict();
export type HealthTransition = z.infer<typeof healthTransition>;

export const providerHealth = z
  .object({
    name: z.string(),
    /** `unknown` until the first verdict, or when probing is disabled for this provider. */
    state: z.enum(['up', 'down', 'unknown']),
    since: z.number().int().nullable(),
    probing: z.boolean(),
    /** Median round-trip of the recent answered probes; null when none answered. */
    latencyMs: z.number().nullable(),
    /** Share of recent probes without an answer, 0..1. */
    loss: z.number().min(0).max(1),
    /** The most recent transitions, newest last. */
    transitions: z.array(healthTransition),
    /**
     * Why the last round had probes that could not run (`ping` or `socat` missing): those
     * count neither way (D83). Absent when every probe ran, so older controllers, whose
     * schema is strict, still accept the answer of a router without the problem.
     */
    probeError: z.string().optional(),
  })
  .strict();
export type ProviderHealth = z.infer<typeof providerHealth>;

export const statusResult = z
  .object({
    agent: z.string(),
    protocol: z.number().int(),
    site: z.string().nullable(),
    applied: generationInfo.nullable(),
    pending: pendingInfo.nullable(),
    lastRevert: revertInfo.nullable(),
    /** Counts of what Uplink owns in the kernel now; nftRules null = no table inet uplink. */
    owned: z
      .object({
        rules: z.number().int(),
        routes: z.number().int(),
        nftRules: z.number().int().nullable(),
        sysctls: z.number().int(),
      })
      .strict(),
    /** Provider availability from the router's facts (interface exists, up, has an address). */
    facts: z
      .object({
        interfaces: z.number().int(),
        providers: z.array(
          z
            .object({
              name: z.string(),
              interface: z.string(),
              available: z.boolean(),
              reason: z.string().optional(),
            })
            .strict(),
        ),
      })
      .strict(),
    /** Per-provider probe state (empty before anything is applied). */
    health: z.array(providerHealth),
    /** Null before anything is confirmed. */
    drift: driftReport.nullable(),
    now: z.number().int(),
  })
  .strict();
export type StatusResult = z.infer<typeof statusResult>;
