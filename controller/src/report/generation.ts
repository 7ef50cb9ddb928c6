/**
 * What a generation string says. Every apply names its generation, and the agent reports it
 * back, so the generation is how any controller — even one that lost its state — learns
 * where a router's state came from:
 *
 * - `<commit40>-<hash12>` — a rollout of that commit (`-rollback` appended for a rollback);
 * - `<sha12>-<hash12>` — `uplink apply` from a clean work tree on the branch, or `--rev`;
 * - `bg:<who>:<reason>:<sha12>[+dirty]-<hash12>` — a break-glass apply (`uplink apply
 *   --break-glass REASON`): who applied it and why are recorded on the router itself (D121);
 * - `<sha12>+dirty-<hash12>`, `local-<hash12>` — manual applies of older Uplink versions.
 *
 * Pure. The generation charset (letters, digits, `. _ : + -`) and length (100) are the
 * agent's (agent/src/model/protocol.ts).
 */

const MAX_GENERATION = 100;
/** The 12-hex suffix every generation ends with, after the base. */
const BASE = /^(?:([0-9a-f]{40}|[0-9a-f]{7,40})(\+dirty)?|local)-([0-9a-f]{12})(-rollback)?$/;
const BREAK_GLASS = /^bg:([A-Za-z0-9._+-]{1,32}):([A-Za-z0-9._+-]{1,60}):(.+)$/;

export interface GenerationInfo {
  /** The commit (full or abbreviated) the state was compiled from; null when not from a commit. */
  readonly commit: string | null;
  /** The state was compiled from a work tree with uncommitted changes. */
  readonly dirty: boolean;
  /** The first 12 hex digits of the content hash. */
  readonly hash12: string | null;
  /** Set for a break-glass apply: who and why, as recorded in the generation. */
  readonly override: { readonly by: string; readonly reason: string } | null;
  readonly rollback: boolean;
}

export function describeGeneration(generation: string): GenerationInfo {
  let base = generation;
  let override: GenerationInfo['override'] = null;
  const bg = BREAK_GLASS.exec(generation);
  if (bg) {
    override = { by: bg[1]!, reason: bg[2]!.replace(/[._]+/g, ' ').trim() };
    base = bg[3]!;
  }
  const m = BASE.exec(base);
  if (!m) return { commit: null, dirty: false, hash12: null, override, rollback: false };
  return {
    commit: m[1] ?? null,
    dirty: m[2] !== undefined,
    hash12: m[3]!,
    override,
    rollback: m[4] !== undefined,
  };
}

/** A generation as people read it: the commit's first 8 digits and the hash's first 6. */
export function shortGeneration(generation: string): string {
  const g = describeGeneration(generation);
  if (g.hash12 === null) return generation.length > 24 ? `${generation.slice(0, 23)}…` : generation;
  const commit = g.commit === null ? 'local' : `${g.commit.slice(0, 8)}${g.dirty ? '+dirty' : ''}`;
  return `${g.override ? 'override ' : ''}${commit}-${g.hash12.slice(0, 6)}${g.rollback ? ' (rollback)' : ''}`;
}

/**
 * The generation of a break-glass apply of `base` (`<sha12>[+dirty]-<hash12>`), recording
 * `by` and `reason` in the characters a generation may hold: other characters become `.`,
 * and the reason is cut to what fits. Returns the reason as recorded, for the operator.
 */
export function breakGlassGeneration(
  by: string,
  reason: string,
  base: string,
): { generation: string; recordedReason: string } {
  const who = (by.replace(/[^A-Za-z0-9._+-]+/g, '.').replace(/^\.+|\.+$/g, '') || 'unknown').slice(0, 32);
  const room = Math.min(60, MAX_GENERATION - `bg:${who}::${base}`.length);
  const words = reason
    .trim()
    .replace(/[^A-Za-z0-9+-]+/g, '.')
    .replace(/^\.+|\.+$/g, '');
  const slug = (words || 'no.reason').slice(0, Math.max(1, room)).replace(/\.+$/, '');
  return { generation: `bg:${who}:${slug}:${base}`, recordedReason: slug.replace(/\./g, ' ') };
}
