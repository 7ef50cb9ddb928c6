/**
 * A DriftReport as text (terminal), JSON, JUnit XML (one test case per site: drift is a
 * <failure>, a site that could not be checked an <error>; GitHub, GitLab and Jenkins read
 * it) and Markdown (an issue or pull-request comment). Pure.
 */
import { create } from 'xmlbuilder2';
import type { SiteDrift } from './assess-site-drift.js';
import type { DriftReport } from './build-drift-report.js';
import { formatFinding } from './format-finding.js';
import { isoTime } from './iso-time.js';

function headline(report: DriftReport): string {
  const s = report.summary;
  return `${s.sites} site${s.sites === 1 ? '' : 's'}: ${s.inSync} in sync, ${s.drift} drifted, ${s.error} not checked (unreachable or failed)${s.warnings > 0 ? `, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}` : ''}`;
}

function verdict(site: SiteDrift): string {
  switch (site.outcome) {
    case 'in-sync':
      return `in sync${site.applied === null ? '' : ` (generation ${site.applied.generation})`}`;
    case 'drift':
      return `drift: ${site.findings.length} difference${site.findings.length === 1 ? '' : 's'} from git`;
    case 'error':
      return `not checked: ${site.error?.kind}: ${site.error?.message}`;
  }
}

const MARK = { 'in-sync': 'ok', drift: 'DRIFT', error: 'ERROR' } as const;

export function renderDriftText(report: DriftReport): string {
  const out = [`uplink drift at ${isoTime(report.generatedAt)}: ${headline(report)}`];
  for (const site of report.sites) {
    out.push(`${MARK[site.outcome]} ${site.site} (${site.host}): ${verdict(site)}`);
    for (const f of site.findings) out.push(`    ${formatFinding(f)}`);
    for (const w of site.warnings) out.push(`    warning: ${formatFinding(w)}`);
    for (const n of site.notes) out.push(`    note: ${n}`);
  }
  const unchecked = report.sites.filter((s) => s.outcome === 'error').map((s) => s.site);
  if (unchecked.length > 0) out.push(`not checked: ${unchecked.join(', ')}`);
  return `${out.join('\n')}\n`;
}

export function renderDriftJson(report: DriftReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** JUnit's timestamp is an xs:dateTime without a zone (Jenkins and GitLab parse it as such). */
function junitTimestamp(ms: number): string {
  return isoTime(ms).replace(/Z$/, '');
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

export function renderDriftJunit(report: DriftReport): string {
  const s = report.summary;
  const totalMs = report.sites.reduce((n, site) => n + site.durationMs, 0);
  const root = create({ version: '1.0', encoding: 'UTF-8' }).ele('testsuites', {
    name: 'uplink drift',
    tests: s.sites,
    failures: s.drift,
    errors: s.error,
    time: seconds(totalMs),
  });
  const suite = root.ele('testsuite', {
    name: 'uplink drift',
    tests: s.sites,
    failures: s.drift,
    errors: s.error,
    skipped: 0,
    timestamp: junitTimestamp(report.generatedAt),
    time: seconds(totalMs),
  });
  for (const site of report.sites) {
    const testcase = suite.ele('testcase', {
      classname: 'uplink.drift',
      name: site.site,
      time: seconds(site.durationMs),
    });
    if (site.outcome === 'drift') {
      testcase
        .ele('failure', {
          type: 'drift',
          message: `${site.site}: ${site.findings.length} difference${site.findings.length === 1 ? '' : 's'} from git`,
        })
        .txt(site.findings.map(formatFinding).join('\n'));
    } else if (site.outcome === 'error') {
      testcase
        .ele('error', { type: site.error?.kind ?? 'error', message: site.error?.message ?? 'not checked' })
        .txt(`${site.site} (${site.host}) could not be checked: ${site.error?.message ?? ''}`);
    }
    const out = [
      `host ${site.host}`,
      `desired state from git: ${site.desiredHash}`,
      `applied: ${site.applied === null ? 'nothing' : `generation ${site.applied.generation} (${site.applied.hash})`}`,
      ...(site.checkedAt === null ? [] : [`last drift check: ${isoTime(site.checkedAt)}`]),
      ...site.warnings.map((w) => `warning: ${formatFinding(w)}`),
      ...site.notes.map((n) => `note: ${n}`),
    ];
    testcase.ele('system-out').txt(out.join('\n'));
  }
  return `${root.end({ prettyPrint: true })}\n`;
}

const BADGE = { 'in-sync': '✅ in sync', drift: '⚠️ drift', error: '❌ not checked' } as const;

export function renderDriftMarkdown(report: DriftReport): string {
  const out = [
    `### Uplink drift report, ${isoTime(report.generatedAt)}`,
    '',
    `**${headline(report)}**`,
    '',
    '| site | result | details |',
    '|---|---|---|',
  ];
  for (const site of report.sites) {
    const details =
      site.outcome === 'error'
        ? escapeMarkdown(`${site.error?.kind}: ${site.error?.message}`)
        : site.outcome === 'drift'
          ? `${site.findings.length} difference${site.findings.length === 1 ? '' : 's'}`
          : escapeMarkdown(site.applied === null ? '—' : `generation ${site.applied.generation}`);
    const warn = site.warnings.length > 0 ? `, ${site.warnings.length} warning(s)` : '';
    out.push(`| ${site.site} | ${BADGE[site.outcome]} | ${details}${warn} |`);
  }
  out.push('');
  for (const site of report.sites.filter((s) => s.findings.length + s.warnings.length + s.notes.length > 0)) {
    out.push(
      `<details><summary><b>${site.site}</b> — ${escapeMarkdown(verdict(site))}</summary>`,
      '',
      '```',
      ...site.findings.map(formatFinding).map(fenceSafe),
      ...site.warnings.map((w) => fenceSafe(`warning: ${formatFinding(w)}`)),
      ...site.notes.map((n) => fenceSafe(`note: ${n}`)),
      '```',
      '',
      '</details>',
      '',
    );
  }
  return `${out.join('\n').replace(/\n+$/, '')}\n`;
}

function escapeMarkdown(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replace(/([\\`*_[\]|])/g, '\\$1');
}

function fenceSafe(line: string): string {
  return line.replaceAll('```', "'''");
}
