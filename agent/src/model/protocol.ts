/**
 * The agent's wire protocol: JSON lines over the SSH exec channel (forced command
 * `uplink-agent rpc`), bridged to the daemon's unix socket. Every message is validated
 * with zod on both ends; a line longer than MAX_LINE_BYTES is refused unread.
 */
import { z } from 'zod';
import { receivedDesiredState } from './desired-state.js';
import { LIMITS } from './limits.js';

/** The envelope version every message carries (`v`): fixed, so every release can talk to every other. */
export const PROTOCOL_VERSION = 1;
/**
 * Protocol revisions: negotiated in `hello`, the highest both ends speak (D91). Revision 2
 * adds desired-state features an older agent would refuse; the controller sends a state only
 * to an agent whose revision has every feature it uses (`requiredRevision`), and a reply's
 * fields an older controller does not know are ignored. Revision 3 adds the faults of the
 * router's environment (D103): their error codes, `status.faults`, the revert details and
 * the revert reason `apply-failed`; a session below it is answered in revision 2's words
 * (`codeForRevision`, `resultForRevision`). Revision 4 adds the router's facts to `status`
 * (`routerFacts`, D170) and IPv6 to the desired state (D180); a session below it gets no facts
 * and is sent no IPv6.
 */
export const PROTOCOL_REVISION = 4;
export const SUPPORTED_REVISIONS: readonly number[] = [1, 2, 3, 4];
/** The revision whose sessions get fault codes and the fields of D103. */
export const FAULTS_REVISION = 3;
/** The revision whose sessions get `status.routerFacts` (D170). */
export const FACTS_REVISION = 4;
/** A desired state of 20,000 rules fits comfortably; anything larger is refused. */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;

export const generation = z
  .string()
  .min(LIMITS.generationLength.min)
  .max(LIMITS.generationLength.max)
  .regex(/^[A-Za-z0-9._:+-]+$/, 'generation: letters, digits and . _ : + - only');

const requestId = z.union([z.string().max(64), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]);

/** `protocol`: the highest revision the client speaks; the agent answers with the highest both do. */
export const helloParams = z.object({
  protocol: z.number().int().min(1).max(1_000),
  client: z.string().max(200),
});
export const planParams = z.object({ desired: receivedDesiredState }).strict();
export const applyParams = z
  .object({
    desired: receivedDesiredState,
    generation,
    /** Revert unless confirmed within this many milliseconds. */
    confirmWithinMs: z.number().int().min(LIMITS.confirmWithinMs.min).max(LIMITS.confirmWithinMs.max),
    /** Apply even if the management path would move (the operator says it is intended). */
    allowManagementChange: z.boolean().optional(),
  })
  .strict();
export const confirmParams = z.object({ generation }).strict();
export const emptyParams = z.object({}).strict();
/**
 * `status` changes nothing: fields a newer controller adds are ignored. `factsHash`: the hash
 * of the router facts the controller holds; when they are still the router's, the reply
 * carries the hash alone (D170).
 */
export const statusParams = z.object({ factsHash: z.string().max(128).optional() });

export const request = z.discriminatedUnion('method', [
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: requestId,
      method: z.literal('hello'),
      params: helloParams,
    })
    .strict(),
  z
    .object({ v: z.literal(PROTOCOL_VERSION), id: requestId, method: z.literal('plan'), params: planParams })
    .strict(),
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: requestId,
      method: z.literal('apply'),
      params: applyParams,
    })
    .strict(),
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: requestId,
      method: z.literal('confirm'),
      params: confirmParams,
    })
    .strict(),
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: requestId,
      method: z.literal('revert'),
      params: emptyParams,
    })
    .strict(),
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: requestId,
      method: z.literal('status'),
      params: statusParams,
    })
    .strict(),
]);
export type Request = z.infer<typeof request>;
export type Method = Request['method'];

/**
 * Faults of the router's environment, each its own kind (D103): the state directory is on a
 * read-only filesystem, a full one, or cannot be written; a tool is not installed; an
 * interface vanished. Error codes on the wire and entries of `status.faults`.
 */
export const faultKind = z.enum([
  'state-dir-read-only',
  'state-dir-full',
  'state-dir-unwritable',
  'tool-missing',
  'interface-missing',
]);
export type FaultKind = z.infer<typeof faultKind>;

/** The codes before revision 3: what a session below FAULTS_REVISION gets. */
export const legacyErrorCode = z.enum([
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

/** Error codes on the wire. Only `busy` and `unavailable` are worth retrying. */
export const errorCode = z.enum([...legacyErrorCode.options, ...faultKind.options]);
export type ErrorCode = z.infer<typeof errorCode>;

/** A code in the words of `revision`: below FAULTS_REVISION a fault is `internal` (state directory) or `kernel`. */
export function codeForRevision(code: ErrorCode, revision: number): ErrorCode {
  if (revision >= FAULTS_REVISION) return code;
  switch (code) {
    case 'state-dir-read-only':
    case 'state-dir-full':
    case 'state-dir-unwritable':
      return 'internal';
    case 'tool-missing':
    case 'interface-missing':
      return 'kernel';
    default:
      return code;
  }
}

export const errorResponse = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    id: requestId.nullable(),
    ok: z.literal(false),
    error: z.object({ code: errorCode, message: z.string().max(4000), retryable: z.boolean() }).strict(),
  })
  .strict();
export type ErrorResponse = z.infer<typeof errorResponse>;

export const generationInfo = z.object({
  generation,
  hash: z.string(),
  site: z.string(),
  at: z.number().int(),
});
export type GenerationInfo = z.infer<typeof generationInfo>;

export const pendingInfo = generationInfo.extend({ deadline: z.number().int() });
export type PendingInfo = z.infer<typeof pendingInfo>;

export const okResponse = z.object({
  v: z.literal(PROTOCOL_VERSION),
  id: requestId,
  ok: z.literal(true),
  result: z.unknown(),
});

/** An error as a client receives it: a code a newer agent added is still an error, with its message. */
export const receivedErrorResponse = z.object({
  v: z.literal(PROTOCOL_VERSION),
  id: requestId.nullable(),
  ok: z.literal(false),
  error: z.object({ code: z.string().min(1).max(64), message: z.string().max(4000), retryable: z.boolean() }),
});

/** What a client accepts as a response line. */
export const response = z.union([okResponse, receivedErrorResponse]);
export type Response = z.infer<typeof response>;

// ---------------------------------------------------------------------------------------
// Results. The controller validates what it receives against these; they accept fields they
// do not know (zod's default: stripped), so a newer agent's additions never break an older controller (D91).
// The agent's tests check its replies hold exactly these fields (test/support/exact-result.ts).
// Times are milliseconds since the epoch.

/** One change of an apply or plan, for people and logs (the full before/after stays on the router). */
export const changeSummary = z.object({
  action: z.enum(['create', 'update', 'delete', 'replace']),
  kind: z.enum(['rule', 'route', 'nft', 'sysctl']),
  key: z.string(),
});
export type ChangeSummary = z.infer<typeof changeSummary>;

export const unavailableProvider = z.object({ provider: z.string(), reason: z.string() });

/** How a reply to the controller leaves the router: `forward` out `dev` from `src`, or why not. */
export const pathVerdict = z.object({
  kind: z.string(),
  dev: z.string().optional(),
  src: z.string().optional(),
});
export type PathVerdict = z.infer<typeof pathVerdict>;

/**
 * The management-path guard's answer for one change: how replies to the controller (the
 * client address of SSH_CONNECTION) leave now and would leave under the new state.
 */
export const managementPathCheck = z.object({
  controller: z.string(),
  current: pathVerdict,
  next: pathVerdict,
  unchanged: z.boolean(),
  /** Set when the path changes: which rule or route captures the replies. */
  message: z.string().optional(),
});
export type ManagementPathCheck = z.infer<typeof managementPathCheck>;

export const helloResult = z.object({
  protocol: z.number().int(),
  supported: z.array(z.number().int()).min(1),
  agent: z.string(),
  site: z.string().nullable(),
});
export type HelloResult = z.infer<typeof helloResult>;

export const planResult = z.object({
  changes: z.array(changeSummary),
  steps: z.number().int().min(0),
  unavailable: z.array(unavailableProvider),
  problems: z.array(z.string()),
  conflicts: z.array(z.string()),
  /** null when the session did not come over SSH (no SSH_CONNECTION) or nothing changes. */
  managementPath: managementPathCheck.nullable(),
});
export type PlanResult = z.infer<typeof planResult>;

export const applyResult = z.object({
  generation,
  changes: z.array(changeSummary),
  steps: z.number().int().min(0),
  unavailable: z.array(unavailableProvider),
  /** Set when something changed: confirm before `deadline` or the agent reverts. */
  pending: pendingInfo.nullable(),
  /** Set when nothing changed: the generation is applied at once, there is nothing to confirm. */
  applied: generationInfo.nullable(),
  managementPath: managementPathCheck.nullable(),
});
export type ApplyResult = z.infer<typeof applyResult>;

export const confirmResult = z.object({
  generation,
  applied: generationInfo,
  /** The generation was already confirmed (a repeated confirm is harmless). */
  alreadyConfirmed: z.boolean(),
});
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
  /** The apply failed after the kernel may have changed (a refused step, a full disk, …) (D100). */
  'apply-failed',
]);
export type RevertReason = z.infer<typeof revertReason>;

export const revertInfo = z.object({
  generation,
  hash: z.string(),
  reason: revertReason,
  at: z.number().int(),
  /** `failed`: not complete yet (objects not restored, or not recorded); the agent keeps trying. */
  result: z.enum(['ok', 'failed']),
  message: z.string().optional(),
  /** Objects of vanished interfaces the revert left out (gone with their interface; D101). Revision 3. */
  skipped: z.array(z.string()).optional(),
  /** Objects that still differ from the snapshot, each with the kernel's last word. Revision 3. */
  unrestored: z.array(z.string()).optional(),
  /** Attempts so far, and when the next one runs, while `failed`. Revision 3. */
  attempts: z.number().int().min(1).optional(),
  nextAttemptAt: z.number().int().optional(),
});
export type RevertInfo = z.infer<typeof revertInfo>;

export const revertResult = z.object({
  reverted: revertInfo,
  changes: z.array(changeSummary),
  /** What is applied now (the generation before the reverted one, if the agent knows it). */
  applied: generationInfo.nullable(),
});
export type RevertResult = z.infer<typeof revertResult>;

/** One object that differs from the confirmed desired state (or shadows it). */
export const driftItem = z.object({
  /** Stable identity, as in diffs: e.g. `rule 10010 from 172.20.1.0/24 lookup 101`. */
  object: z.string(),
  kind: z.enum(['missing', 'unexpected', 'changed', 'shadowed']),
  /** Human-readable expected and found forms; null when absent on that side. */
  expected: z.string().nullable(),
  found: z.string().nullable(),
  /** Milliseconds since the epoch when the agent first saw this difference. */
  firstSeen: z.number().int(),
});
export type DriftItem = z.infer<typeof driftItem>;

export const driftReport = z.object({
  policy: z.enum(['report', 'heal']),
  /** When the last full check finished; null before the first one. */
  checkedAt: z.number().int().nullable(),
  /** Owned objects that differ from the confirmed state (failover and readdressing are not drift). */
  items: z.array(driftItem),
  /** Foreign objects that capture traffic before Uplink's rules (warnings, never healed). */
  shadowed: z.array(driftItem),
  heals: z.number().int().min(0),
  lastHeal: z.number().int().nullable(),
});
export type DriftReport = z.infer<typeof driftReport>;

export const healthTransition = z.object({
  at: z.number().int(),
  from: z.enum(['up', 'down', 'unknown']),
  to: z.enum(['up', 'down', 'unknown']),
  reason: z.string(),
});
export type HealthTransition = z.infer<typeof healthTransition>;

export const providerHealth = z.object({
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
});
export type ProviderHealth = z.infer<typeof providerHealth>;

/** One fault in `status`: what it is, what it is about, since when (revision 3). */
export const agentFault = z.object({
  kind: faultKind,
  /** The state directory, the tool (`nft`), or the interface (`enp2s0.7`). */
  subject: z.string(),
  message: z.string(),
  since: z.number().int(),
});
export type AgentFault = z.infer<typeof agentFault>;

/**
 * The router's facts in `status`: their content hash, when they were read, and the facts
 * themselves unless the controller already holds this hash (`status.params.factsHash`).
 * `facts` is checked by the receiver with `routerFacts` (model/router-facts.ts), apart from
 * the rest of the answer: facts a newer agent words differently are dropped, the status stays.
 */
export const reportedFacts = z.object({
  hash: z.string(),
  readAt: z.number().int(),
  facts: z.unknown().optional(),
});
export type ReportedFacts = z.infer<typeof reportedFacts>;

export const statusResult = z.object({
  agent: z.string(),
  protocol: z.number().int(),
  site: z.string().nullable(),
  applied: generationInfo.nullable(),
  pending: pendingInfo.nullable(),
  lastRevert: revertInfo.nullable(),
  /** Counts of what Uplink owns in the kernel now; nftRules null = no table inet uplink. */
  owned: z.object({
    rules: z.number().int(),
    routes: z.number().int(),
    nftRules: z.number().int().nullable(),
    sysctls: z.number().int(),
  }),
  /** Provider availability from the router's facts (interface exists, up, has an address). */
  facts: z.object({
    interfaces: z.number().int(),
    providers: z.array(
      z.object({
        name: z.string(),
        interface: z.string(),
        available: z.boolean(),
        reason: z.string().optional(),
        /** An IPv6 half's delegated prefixes the agent will not route, with why (D155). */
        refused: z.array(z.string()).optional(),
      }),
    ),
  }),
  /** Per-provider probe state (empty before anything is applied). */
  health: z.array(providerHealth),
  /** Null before anything is confirmed. */
  drift: driftReport.nullable(),
  now: z.number().int(),
  /** Faults of the router's environment while they last (D103, revision 3); absent when there is none. */
  faults: z.array(agentFault).optional(),
  /** What the router knows that the spec does not (revision 4, D170); absent when the kernel cannot be read. */
  routerFacts: reportedFacts.optional(),
});
export type StatusResult = z.infer<typeof statusResult>;

/** The result schema of each method. */
export const resultSchemas = {
  hello: helloResult,
  plan: planResult,
  apply: applyResult,
  confirm: confirmResult,
  revert: revertResult,
  status: statusResult,
} as const satisfies Record<Method, z.ZodType>;

/**
 * A result in the words of `revision`: below FAULTS_REVISION no `status.faults`, no revert
 * details, and `apply-failed` reported as `interrupted-apply` (the nearest reason an older
 * controller knows; its enums are strict, D91). Revision 1 controllers (before negotiation)
 * read replies strictly, so the fields are left out rather than left to be ignored.
 */
export function resultForRevision(method: Method, result: unknown, revision: number): unknown {
  if (method === 'status' && revision < FACTS_REVISION) {
    const { routerFacts: _facts, ...status } = result as StatusResult;
    result = status;
  }
  if (revision >= FAULTS_REVISION) return result;
  switch (method) {
    case 'status': {
      const { faults: _faults, ...status } = result as StatusResult;
      return {
        ...status,
        lastRevert: status.lastRevert === null ? null : legacyRevertInfo(status.lastRevert),
      };
    }
    case 'revert': {
      const reverted = result as RevertResult;
      return { ...reverted, reverted: legacyRevertInfo(reverted.reverted) };
    }
    default:
      return result;
  }
}

function legacyRevertInfo(info: RevertInfo): RevertInfo {
  const { skipped: _s, unrestored: _u, attempts: _a, nextAttemptAt: _n, ...rest } = info;
  return { ...rest, reason: info.reason === 'apply-failed' ? 'interrupted-apply' : info.reason };
}
