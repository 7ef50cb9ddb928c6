/** `uplink config`: the defaults in force and where each came from (config/cli-defaults.ts). */
import {
  CLI_DEFAULT_ENV,
  type CliDefaultKey,
  cliDefaultsFile,
  loadCliDefaults,
} from '../config/cli-defaults.js';

export async function configCommand(opts: { format: 'text' | 'json' }): Promise<void> {
  const defaults = await loadCliDefaults();
  if (opts.format === 'json') {
    process.stdout.write(`${JSON.stringify(defaults, null, 2)}\n`);
    return;
  }
  const lines = [
    `defaults file: ${defaults.file ?? `${cliDefaultsFile(process.env, process.env.HOME ?? '/root')} (none)`}`,
  ];
  for (const key of Object.keys(CLI_DEFAULT_ENV) as CliDefaultKey[]) {
    const value = defaults.values[key];
    lines.push(
      `${key.padEnd(11)} ${value ?? '—'}${value !== undefined ? `  (${defaults.sources[key]})` : `  (${CLI_DEFAULT_ENV[key]} or ${key}: in the file)`}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
