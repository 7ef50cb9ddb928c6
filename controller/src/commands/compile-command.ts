import { resolve } from 'node:path';
import { compileSite } from '../compile/compile-site.js';
import { renderScript } from '../compile/render-script.js';
import { ExitCode, UsageError } from '../errors.js';
import { readFleetFiles } from '../repo/read-fleet-files.js';
import { unknownSiteMessage } from '../report/suggest-names.js';
import { formatDiagnostic } from '../spec/diagnostic.js';
import { loadFleet } from '../spec/load-fleet.js';

export async function compileCommand(
  siteName: string,
  opts: { repo: string; format: 'json' | 'script' },
): Promise<void> {
  const result = loadFleet(await readFleetFiles(resolve(opts.repo)));
  const site = result.validSites.find((s) => s.name === siteName);
  if (!site) {
    const own = result.diagnostics.filter(
      (d) => d.file === `sites/${siteName}.yaml` || d.message.includes(`site ${siteName}`),
    );
    if (own.length > 0) {
      for (const d of own) process.stderr.write(`${formatDiagnostic(d)}\n`);
      throw new ExitCode(1);
    }
    throw new UsageError(
      unknownSiteMessage(
        siteName,
        result.validSites.map((s) => s.name),
        opts.repo,
      ),
    );
  }
  const state = compileSite(site);
  process.stdout.write(
    opts.format === 'script' ? renderScript(state) : `${JSON.stringify(state, null, 2)}\n`,
  );
}
