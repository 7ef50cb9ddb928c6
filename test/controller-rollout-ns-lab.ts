/**
 * The fleet lab (test/lab/fleet-lab.ts) set up for the controller's end-to-end tests: all
 * five sites of fleet-repo-example as namespace routers with real sshd and the installed
 * agent daemon, the controller (dist/uplink.mjs) run in the lab's controller namespace, and
 * helpers to push commits, ask agents what they run and snapshot what Uplink owns in a
 * router's kernel.
 *
 * The source fleet is fleet-repo-example with a test fleet.yaml: one canary (lartc-split),
 * short bakes and confirm window, and the policy band placed before `suppressMain` (900), so
 * that a policy can capture the route back to the controller (with the default layout main's
 * connected management subnet always wins, so no spec can cut the path). shorewall-style's
 * explicit policy priorities, which lie in the default band, are dropped in the copy.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { parseDocument } from 'yaml';
import { buildDist, ROOT } from './build-dist.js';
import { type FleetLab, type FleetLabSite, startFleetLab } from './lab/fleet-lab.js';
import type { ExecResult } from './lab/index.js';
import { callOnSocket } from './lab/json-lines.js';

export const UPLINK = join(ROOT, 'dist/uplink.mjs');
export const CANARY = 'lartc-split';
export const SITES = ['branch-adsl-vpn', 'dmz-redundant', 'home-pppoe', 'lartc-split', 'shorewall-style'];
export const BAKE_MS = { canary: 2_000, early: 3_000 } as const;

const FLEET_YAML = `# Test fleet for the controller's namespace end-to-end tests.
defaults:
  priorities:
    policy: [100, 899]     # before suppressMain: a policy can capture the route to the controller
rollout:
  confirmWithin: 10s
  siteTimeout: 90s
  waves:
    - name: canary
      select: { sites: [${CANARY}] }
      concurrency: 1
      maxFailures: 0
      bake: ${BAKE_MS.canary / 1000}s
    - name: early
      count: 2
      concurrency: 2
      maxFailures: 0
      bake: ${BAKE_MS.early / 1000}s
    - name: rest
      concurrency: 4
      maxFailures: 0
`;

export interface RolloutLab {
  readonly lab: FleetLab;
  /** Scratch directory (configs, state dirs, logs); removed by stop(). */
  readonly dir: string;
  stop(): Promise<void>;
}

/** Starts the lab with every site of the test fleet (root, dist built). */
export async function startRolloutLab(): Promise<RolloutLab> {
  const dir = mkdtempSync(join(tmpdir(), 'uplink-ctl-ns-'));
  const source = join(dir, 'source');
  cpSync(join(ROOT, 'fleet-repo-example'), source, { recursive: true });
  writeFileSync(join(source, 'fleet.yaml'), FLEET_YAML);
  const shorewall = join(source, 'sites', 'shorewall-style.yaml');
  const doc = parseDocument(readFileSync(shorewall, 'utf8'));
  for (let i = 0; doc.hasIn(['policies', i]); i++) doc.deleteIn(['policies', i, 'priority']);
  writeFileSync(shorewall, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
  let lab: FleetLab;
  try {
    lab = await startFleetLab({ dir: join(dir, 'lab'), repo: source, sites: SITES });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    lab,
    dir,
    async stop() {
      // Keep the logs and state of a failing run for a look: UPLINK_TEST_DEBUG=1.
      if (process.env.UPLINK_TEST_DEBUG)
        cpSync(dir, `/tmp/uplink-debug-${Date.now()}`, {
          recursive: true,
          filter: (src) => !lstatSync(src).isSocket() && !lstatSync(src).isFIFO(),
        });
      try {
        await lab.stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

export interface UsedRolloutLab {
  readonly rl: RolloutLab;
  /** The controller config written for `name` (writeControllerConfig). */
  readonly config: string;
  readonly stateDir: string;
}

/**
 * A describe block's lab: before all its tests builds dist, starts the lab and writes the
 * controller config `name`; after them stops the lab. Read the fields inside the tests.
 */
export function useRolloutLab(name: string): UsedRolloutLab {
  let current: UsedRolloutLab | undefined;
  beforeAll(async () => {
    buildDist();
    const rl = await startRolloutLab();
    current = { rl, config: writeControllerConfig(rl, name), stateDir: stateDirOf(rl, name) };
  }, 240_000);
  afterAll(async () => {
    await current?.rl.stop();
  }, 60_000);
  const get = (): UsedRolloutLab => {
    if (current === undefined) throw new Error('the rollout lab is not started (use it inside a test)');
    return current;
  };
  return {
    get rl() {
      return get().rl;
    },
    get config() {
      return get().config;
    },
    get stateDir() {
      return get().stateDir;
    },
  };
}

/** Writes a controller config for the lab (YAML) and returns its path. */
export function writeControllerConfig(
  rl: RolloutLab,
  name: string,
  options: { statusPollInterval?: string } = {},
): string {
  const file = join(rl.dir, `${name}.yaml`);
  writeFileSync(
    file,
    `repo:
  url: ${rl.lab.repo.bare}
  branch: main
  pollInterval: 1s
ssh:
  identity: ${rl.lab.controllerKey}
  knownHosts: ${rl.lab.knownHosts}
  connectTimeout: 15s
concurrency: 8
http:
  listen: 127.0.0.1:0
stateDir: ${join(rl.dir, `${name}-state`)}
status:
  pollInterval: ${options.statusPollInterval ?? '2s'}
  freshFor: 1s
log:
  level: debug
`,
  );
  return file;
}

export function stateDirOf(rl: RolloutLab, name: string): string {
  return join(rl.dir, `${name}-state`);
}

/** `uplink ARGS` in the controller namespace; never throws on a non-zero exit. */
export function runUplink(rl: RolloutLab, args: readonly string[], timeoutMs = 240_000): Promise<ExecResult> {
  return rl.lab
    .run(rl.lab.controllerNs, [process.execPath, UPLINK, ...args], { allowFailure: true, timeoutMs })
    .then((r) => {
      if (process.env.UPLINK_TEST_DEBUG)
        writeFileSync(`/tmp/uplink-debug-${Date.now()}.log`, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
      return r;
    });
}

/** Starts `uplink run --config FILE` in the controller namespace (a recorded lab process; its log in the scratch dir). */
export function startDaemon(rl: RolloutLab, name: string, config: string): { pid: number; log: string } {
  const log = join(rl.dir, `${name}.log`);
  const proc = rl.lab.spawn(
    name,
    rl.lab.controllerNs,
    [process.execPath, UPLINK, 'run', '--config', config],
    log,
  );
  return { pid: proc.pid, log };
}

/** pino JSON lines of a log text (other lines skipped). */
export function logLines(text: string): Array<Record<string, unknown> & { time: number; msg: string }> {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown> & { time: number; msg: string });
}

// ---------------------------------------------------------------------------------------
// The fleet repository's working clone.

export function git(rl: RolloutLab, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd: rl.lab.repo.work,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/** Edits a YAML file of the working clone, keeping its comments. */
export function editYaml(
  rl: RolloutLab,
  file: string,
  edit: (doc: ReturnType<typeof parseDocument>) => void,
) {
  const path = join(rl.lab.repo.work, file);
  const doc = parseDocument(readFileSync(path, 'utf8'));
  edit(doc);
  writeFileSync(path, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
}

/** Appends a policy to a site's spec. */
export function addPolicy(rl: RolloutLab, site: string, policy: Record<string, unknown>): void {
  editYaml(rl, join('sites', `${site}.yaml`), (doc) => {
    doc.addIn(['policies'], doc.createNode(policy));
  });
}

/** Sets a sysctl in groups/base.yaml, which every site extends: a change to every site. */
export function setBaseSysctl(rl: RolloutLab, key: string, value: number): void {
  editYaml(rl, join('groups', 'base.yaml'), (doc) => {
    doc.setIn(['sysctls', key], value);
  });
}

/** Commits everything in the working clone, pushes to the bare repository, returns the commit. */
export function commitAndPush(rl: RolloutLab, message: string): string {
  git(rl, 'add', '-A');
  git(rl, 'commit', '-q', '-m', message);
  git(rl, 'push', '-q', 'origin', 'main');
  return git(rl, 'rev-parse', 'HEAD');
}

// ---------------------------------------------------------------------------------------
// The routers.

export interface AgentStatus {
  readonly applied: { generation: string; hash: string; at: number } | null;
  readonly pending: { generation: string; hash: string; at: number; deadline: number } | null;
  readonly lastRevert: { generation: string; reason: string; result: string } | null;
}

/** The agent's status, asked on its unix socket (not over SSH: works while the path is cut). */
export async function agentStatus(site: FleetLabSite): Promise<AgentStatus> {
  return (await callOnSocket(site.agent.socket, 'status', {}, `${site.name}: status`)) as AgentStatus;
}

export async function agentStatuses(rl: RolloutLab): Promise<Map<string, AgentStatus>> {
  const entries = await Promise.all(
    SITES.map(async (name) => [name, await agentStatus(rl.lab.site(name))] as const),
  );
  return new Map(entries);
}

/** The agent's journal (every apply, confirm and revert adds an entry). */
export function journalEntries(site: FleetLabSite): Array<{ op?: string; generation?: string }> {
  let text: string;
  try {
    text = readFileSync(join(site.agent.stateDir, 'journal.jsonl'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { op?: string; generation?: string });
}

/** `commit-apply` entries of the agent's journal for `generation` (each is one apply that reached the kernel path). */
export function journaledApplies(site: FleetLabSite, generation: string): number {
  return journalEntries(site).filter((e) => e.op === 'commit-apply' && e.generation === generation).length;
}

/** Entries in the agent's journal. */
export function journalLength(site: FleetLabSite): number {
  return journalEntries(site).length;
}

/** What Uplink owns in a router's kernel, as text: its rules, its routes, its nft table and a sysctl. */
export async function kernelSnapshot(rl: RolloutLab, site: string): Promise<string> {
  const ns = rl.lab.site(site).ns;
  const run = (argv: string[]) => rl.lab.run(ns, argv, { allowFailure: true }).then((r) => r.stdout);
  const [rules, routes, nft, sysctl] = await Promise.all([
    run(['ip', '-4', 'rule', 'show']),
    run(['ip', '-4', 'route', 'show', 'table', 'all', 'proto', '252']),
    run(['nft', 'list', 'table', 'inet', 'uplink']),
    run(['sysctl', '-n', 'net.ipv4.conf.all.log_martians']),
  ]);
  return `# rules\n${rules}# routes\n${routes}# nft\n${nft}# log_martians\n${sysctl}`;
}

export async function kernelSnapshots(rl: RolloutLab): Promise<Map<string, string>> {
  const entries = await Promise.all(SITES.map(async (s) => [s, await kernelSnapshot(rl, s)] as const));
  return new Map(entries);
}

/** Polls `check` until it returns a value other than undefined/false. */
export async function until<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Waits until the controller state in `stateDir` shows the rollout of `commit` in one of
 * `phases`; returns that state.
 */
export function untilRollout(
  stateDir: string,
  commit: string,
  phases: readonly string[],
  what: string,
  timeoutMs?: number,
): Promise<ControllerStateFile> {
  return until(
    what,
    () => {
      const s = readControllerState(stateDir);
      return s?.rollout?.plan.commit === commit && phases.includes(s.rollout.phase) ? s : undefined;
    },
    timeoutMs,
  );
}

/** The persisted controller state (controller-state.json), or undefined before the first write. */
export function readControllerState(stateDir: string): ControllerStateFile | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'controller-state.json'), 'utf8')) as ControllerStateFile;
  } catch {
    return undefined;
  }
}

export interface ControllerStateFile {
  readonly sites: Record<string, { lastApplied?: { generation: string; outcome: string } }>;
  readonly lastGoodCommit: string | null;
  readonly lastInvalidCommit: {
    commit: string;
    reason: string;
    diagnostics: Array<{ file: string; line: number; col: number; message: string }>;
  } | null;
  readonly rollout: {
    plan: { commit: string; waves: Array<{ name: string; sites: Array<{ site: string; hash: string }> }> };
    waveIndex: number;
    phase: string;
    perSite: Array<{ site: string; status: string; failure?: string; attempts: number }>;
    halt?: { wave: string; reason: string; failed: string[] };
  } | null;
}
