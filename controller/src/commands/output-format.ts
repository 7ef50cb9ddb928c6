/**
 * `-o FORMAT` / `--format FORMAT`, the same on every command: a format the command does not
 * have is a usage error that lists the ones it has; without the flag, the defaults'
 * `output` (UPLINK_OUTPUT, ~/.config/uplink/config.yaml) where the command has it, else text.
 */
import { loadCliDefaults } from '../config/cli-defaults.js';
import { UsageError } from '../errors.js';

export async function outputFormat<const F extends string>(
  flag: string | undefined,
  allowed: readonly F[],
): Promise<F> {
  if (flag !== undefined) {
    if ((allowed as readonly string[]).includes(flag)) return flag as F;
    throw new UsageError(`-o ${flag}: this command writes ${allowed.join(', ')}`);
  }
  const preferred = (await loadCliDefaults()).values.output;
  if (preferred !== undefined && (allowed as readonly string[]).includes(preferred)) return preferred as F;
  return allowed[0]!;
}
