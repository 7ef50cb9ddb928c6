/**
 * The faults of the router's environment the daemon knows about right now (D103), for
 * `status.faults`: a state directory that is read-only, full or not writable, a tool that
 * is not installed, an interface of the applied state that does not exist. Each is logged
 * once when it appears or changes and once when it is gone — never once per poll.
 *
 * Faults come from two sides: errors seen anywhere in the daemon (`noteError`, and every
 * state write through `noteWrite`), and `refresh`, which status runs: it checks the state
 * directory (writable, free space; while a write fault stands, a real probe write), the
 * tools on PATH, and the applied state's interfaces, and clears what is fixed.
 */
import { constants } from 'node:fs';
import { access, statfs } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { WriteOutcome } from '../engine/state-store.js';
import {
  errnoCode,
  InterfaceMissingError,
  StateDirError,
  stateDirFaultWords,
  TOOL_PACKAGES,
  ToolMissingError,
} from '../errors.js';
import type { DesiredState } from '../model/desired-state.js';
import type { Facts } from '../model/kernel-state.js';
import type { AgentFault, FaultKind } from '../model/protocol.js';

/** Less free space than this on the state directory's filesystem counts as full. */
export const MIN_FREE_BYTES = 16 * 1024;

/** Tools every apply needs; the others only with probes (ping, socat) or failover (conntrack). */
const REQUIRED_TOOLS = ['ip', 'nft'] as const;

export interface AgentFaultsOptions {
  readonly stateDir: string;
  readonly now: () => number;
  readonly log: (line: string) => void;
  /** Where tools are looked up (default $PATH); null: not at all (a simulated router). */
  readonly path?: string | null | undefined;
  /** A real write of about `bytes` to the state directory (through the state store, so failpoints apply). */
  readonly probeWrite: (bytes: number) => Promise<void>;
}

export class AgentFaults {
  readonly #options: AgentFaultsOptions;
  readonly #faults = new Map<string, AgentFault>();
  /** The largest write a full disk refused: a smaller one that works does not prove it has room again. */
  #fullNeeds = 0;

  constructor(options: AgentFaultsOptions) {
    this.#options = options;
  }

  /** The current faults, oldest first. */
  list(): AgentFault[] {
    return [...this.#faults.values()].sort((a, b) => a.since - b.since || a.kind.localeCompare(b.kind));
  }

  has(kind: FaultKind, subject?: string): boolean {
    return [...this.#faults.values()].some(
      (f) => f.kind === kind && (subject === undefined || f.subject === subject),
    );
  }

  /** The fault is present; logged when new or when its message changed. */
  raise(kind: FaultKind, subject: string, message: string): void {
    const key = `${kind}\u0000${subject}`;
    const existing = this.#faults.get(key);
    if (existing?.message === message) return;
    if (kind.startsWith('state-dir-')) {
      // One state directory, one condition: a full disk that became read-only replaces it.
      for (const other of this.#faults.values())
        if (other.kind.startsWith('state-dir-') && other.kind !== kind) this.#drop(other, false);
    }
    this.#faults.set(key, { kind, subject, message, since: existing?.since ?? this.#options.now() });
    this.#options.log(`fault: ${message}`);
  }

  clear(kind: FaultKind, subject: string): void {
    const fault = this.#faults.get(`${kind}\u0000${subject}`);
    if (fault !== undefined) this.#drop(fault, true);
  }

  /** An error seen anywhere: the faults among them are recorded (anything else is not a fault). */
  noteError(error: unknown): void {
    if (error instanceof StateDirError) {
      this.raise(`state-dir-${error.fault}`, this.#options.stateDir, error.message);
    } else if (error instanceof ToolMissingError) {
      this.raise('tool-missing', error.tool, toolMissingWords(error.tool));
    } else if (error instanceof InterfaceMissingError) {
      for (const name of error.interfaces) {
        this.raise('interface-missing', name, `interface ${name} vanished during an apply: ${error.detail}`);
      }
    }
  }

  /**
   * Every state write: a failure is the directory's fault; a success clears it — a full
   * disk only by a write as large as the one it refused (a nearly full disk takes a journal
   * line and refuses applied.json).
   */
  noteWrite(outcome: WriteOutcome): void {
    if (!outcome.ok) {
      if (outcome.error instanceof StateDirError && outcome.error.fault === 'full') {
        this.#fullNeeds = Math.max(this.#fullNeeds, outcome.bytes);
      }
      this.noteError(outcome.error);
    } else if (!this.has('state-dir-full') || outcome.bytes >= this.#fullNeeds) this.#clearStateDir();
  }

  /**
   * Re-checks what can be checked now: the state directory, the tools (those every apply
   * needs, those `desired` needs, and those that were missing), the interfaces of `desired`
   * in `facts` (when the facts could be read).
   */
  async refresh(desired: DesiredState | undefined, facts: Facts | undefined): Promise<void> {
    await this.#refreshStateDir();
    await this.#refreshTools(desired);
    if (desired !== undefined && facts !== undefined) this.#refreshInterfaces(desired, facts);
  }

  async #refreshStateDir(): Promise<void> {
    const dir = this.#options.stateDir;
    const checked = await checkStateDir(dir);
    if (checked !== undefined) {
      // What a failed write said is more precise than the check: keep it (and its one log line).
      if (!this.has(`state-dir-${checked.fault}`))
        this.raise(`state-dir-${checked.fault}`, dir, checked.message);
      return;
    }
    if (![...this.#faults.values()].some((f) => f.kind.startsWith('state-dir-'))) return;
    // The cheap checks pass, but a write failed (EIO, or a disk just freed): try a real one.
    // Its outcome reaches noteWrite through the state store, which clears or raises the fault.
    await this.#options.probeWrite(this.#fullNeeds).catch(() => {});
  }

  async #refreshTools(desired: DesiredState | undefined): Promise<void> {
    if (this.#options.path === null) return;
    const wanted = new Set<string>([...REQUIRED_TOOLS, ...toolsFor(desired)]);
    for (const fault of this.#faults.values()) if (fault.kind === 'tool-missing') wanted.add(fault.subject);
    const path = this.#options.path ?? process.env.PATH ?? '';
    for (const tool of wanted) {
      if (await findOnPath(tool, path)) this.clear('tool-missing', tool);
      else this.raise('tool-missing', tool, toolMissingWords(tool));
    }
  }

  #refreshInterfaces(desired: DesiredState, facts: Facts): void {
    const providers = new Map(desired.providers.map((p) => [p.interface, p.name]));
    for (const [name, provider] of providers) {
      if (facts.interfaces[name]?.exists === true) this.clear('interface-missing', name);
      else if (!this.has('interface-missing', name)) {
        this.raise(
          'interface-missing',
          name,
          `interface ${name} of provider ${provider} does not exist: its routes and sysctls are not in the kernel until it returns`,
        );
      }
    }
    // A vanished interface that is back, or no longer any provider's, is no fault any more.
    for (const fault of [...this.#faults.values()]) {
      if (
        fault.kind === 'interface-missing' &&
        (!providers.has(fault.subject) || facts.interfaces[fault.subject]?.exists)
      ) {
        this.#drop(fault, true);
      }
    }
  }

  #clearStateDir(): void {
    this.#fullNeeds = 0;
    for (const fault of [...this.#faults.values()])
      if (fault.kind.startsWith('state-dir-')) this.#drop(fault, true);
  }

  #drop(fault: AgentFault, log: boolean): void {
    this.#faults.delete(`${fault.kind}\u0000${fault.subject}`);
    if (log) this.#options.log(`fault gone: ${fault.kind} ${fault.subject}`);
  }
}

/** One wording per tool, whoever noticed (a spawn, the PATH check): one log line per fault. */
function toolMissingWords(tool: string): string {
  const pkg = TOOL_PACKAGES[tool];
  return `${tool} is not installed or not executable on the agent's PATH${pkg ? `: install the Debian package ${pkg}` : ''}`;
}

/** The programs a desired state makes the daemon run besides ip and nft. */
function toolsFor(desired: DesiredState | undefined): string[] {
  if (desired === undefined) return [];
  const probing = desired.providers.filter((p) => p.health.enabled);
  const tools = new Set<string>();
  if (probing.some((p) => p.health.method === 'icmp')) tools.add('ping');
  if (probing.some((p) => p.health.method === 'tcp')) tools.add('socat');
  if (probing.length > 0) tools.add('conntrack');
  return [...tools];
}

/** Cheap checks of a state directory: read-only, not writable, or (nearly) no space left. */
export async function checkStateDir(
  dir: string,
): Promise<{ fault: 'read-only' | 'full' | 'unwritable'; message: string } | undefined> {
  try {
    await access(dir, constants.W_OK);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return undefined; // created on the first write
    const fault = code === 'EROFS' ? 'read-only' : 'unwritable';
    return { fault, message: `${stateDirFaultWords(fault, dir)} (${code ?? 'error'} checking access)` };
  }
  try {
    const stats = await statfs(dir);
    const free = Number(stats.bavail) * Number(stats.bsize);
    if (free < MIN_FREE_BYTES) {
      return {
        fault: 'full',
        message: `${stateDirFaultWords('full', dir)} (${free} bytes free): free space on its filesystem`,
      };
    }
  } catch {
    // statfs unavailable: the writes themselves will say.
  }
  return undefined;
}

async function findOnPath(tool: string, path: string): Promise<boolean> {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    try {
      await access(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}
