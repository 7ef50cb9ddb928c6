/**
 * `uplink drift`: ask each site's agent for its status (bounded concurrency, over the same
 * SSH status path as `uplink run`: run/site-transport.ts and run/query-statuses.ts), compare
 * with the state compiled from the fleet repository, and report. Exit 0 every site in sync,
 * 1 drift found, 2 some site could not be checked (unreachable, refused, broken answer).
 * With --output the report goes to FILE and a text summary to stdout (for CI logs).
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ExitCode, UsageError } from '../errors.js';
import { readFleetFiles } from '../repo/read-fleet-files.js';
import {
  buildDriftReport,
  type DriftReport,
  driftExitCode,
  renderDriftJson,
  renderDriftJunit,
  renderDriftMarkdown,
  renderDriftText,
} from '../report/index.js';
import { querySiteAnswers } from '../run/query-site-answers.js';
import { createSshSiteTransport } from '../run/site-transport.js';
import { formatDiagnostic } from '../spec/diagnostic.js';
import { loadFleet } from '../spec/load-fleet.js';
import { readKnownHosts } from '../transport/index.js';
import { findSites } from './find-sites.js';
import { readSshIdentity } from './read-ssh-identity.js';

export interface DriftOptions {
  repo: string;
  sites?: string[];
  format: 'text' | 'json' | 'junit' | 'markdown';
  output?: string;
  identity?: string;
  knownHosts?: string;
  concurrency: string;
}

const RENDER: Record<DriftOptions['format'], (report: DriftReport) => string> = {
  text: renderDriftText,
  json: renderDriftJson,
  junit: renderDriftJunit,
  markdown: renderDriftMarkdown,
};

export async function driftCommand(opts: DriftOptions): Promise<void> {
  const concurrency = Number(opts.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new UsageError(`--concurrency ${opts.concurrency}: write a whole number ≥ 1`);
  }
  const repo = resolve(opts.repo);
  const load = loadFleet(await readFleetFiles(repo));
  if (!load.fleet) {
    // Without a valid fleet there is no desired state to compare with: not a drift verdict.
    for (const d of load.diagnostics.filter((x) => x.severity === 'error'))
      process.stderr.write(`${formatDiagnostic(d)}\n`);
    process.stderr.write('uplink: the fleet is invalid; fix it before checking drift\n');
    throw new ExitCode(2);
  }
  const fleet = load.fleet;
  const sites =
    opts.sites === undefined || opts.sites.length === 0 ? fleet.sites : findSites(fleet, opts.sites);
  const privateKey = await readSshIdentity(opts.identity);
  const knownHosts = opts.knownHosts ? await readKnownHosts(opts.knownHosts) : undefined;

  const generatedAt = Date.now();
  const transport = createSshSiteTransport({
    privateKey,
    ...(knownHosts !== undefined ? { knownHosts } : {}),
    callTimeoutMs: 30_000,
    statusAttempts: 3,
  });
  const answers = await querySiteAnswers(sites, transport, concurrency);
  const report = buildDriftReport(answers, generatedAt);
  const rendered = RENDER[opts.format](report);
  if (opts.output !== undefined) {
    await writeFile(opts.output, rendered).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`${opts.output}: cannot write the report (${e.code})`);
    });
    process.stdout.write(renderDriftText(report));
  } else {
    process.stdout.write(rendered);
  }
  const unchecked = report.sites.filter((s) => s.outcome === 'error');
  if (unchecked.length > 0) {
    process.stderr.write(
      `uplink: not checked: ${unchecked.map((s) => `${s.site} (${s.error?.kind})`).join(', ')}\n`,
    );
  }
  const code = driftExitCode(report);
  if (code !== 0) throw new ExitCode(code);
}
