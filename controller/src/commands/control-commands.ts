/**
 * `uplink suspend [SITE...] --reason TEXT`, `uplink resume [SITE...]`, `uplink retry`: the
 * operator's requests to the controller, written into its state dir (state/control-file.ts,
 * D126). The daemon picks them up within a second; `uplink rollout` on the same state dir
 * honours a suspension too.
 */
import { existsSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { STATUS_FILE } from '../run/controller-daemon.js';
import { readControl, requestRetry, resume, suspend, writeControl } from '../state/control-file.js';
import { CONTROLLER_STATE_FILE } from '../state/index.js';
import { controllerStateDir } from './controller-dir.js';

interface ControlOptions {
  readonly config?: string;
  readonly stateDir?: string;
}

/** Who is asking: `user@host` (`UPLINK_ACTOR` overrides it, e.g. in CI). */
export function actor(): string {
  if (process.env.UPLINK_ACTOR) return process.env.UPLINK_ACTOR;
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (a container): keep "unknown"
  }
  return `${user}@${hostname()}`;
}

async function stateDirOf(command: string, opts: ControlOptions): Promise<string> {
  const { stateDir } = await controllerStateDir(command, opts);
  if (!existsSync(join(stateDir, CONTROLLER_STATE_FILE)) && !existsSync(join(stateDir, STATUS_FILE)))
    throw new UsageError(
      `${stateDir}: no controller state here (controller-state.json); is this the controller's state dir?`,
    );
  return stateDir;
}

export async function suspendCommand(
  sites: string[],
  opts: ControlOptions & { reason: string },
): Promise<void> {
  if (opts.reason.trim() === '') throw new UsageError('suspend: --reason must say why');
  const stateDir = await stateDirOf('suspend', opts);
  const who = { by: actor(), reason: opts.reason.trim(), at: Date.now() };
  await writeControl(stateDir, suspend(await readControl(stateDir), who, sites));
  process.stdout.write(
    sites.length === 0
      ? `suspended: rollouts and reconciliation of the fleet (by ${who.by}); a running rollout stops at its next wave boundary; \`uplink resume\` lifts it\n`
      : `suspended: ${sites.join(', ')} (by ${who.by}): left out of rollouts and reconciliation until \`uplink resume ${sites.join(' ')}\`\n`,
  );
}

export async function resumeCommand(sites: string[], opts: ControlOptions): Promise<void> {
  const stateDir = await stateDirOf('resume', opts);
  const before = await readControl(stateDir);
  const unknown = sites.filter((s) => before.sites[s] === undefined);
  if (unknown.length > 0 && !before.fleet)
    throw new UsageError(
      `resume: ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not suspended${Object.keys(before.sites).length > 0 ? `; suspended: ${Object.keys(before.sites).join(', ')}` : ''}`,
    );
  await writeControl(stateDir, resume(before, sites));
  process.stdout.write(
    sites.length === 0
      ? 'resumed: rollouts and reconciliation run again (a suspended rollout continues with the sites still behind)\n'
      : `resumed: ${sites.join(', ')}\n`,
  );
}

export async function retryCommand(opts: ControlOptions): Promise<void> {
  const stateDir = await stateDirOf('retry', opts);
  if ((await readControl(stateDir)).fleet)
    throw new UsageError('retry: rollouts are suspended; `uplink resume` first');
  await requestRetry(stateDir, { by: actor(), at: Date.now() });
  process.stdout.write(
    'retry requested: the controller rolls the commit in force out again to the sites that do not run it (see `uplink status`)\n',
  );
}
