/**
 * `uplink explain SITE`: where a packet would leave the site's router, offline from the
 * spec — in the working directory, or as committed at `--rev` — and the router's last
 * reported facts when there are some (`--facts FILE`, or the controller's state dir).
 */
import { ExitCode, UsageError } from '../errors.js';
import { explainFromFiles } from '../explain/explain-from-files.js';
import { formatExplanation, formatExplanationJson } from '../explain/format-explanation.js';
import type { RawExplainOptions } from '../explain/parse-explain-request.js';
import { formatDiagnostic } from '../spec/diagnostic.js';
import { readFleetSource } from './read-fleet-source.js';
import { factsStateDir, readSiteFacts } from './read-site-facts.js';

async function stateDirOption(opts: { stateDir?: string; config?: string }): Promise<{ stateDir?: string }> {
  const stateDir = await factsStateDir({
    ...(opts.stateDir === undefined ? {} : { stateDir: opts.stateDir }),
    ...(opts.config === undefined ? {} : { config: opts.config }),
  });
  return stateDir === undefined ? {} : { stateDir };
}

export async function explainCommand(
  siteName: string,
  opts: RawExplainOptions & {
    repo: string;
    rev?: string;
    format: 'text' | 'json';
    facts?: string;
    stateDir?: string;
    config?: string;
  },
): Promise<void> {
  const { files, commit } = await readFleetSource(opts.repo, opts.rev);
  const viewOptions = await readSiteFacts(siteName, {
    ...(opts.facts === undefined ? {} : { factsFile: opts.facts }),
    ...(opts.facts !== undefined ? {} : await stateDirOption(opts)),
  });
  const outcome = explainFromFiles(files, siteName, opts, viewOptions);
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
