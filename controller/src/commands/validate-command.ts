import { resolve } from 'node:path';
import { ExitCode } from '../errors.js';
import { readFleetFiles } from '../repo/read-fleet-files.js';
import { formatDiagnostic, hasErrors } from '../spec/diagnostic.js';
import { loadFleet } from '../spec/load-fleet.js';

export async function validateCommand(opts: { repo: string; format: 'text' | 'json' }): Promise<void> {
  const files = await readFleetFiles(resolve(opts.repo));
  const result = loadFleet(files);
  const valid = !hasErrors(result.diagnostics) && result.fleet !== undefined;
  if (opts.format === 'json') {
    process.stdout.write(
      `${JSON.stringify({ valid, sites: result.validSites.map((s) => s.name), diagnostics: result.diagnostics }, null, 2)}\n`,
    );
  } else {
    for (const d of result.diagnostics) process.stdout.write(`${formatDiagnostic(d)}\n`);
    const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
    const warnings = result.diagnostics.length - errors;
    process.stdout.write(
      valid
        ? `fleet valid: ${result.validSites.length} sites${warnings ? `, ${warnings} warning(s)` : ''}\n`
        : `fleet invalid: ${errors} error(s), ${warnings} warning(s)\n`,
    );
  }
  if (!valid) throw new ExitCode(1);
}
