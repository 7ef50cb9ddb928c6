/**
 * Failpoints (D102): named places in the agent where a test — or someone reproducing a
 * fault on a lab router — makes an operation fail on purpose, the way the environment would:
 *
 * - `state.lock`, `state.write:FILE`, `state.fsync:FILE`, `state.rename:FILE`,
 *   `state.fsync-dir:FILE`, `state.remove:FILE`, `state.append:journal.jsonl`,
 *   `state.fsync:journal.jsonl` — each write and fsync of the state directory;
 * - `kernel.read`, `kernel.ip-batch`, `kernel.nft`, `kernel.sysctl:KEY` — each kernel step.
 *
 * Actions: an errno (`ENOSPC`, `EROFS`, `EIO`, `EACCES`) where the filesystem is touched;
 * `tool-missing` or `kernel-error` at a kernel step; `kill` (SIGKILL this process there);
 * `hang` (never return: an in-process stand-in for a kill); `pause:FILE` (wait until FILE
 * exists, so a test can delete an interface or fill a disk at exactly that moment); and, in
 * process, `call` (run a function there, then go on).
 *
 * Nothing is active unless configured: `Failpoints.none` costs one property read per point.
 * The daemon reads `UPLINK_AGENT_FAILPOINTS` (see `parseFailpoints`) and says loudly in its
 * log that failpoints are active.
 */

export type FsErrno = 'ENOSPC' | 'EROFS' | 'EIO' | 'EACCES' | 'EDQUOT';
export const FS_ERRNOS: readonly FsErrno[] = ['ENOSPC', 'EROFS', 'EIO', 'EACCES', 'EDQUOT'];

/** What a failing point does: the call site turns it into the error its operation would raise. */
export type FailureAction =
  | { readonly kind: 'errno'; readonly code: FsErrno }
  | { readonly kind: 'tool-missing' }
  | { readonly kind: 'kernel-error' };

export type FailpointAction =
  | FailureAction
  | { readonly kind: 'kill' }
  | { readonly kind: 'hang' }
  | { readonly kind: 'pause'; readonly untilFile: string }
  | { readonly kind: 'call'; readonly run: (point: string) => void | Promise<void> };

export interface FailpointRule {
  /**
   * Which hits fire: `point` is the point's name, `hit` counts every point hit so far and
   * `pointHit` the hits of this point so far (both 0-based).
   */
  readonly match: (point: string, hit: number, pointHit: number) => boolean;
  readonly action: FailpointAction;
  /** How many matching hits fire before the rule is spent (default: every one). */
  readonly times?: number;
}

export interface FailpointsOptions {
  /** Where pauses and kills are announced (the daemon's log). */
  readonly log?: (line: string) => void;
  /** Sees every point reached, in order (the fault-injection walk records the points with it). */
  readonly onHit?: (point: string, hit: number) => void;
  /** How often a pause looks for its file (default 50 ms). */
  readonly pollMs?: number;
  /** Probes the pause file (default: node:fs access); injected so this module stays small. */
  readonly exists?: (path: string) => Promise<boolean>;
}

export class Failpoints {
  /** No failpoints: every hit returns at once. */
  static readonly none = new Failpoints([]);

  readonly #rules: { rule: FailpointRule; remaining: number }[];
  readonly #options: FailpointsOptions;
  #hits = 0;
  readonly #perPoint = new Map<string, number>();

  constructor(rules: readonly FailpointRule[], options: FailpointsOptions = {}) {
    this.#rules = rules.map((rule) => ({ rule, remaining: rule.times ?? Number.POSITIVE_INFINITY }));
    this.#options = options;
  }

  get active(): boolean {
    return this.#rules.length > 0 || this.#options.onHit !== undefined;
  }

  /** Points hit so far. */
  get hits(): number {
    return this.#hits;
  }

  /**
   * The operation at `point` is about to run. Returns at once when nothing fires; a failure
   * action throws what `fail` makes of it; kill/hang/pause/call act here.
   */
  hit(point: string, fail: (action: FailureAction) => Error): Promise<void> | undefined {
    if (!this.active) return undefined;
    const hit = this.#hits++;
    const pointHit = this.#perPoint.get(point) ?? 0;
    this.#perPoint.set(point, pointHit + 1);
    this.#options.onHit?.(point, hit);
    const armed = this.#rules.find((r) => r.remaining > 0 && r.rule.match(point, hit, pointHit));
    if (armed === undefined) return undefined;
    armed.remaining--;
    return this.#act(point, armed.rule.action, fail);
  }

  async #act(point: string, action: FailpointAction, fail: (action: FailureAction) => Error): Promise<void> {
    switch (action.kind) {
      case 'errno':
      case 'tool-missing':
      case 'kernel-error':
        throw fail(action);
      case 'call':
        await action.run(point);
        return;
      case 'hang':
        await new Promise<never>(() => {});
        return;
      case 'kill':
        this.#options.log?.(`failpoint ${point}: SIGKILL`);
        process.kill(process.pid, 'SIGKILL');
        await new Promise<never>(() => {});
        return;
      case 'pause': {
        this.#options.log?.(`failpoint ${point}: paused until ${action.untilFile} exists`);
        const exists = this.#options.exists ?? defaultExists;
        while (!(await exists(action.untilFile))) {
          await new Promise((resolve) => setTimeout(resolve, this.#options.pollMs ?? 50));
        }
        this.#options.log?.(`failpoint ${point}: resumed`);
        return;
      }
    }
  }
}

async function defaultExists(path: string): Promise<boolean> {
  const { access } = await import('node:fs/promises');
  return access(path).then(
    () => true,
    () => false,
  );
}

/** An error like the one node:fs raises for `code` (same `code`, `errno`, `syscall`, `path`). */
export function fsError(code: FsErrno, syscall: string, path: string): NodeJS.ErrnoException {
  const words: Record<FsErrno, [number, string]> = {
    ENOSPC: [-28, 'no space left on device'],
    EROFS: [-30, 'read-only file system'],
    EIO: [-5, 'i/o error'],
    EACCES: [-13, 'permission denied'],
    EDQUOT: [-122, 'disk quota exceeded'],
  };
  const [errno, text] = words[code];
  return Object.assign(new Error(`${code}: ${text}, ${syscall} '${path}' (failpoint)`), {
    code,
    errno,
    syscall,
    path,
  });
}

/**
 * `UPLINK_AGENT_FAILPOINTS`: rules separated by `;`, each `POINT[@N]=ACTION`. POINT may end
 * in `*` (a prefix); `@N` fires only at the N-th hit of that point (1-based), else at every
 * hit. ACTION: ENOSPC | EROFS | EIO | EACCES | EDQUOT | tool-missing | kernel-error | kill |
 * hang | pause:FILE. Throws on anything else, naming the rule.
 */
export function parseFailpoints(text: string): FailpointRule[] {
  const rules: FailpointRule[] = [];
  for (const part of text.split(';')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new Error(`failpoint ${JSON.stringify(item)}: write POINT=ACTION`);
    const target = item.slice(0, eq).trim();
    const actionText = item.slice(eq + 1).trim();
    const at = /^(.+?)@([1-9][0-9]*)$/.exec(target);
    const name = at === null ? target : at[1]!;
    const nth = at === null ? undefined : Number(at[2]);
    const matchName = name.endsWith('*')
      ? (point: string) => point.startsWith(name.slice(0, -1))
      : (point: string) => point === name;
    const match =
      nth === undefined
        ? matchName
        : (point: string, _hit: number, pointHit: number) => matchName(point) && pointHit === nth - 1;
    rules.push({ match, action: parseAction(actionText, item) });
  }
  return rules;
}

function parseAction(text: string, rule: string): FailpointAction {
  if ((FS_ERRNOS as readonly string[]).includes(text)) return { kind: 'errno', code: text as FsErrno };
  switch (text) {
    case 'tool-missing':
    case 'kernel-error':
    case 'kill':
    case 'hang':
      return { kind: text };
  }
  if (text.startsWith('pause:') && text.length > 6) return { kind: 'pause', untilFile: text.slice(6) };
  throw new Error(
    `failpoint ${JSON.stringify(rule)}: unknown action ${JSON.stringify(text)} (${[...FS_ERRNOS, 'tool-missing', 'kernel-error', 'kill', 'hang', 'pause:FILE'].join(', ')})`,
  );
}
