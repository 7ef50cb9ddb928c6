/**
 * A FleetPlan as text (terminal), Markdown (a pull-request comment: summary table first,
 * then one collapsible section per site) or JSON. Pure.
 */
import { type Diagnostic, formatDiagnostic } from '../spec/diagnostic.js';
import { type FleetPlan, type SitePlan, type SiteStatus, short } from './assemble-fleet-plan.js';
import { OBJECT_KINDS, type ObjectChange, type PlanAction } from './diff-desired-states.js';

const ACTION_WORD: Record<PlanAction, string> = { create: 'added', update: 'changed', delete: 'removed' };
const KIND_PLURAL: Record<ObjectChange['kind'], [string, string]> = {
  setting: ['setting', 'settings'],
  provider: ['provider', 'providers'],
  sysctl: ['sysctl', 'sysctls'],
  route: ['route', 'routes'],
  rule: ['rule', 'rules'],
  nft: ['nft rule', 'nft rules'],
};

/** `2 rules changed, 1 sysctl added` — by kind in plan order, then by action. */
export function summarizeChanges(changes: readonly ObjectChange[]): string {
  const parts: string[] = [];
  for (const kind of OBJECT_KINDS) {
    for (const action of ['create', 'update', 'delete'] as const) {
      const n = changes.filter((c) => c.kind === kind && c.action === action).length;
      if (n > 0) parts.push(`${n} ${KIND_PLURAL[kind][n === 1 ? 0 : 1]} ${ACTION_WORD[action]}`);
    }
  }
  return parts.length === 0 ? 'no changes' : parts.join(', ');
}

/** `+ rule policy:smtp:isp1#0: priority 10010 …`; an update is two lines, was and now. */
export function formatObjectChange(change: ObjectChange, style: 'text' | 'diff'): string[] {
  const subject = `${change.kind} ${change.key}`;
  switch (change.action) {
    case 'create':
      return [`+ ${subject}: ${change.after}`];
    case 'delete':
      return [`- ${subject}: ${change.before}`];
    case 'update':
      return style === 'diff'
        ? [`- ${subject}: ${change.before}`, `+ ${subject}: ${change.after}`]
        : [`~ ${subject}`, `    was: ${change.before}`, `    now: ${change.after}`];
  }
}

const TEXT_MARK: Record<SiteStatus, string> = {
  added: '+',
  removed: '-',
  changed: '~',
  unchanged: '=',
  invalid: '!',
};

function headline(plan: FleetPlan): string {
  const s = plan.summary;
  return `${s.changed} changed, ${s.added} added, ${s.removed} removed, ${s.unchanged} unchanged, ${s.invalid} invalid`;
}

/** `wave canary` or `wave canary, stand-in from rest`. */
function waveWords(site: SitePlan): string {
  return `wave ${site.wave}${site.standInFrom ? `, canary stand-in from ${site.standInFrom}` : ''}`;
}

/** The order the controller rolls this change out in: `canary (lartc-split) → early (2) → rest (2)`. */
function rolloutLine(plan: FleetPlan): string | undefined {
  if (plan.rollout.length === 0) return undefined;
  const waves = plan.rollout.map(
    (w) =>
      `${w.wave}${w.standInFrom ? ' [stand-in]' : ''} (${w.sites.length <= 3 ? w.sites.join(', ') : `${w.sites.length} sites`}${w.bakeMs > 0 ? `, bake ${w.bakeMs / 1000}s` : ''})`,
  );
  return `rollout: ${waves.join(' → ')}`;
}

function standInNote(plan: FleetPlan): string | undefined {
  const w = plan.rollout.find((x) => x.standInFrom !== null);
  return w
    ? `no site of the canary wave changes: ${w.sites.join(', ')} (from ${w.standInFrom}) go${w.sites.length === 1 ? 'es' : ''} first in its place, with its concurrency, failure budget and bake (D122)`
    : undefined;
}

/** `site s1: would be refused: …` for each site whose canary apply the agent's guard would refuse (D173). */
function refusals(plan: FleetPlan): string[] {
  return plan.sites.flatMap((s) =>
    s.managementPath?.checked === true && s.managementPath.message !== null
      ? [`site ${s.site}: ${s.managementPath.message}`]
      : [],
  );
}

function siteLine(site: SitePlan): string {
  const wave = site.wave === null ? '' : ` (${waveWords(site)})`;
  if (site.status === 'invalid') return `${TEXT_MARK.invalid} site ${site.site}: invalid at head`;
  return `${TEXT_MARK[site.status]} site ${site.site}: ${site.status}${wave}: ${summarizeChanges(site.changes)}`;
}

export function renderPlanText(plan: FleetPlan): string {
  const out: string[] = [
    `uplink plan ${short(plan.base.commit)}..${short(plan.head.commit)}: ${headline(plan)}`,
  ];
  for (const note of plan.notes) out.push(`note: ${note}`);
  const order = rolloutLine(plan);
  if (order) out.push(order);
  const standIn = standInNote(plan);
  if (standIn) out.push(`note: ${standIn}`);
  for (const refusal of refusals(plan)) out.push(`warning: ${refusal}`);
  for (const site of plan.sites.filter((s) => s.status !== 'unchanged')) {
    out.push('', siteLine(site));
    for (const note of site.notes) out.push(`    note: ${note}`);
    for (const d of site.diagnostics) out.push(`    ${formatDiagnostic(d)}`);
    for (const change of site.changes) out.push(...formatObjectChange(change, 'text').map((l) => `    ${l}`));
    if (site.moves.length > 0) {
      out.push('    traffic moving to another uplink:');
      for (const move of site.moves) out.push(`      ${move}`);
    }
  }
  const unchanged = plan.sites.filter((s) => s.status === 'unchanged').map((s) => s.site);
  if (unchanged.length > 0) out.push('', `= unchanged: ${unchanged.join(', ')}`);
  const errors = plan.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    out.push('', `invalid specs at head (${errors.length} error${errors.length === 1 ? '' : 's'}):`);
    for (const d of errors) out.push(`  ${formatDiagnostic(d)}`);
  }
  return `${out.join('\n')}\n`;
}

export interface MarkdownOptions {
  /**
   * Stop adding per-site sections once the comment would pass this many characters
   * (GitHub refuses comments over 65,536); the summary table always stays whole.
   */
  readonly maxChars?: number;
}

const STATUS_BADGE: Record<SiteStatus, string> = {
  added: '🆕 added',
  removed: '🗑️ removed',
  changed: '✏️ changed',
  unchanged: 'unchanged',
  invalid: '❌ invalid',
};

export function renderPlanMarkdown(plan: FleetPlan, options: MarkdownOptions = {}): string {
  const maxChars = options.maxChars ?? 60_000;
  const head: string[] = [
    `### Uplink plan: \`${short(plan.base.commit)}\` → \`${short(plan.head.commit)}\``,
    '',
    `**${headline(plan)}**`,
    '',
  ];
  for (const note of plan.notes) head.push(`> ${escapeMarkdown(note)}`, '');
  const order = rolloutLine(plan);
  if (order) head.push(`**Rollout:** ${escapeMarkdown(order.replace(/^rollout: /, ''))}`, '');
  const standIn = standInNote(plan);
  if (standIn) head.push(`> ${escapeMarkdown(standIn)}`, '');
  for (const refusal of refusals(plan)) head.push(`> ⚠️ **${escapeMarkdown(refusal)}**`, '');
  const listed = plan.sites.filter((s) => s.status !== 'unchanged');
  if (listed.length > 0) {
    head.push('| site | status | wave | changes | traffic moving |', '|---|---|---|---|---|');
    for (const s of listed) {
      head.push(
        `| ${s.site} | ${STATUS_BADGE[s.status]} | ${s.wave === null ? '—' : `${s.wave}${s.standInFrom ? ` (stand-in from ${s.standInFrom})` : ''}`} | ${s.status === 'invalid' ? 'invalid at head' : summarizeChanges(s.changes)} | ${s.moves.length === 0 ? '—' : `${s.moves.length} class${s.moves.length === 1 ? '' : 'es'}`} |`,
      );
    }
    head.push('');
  }
  const unchanged = plan.sites.filter((s) => s.status === 'unchanged').map((s) => s.site);
  if (unchanged.length > 0) head.push(`**Unchanged (${unchanged.length}):** ${unchanged.join(', ')}`, '');
  const errors = plan.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    head.push(`#### ❌ Invalid specs at head (${errors.length})`, '');
    for (const d of errors) head.push(`- ${formatDiagnosticMarkdown(d)}`);
    head.push('');
  }

  const sections: string[] = [];
  let size = head.join('\n').length;
  let omitted = 0;
  for (const site of listed.filter((s) => s.status !== 'invalid')) {
    const section = siteSection(site);
    if (size + section.length > maxChars) {
      omitted++;
      continue;
    }
    sections.push(section);
    size += section.length + 1;
  }
  const tail =
    omitted > 0
      ? [
          `_${omitted} site section${omitted === 1 ? '' : 's'} left out to fit a comment; run \`uplink plan --base ${short(plan.base.commit)} --head ${short(plan.head.commit)}\` for all of them._`,
          '',
        ]
      : [];
  return `${[...head, ...sections, ...tail].join('\n').replace(/\n+$/, '')}\n`;
}

function siteSection(site: SitePlan): string {
  const wave = site.wave === null ? '' : `, ${waveWords(site)}`;
  const lines = [
    `<details><summary><b>${site.site}</b> — ${site.status}${wave}: ${escapeHtml(summarizeChanges(site.changes))}</summary>`,
    '',
  ];
  for (const note of site.notes) lines.push(`> ${escapeMarkdown(note)}`, '');
  if (site.moves.length > 0) {
    lines.push('Traffic moving to another uplink:', '');
    for (const move of site.moves) lines.push(`- ${escapeMarkdown(move)}`);
    lines.push('');
  }
  if (site.changes.length > 0) {
    lines.push('```diff');
    for (const change of site.changes) lines.push(...formatObjectChange(change, 'diff').map(fenceSafe));
    lines.push('```', '');
  }
  lines.push('</details>', '');
  return lines.join('\n');
}

function formatDiagnosticMarkdown(d: Diagnostic): string {
  return `\`${d.file}:${d.line}:${d.col}\` ${d.severity}: ${escapeMarkdown(d.message)}`;
}

/** Text from specs and diagnostics may hold `<`, `|`, `*` or backticks: show them as written. */
export function escapeMarkdown(text: string): string {
  return escapeHtml(text).replace(/([\\`*_[\]|#~])/g, '\\$1');
}

function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** A line inside a fenced block must not close it. */
function fenceSafe(line: string): string {
  return line.replaceAll('```', "'''");
}

export function renderPlanJson(plan: FleetPlan): string {
  return `${JSON.stringify(plan, null, 2)}\n`;
}
