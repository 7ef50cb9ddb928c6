/**
 * `uplink explain SITE`: where a packet would leave the site's router, offline from the
 * spec — in the working directory, or as committed at `--rev`.
 */
import { ExitCode, UsageError } from '../errors.js';
import { explainFromFiles } from '../explain/explain-from-files.js';
import { formatExplanation, formatExplanationJson } from '../explain/format-explanation.js';
import type { RawExplainOptions } from '../explain/parse-explain-request.js';
import { formatDiagnostic } from '../spec/diagnostic.js';
import { readFleetSource } from './read-fleet-source.js';

export async function explainCommand(
  siteName: string,
  opts: RawExplainOptions & { repo: string; rev?: string; format: 'text' | 'json' },
): Promise<void> {
  const { files, commit } = await readFleetSource(opts.repo, opts.rev);
  const outcome = explainFromFiles(files, siteName, opts);
  switch (outcome.kind) {
    case 'usage':
      throw new UsageError(outcome.message);
    case 'invalid-site':
      for (const d of outcome.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
      throw new ExitCode(1);
    case 'explained': {
      const explanation =
        commit === undefined
          ? outcome.explanation
          : {
              ...outcome.explanation,
              notes: [
                ...outcome.explanation.notes,
                `the spec as committed at ${commit.slice(0, 12)} (--rev ${opts.rev})`,
              ],
            };
      process.stdout.write(
        opts.format === 'json' ? formatExplanationJson(explanation) : formatExplanation(explanation),
      );
    }
  }
}
