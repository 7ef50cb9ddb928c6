/**
 * The controller a command talks to (status, suspend, resume, retry): its state dir, from
 * `--state-dir`, else `--config`'s stateDir, else the defaults (stateDir, controller).
 */
import { resolve } from 'node:path';
import { loadCliDefaults } from '../config/cli-defaults.js';
import { type ControllerConfig, loadControllerConfig } from '../config/index.js';
import { UsageError } from '../errors.js';

export interface ControllerDirOptions {
  readonly config?: string;
  readonly stateDir?: string;
}

export async function controllerStateDir(
  command: string,
  opts: ControllerDirOptions,
): Promise<{ stateDir: string; config?: ControllerConfig }> {
  if (opts.stateDir) return { stateDir: resolve(opts.stateDir) };
  if (opts.config) {
    const config = await loadControllerConfig(opts.config);
    return { stateDir: config.stateDir, config };
  }
  const defaults = await loadCliDefaults();
  if (defaults.values.stateDir) return { stateDir: defaults.values.stateDir };
  if (defaults.values.controller) {
    const config = await loadControllerConfig(defaults.values.controller);
    return { stateDir: config.stateDir, config };
  }
  throw new UsageError(
    `${command}: pass --config FILE or --state-dir DIR, or name the controller once in ~/.config/uplink/config.yaml (controller: FILE) or UPLINK_CONTROLLER_CONFIG`,
  );
}
