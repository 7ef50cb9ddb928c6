import { resolve } from 'node:path';
import { ExitCode, UsageError } from '../errors.js';
import { explainFromFiles } from '../explain/explain-from-files.js';
import { formatExplanation, formatExplanationJson } from '../explain/format-explanation.js';
import type { RawExplainOptions } from '../explain/parse-explain-request.js';
import { readFleetFiles } from '../repo/read-fleet-files.js';
import { formatDiagnostic } from '../spec/diagnostic.js';

export async function explainCommand(
  siteName: string,
  opts: RawExplainOptions & { repo: string; format: 'text' | 'json' },
): Promise<void> {
  const outcome = explainFromFiles(await readFleetFiles(resolve(opts.repo)), siteName, opts);
  switch (outcome.kind) {
    case 'usage':
      throw new UsageError(outcome.message);
    case 'invalid-site':
      for (const d of outcome.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
      throw new ExitCode(1);
    case 'explained':
      process.stdout.write(
        opts.format === 'json'
          ? formatExplanationJson(outcome.explanation)
          : formatExplanation(outcome.explanation),
      );
  }
}
