/**
 * The controller's read-only status pages, rendered on the server (D128): `/` (the fleet)
 * and `/sites/NAME` (one site: providers, drift in full, its timeline). The first view is
 * complete HTML — it needs no script and no second request — and a small inline script
 * refreshes it every 2 s by fetching the same page's `<main>` again (`?fragment=main`).
 *
 * Every value from the status document goes through `esc` (site names, labels, errors,
 * reasons and commit messages come from git and routers), so nothing is ever parsed as
 * markup; the script only swaps in what this file rendered. Pure.
 */

import { shortGeneration } from '../report/generation.js';
import { isoTime } from '../report/iso-time.js';
import type { ApiEvent, ApiSite, ApiSiteDetail, ApiStatus, ApiTimelineEntry } from './api-status.js';

const STATE_CLASS: Record<string, string> = {
  'in-sync': 'ok',
  'rolling-out': 'warn',
  'out-of-date': 'warn',
  overridden: 'warn',
  degraded: 'bad',
  drifted: 'warn',
  failed: 'bad',
  unreachable: 'bad',
  unknown: 'muted',
  up: 'ok',
  down: 'bad',
  confirmed: 'ok',
  pending: 'warn',
  reverted: 'bad',
  applying: 'warn',
  'rolled-back': 'bad',
  waiting: 'muted',
  running: 'warn',
  baking: 'warn',
  passed: 'ok',
  halted: 'bad',
  skipped: 'muted',
  done: 'ok',
  superseded: 'muted',
  suspended: 'warn',
  info: 'muted',
  warn: 'warn',
  error: 'bad',
};

/** Text for HTML content and attribute values. */
export function esc(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const badge = (word: string) => `<span class="badge ${STATE_CLASS[word] ?? 'muted'}">${esc(word)}</span>`;
const short = (c: string | null | undefined) => (c ? c.slice(0, 12) : '—');
const time = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? '—' : isoTime(ms).replace('T', ' ');

function ago(now: number, t: number | null | undefined): string {
  if (t === null || t === undefined) return 'never';
  const s = Math.max(0, Math.round((now - t) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function generation(g: string | null | undefined): string {
  return g ? `<code title="${esc(g)}">${esc(shortGeneration(g))}</code>` : '<span class="muted">—</span>';
}

const STYLE = `
  :root { --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #57606a; --line: #d0d7de; }
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
  header { background: #24292f; color: #fff; padding: 10px 20px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; } header a { color: #fff; text-decoration: none; }
  header .meta { color: #d0d7de; font-size: 12px; }
  main { padding: 12px 20px 40px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 12px 0; padding: 10px 14px; }
  h2 { font-size: 15px; margin: 2px 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
  th { font-size: 12px; color: var(--muted); font-weight: 600; }
  code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
  .cards { display: flex; gap: 10px; flex-wrap: wrap; }
  .card { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; min-width: 90px; }
  .card b { display: block; font-size: 20px; }
  .badge { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 12px; border: 1px solid currentColor; white-space: nowrap; }
  .ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); } .muted { color: var(--muted); }
  .label { display: inline-block; background: #ddf4ff; color: #0969da; border-radius: 4px; padding: 0 5px; margin: 1px 2px; font-size: 12px; }
  .prov { display: inline-block; margin-right: 10px; white-space: nowrap; }
  .waves { display: flex; gap: 10px; flex-wrap: wrap; }
  .wave { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; min-width: 160px; }
  .wave h3 { font-size: 13px; margin: 0 0 4px; }
  .attention { border-color: var(--bad); } .attention li { color: var(--bad); }
  .suspended { border-color: var(--warn); color: var(--warn); font-weight: 600; }
  .events td:first-child, .timeline td:first-child { white-space: nowrap; }
  #error { display: none; }
`;

const SCRIPT = `
'use strict';
(function () {
  var fragment = location.pathname + '?fragment=main';
  function refresh() {
    fetch(fragment, { cache: 'no-store' })
      .then(function (res) { if (!res.ok) throw new Error(location.pathname + ' answered ' + res.status); return res.text(); })
      .then(function (html) {
        document.querySelector('main').innerHTML = html;
        var stamp = document.getElementById('stamp');
        if (stamp) document.body.setAttribute('data-updated', stamp.getAttribute('data-now'));
        document.getElementById('error').style.display = 'none';
      })
      .catch(function (e) {
        var box = document.getElementById('error');
        box.textContent = 'cannot refresh: ' + e.message + ' (showing the last view)';
        box.style.display = 'block';
      })
      .then(function () { setTimeout(refresh, 2000); });
  }
  setTimeout(refresh, 2000);
})();
`;

function page(title: string, now: number, header: string, main: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style></head>
<body data-updated="${now}">
<header>${header}</header>
<section id="error" class="bad"></section>
<main>${main}</main>
<script>${SCRIPT}</script></body></html>
`;
}

function headerOf(s: { now: number; controller?: ApiStatus['controller'] }): string {
  const c = s.controller;
  const meta = c
    ? `controller ${esc(c.version)} · ${esc(c.repo ?? 'no repository')}${c.branch ? ` (${esc(c.branch)})` : ''} · fetched ${esc(ago(s.now, c.lastFetchAt))}${c.lastFetchError ? ` — fetch failed: ${esc(c.lastFetchError)}` : ''}`
    : '';
  return `<h1><a href="/">Uplink</a></h1><span class="meta" id="meta">${meta}</span>`;
}

/** The fleet page (`/`); with `fragment`, only what goes inside `<main>`. */
export function renderFleetPage(s: ApiStatus, fragment = false): string {
  const main = [
    `<span id="stamp" data-now="${s.now}" hidden></span>`,
    s.suspended
      ? `<section class="suspended" id="suspended">Rollouts and reconciliation are suspended by ${esc(s.suspended.by)} since ${esc(time(s.suspended.at))}: ${esc(s.suspended.reason)}</section>`
      : '',
    s.attention.length > 0
      ? `<section class="attention" id="attention"><h2>Needs attention (${s.attention.length})</h2><ul>${s.attention
          .slice(0, 50)
          .map((a) => `<li>${esc(a)}</li>`)
          .join(
            '',
          )}${s.attention.length > 50 ? `<li>… ${s.attention.length - 50} more</li>` : ''}</ul></section>`
      : '',
    fleetSection(s),
    `<section><h2>Rollout</h2><div id="rollout">${rolloutSection(s)}</div></section>`,
    sitesSection(s),
    `<section><h2>Recent events</h2><table class="events" id="events"><tbody>${eventRows(s.events.slice(-30).reverse())}</tbody></table></section>`,
    `<p class="muted">updated ${esc(time(s.now))} UTC · <a href="/api/status">/api/status</a> · <a href="/metrics">/metrics</a></p>`,
  ].join('\n');
  return fragment ? main : page('Uplink — fleet status', s.now, headerOf(s), main);
}

function fleetSection(s: ApiStatus): string {
  const cards = [`<div class="card"><b>${s.summary.sites}</b>sites</div>`];
  for (const [state, n] of Object.entries(s.summary.byState))
    if (n > 0)
      cards.push(
        `<div class="card ${STATE_CLASS[state] ?? ''}" data-state="${esc(state)}"><b>${n}</b>${esc(state)}</div>`,
      );
  const target = s.target
    ? `target <code id="target">${esc(short(s.target.commit))}</code>${s.target.since ? ` since ${esc(time(s.target.since))}` : ''}`
    : 'no commit has validated yet';
  const running = s.running
    .map((r) => {
      const label = /^[0-9a-f]{7,}$/.test(r.commit) ? `<code>${esc(short(r.commit))}</code>` : esc(r.commit);
      return `${label} on ${r.sites.length} site${r.sites.length === 1 ? '' : 's'}`;
    })
    .join('; ');
  const refused = s.lastInvalidCommit
    ? `<div class="bad" id="refused">refused <code>${esc(short(s.lastInvalidCommit.commit))}</code> (${esc(s.lastInvalidCommit.reason)}): ${esc(s.lastInvalidCommit.message)}${s.lastInvalidCommit.diagnostics.map((d) => `<div class="mono">${esc(d)}</div>`).join('')}</div>`
    : '';
  return `<section><h2>Fleet</h2><div class="cards" id="summary">${cards.join('')}</div>
<div id="commits" class="muted">${target}${running ? ` · routers run ${running}` : ''}${s.reconcile ? ` · reconcile: ${esc(s.reconcile)}` : ''}</div>${refused}</section>`;
}

function rolloutSection(s: ApiStatus): string {
  const r = s.rollout;
  if (!r) return '<span class="muted">no rollout yet</span>';
  const p = r.progress;
  const parts = [
    `<div>commit <code>${esc(short(r.commit))}</code> ${badge(r.phase)}${r.trigger !== 'commit' ? ` <span class="muted">(${esc(r.trigger)})</span>` : ''} ${p.confirmed}/${p.planned} confirmed, ${p.failed} failed, ${p.inFlight} in flight, ${r.unchanged} unchanged${r.suspended.length ? `, ${r.suspended.length} suspended` : ''}</div>`,
  ];
  if (r.halt)
    parts.push(
      `<div class="bad">halted in wave ${esc(r.halt.wave)}: ${esc(r.halt.reason)}${r.halt.failed.length ? ` (${esc(r.halt.failed.join(', '))})` : ''}</div>`,
    );
  if (r.supersededBy)
    parts.push(`<div class="muted">superseded by <code>${esc(short(r.supersededBy))}</code></div>`);
  const waves = r.waves.map((w) => {
    const extra = w.bakeUntil
      ? ` — bake ends in ${Math.max(0, Math.round((w.bakeUntil - s.now) / 1000))}s`
      : '';
    const standIn = w.standInFrom
      ? `<div class="muted">canary stand-in: the first changed site(s) of ${esc(w.standInFrom)}</div>`
      : '';
    return `<div class="wave" data-wave="${esc(w.name)}"><h3>${esc(w.name)} ${badge(w.state)}</h3>${standIn}<div class="muted">concurrency ${w.concurrency}, max failures ${w.maxFailures}, bake ${Math.round(w.bakeMs / 1000)}s${extra}</div><div>${w.sites
      .map(
        (x) =>
          `<div>${esc(x.site)} ${badge(x.status)}${x.error ? ` <span class="bad">${esc(x.error)}</span>` : ''}</div>`,
      )
      .join('')}</div></div>`;
  });
  parts.push(`<div class="waves">${waves.join('')}</div>`);
  return parts.join('');
}

function providerSpans(site: ApiSite): string {
  if (site.health.length === 0) return '<span class="muted">—</span>';
  return site.health
    .map((h) => {
      const detail = `${h.latencyMs === null ? '' : `${h.latencyMs.toFixed(1)} ms, `}${Math.round(h.loss * 100)}% loss`;
      return `<span class="prov" data-provider="${esc(h.name)}" data-state="${esc(h.state)}" title="${esc(h.reason ?? '')}">${esc(h.name)} ${badge(h.state)} <span class="muted">${esc(detail)}</span>${h.unavailable ? `<div class="bad">unavailable: ${esc(h.unavailable)}</div>` : ''}${h.probeError ? `<div class="bad">probes cannot run: ${esc(h.probeError)}</div>` : ''}</span>`;
    })
    .join('');
}

/** Faults of the router's environment (D103), each named as what it is. */
function faultLines(site: ApiSite): string {
  return site.faults
    .map((f) => `<div class="bad" data-fault="${esc(f.kind)}">${esc(f.kind)}: ${esc(f.message)}</div>`)
    .join('');
}

function sitesSection(s: ApiStatus): string {
  const rows = s.sites.map((site) => {
    const labels = Object.keys(site.labels)
      .sort()
      .map((k) => `<span class="label">${esc(`${k}=${site.labels[k]}`)}</span>`)
      .join('');
    const first = site.conditions[0];
    const why =
      site.state !== 'in-sync' && first
        ? `<div class="${STATE_CLASS[site.state] ?? 'muted'}">${esc(first.message)}</div>`
        : '';
    const more =
      site.conditions.length > 1
        ? `<div class="muted">also ${esc(
            site.conditions
              .slice(1)
              .map((c) => c.state)
              .join(', '),
          )}</div>`
        : '';
    const pending = site.pending
      ? `<span class="warn">${generation(site.pending.generation)} reverts in ${Math.max(0, Math.round((site.pending.deadline - s.now) / 1000))}s unless confirmed</span>`
      : '';
    const drift = !site.drift
      ? '<span class="muted">—</span>'
      : site.drift.items.length === 0
        ? '<span class="ok">none</span>'
        : `<span class="warn">${site.drift.items.length} item${site.drift.items.length === 1 ? '' : 's'} (${esc(site.drift.policy)})</span>`;
    const faults = faultLines(site);
    return `<tr data-site="${esc(site.name)}"><td><a href="/sites/${encodeURIComponent(site.name)}"><b>${esc(site.name)}</b></a></td><td>${labels}</td><td>${badge(site.state)}${site.suspended ? ` ${badge('suspended')}` : ''}${why}${more}${faults}</td><td>${esc(site.wave ?? '—')}</td><td>${generation(site.applied?.generation)}</td><td>${pending}</td><td>${drift}</td><td>${providerSpans(site)}</td><td class="muted">${esc(ago(s.now, site.lastSeen))}</td></tr>`;
  });
  return `<section><h2>Sites</h2><table id="sites"><thead><tr><th>site</th><th>labels</th><th>state</th><th>wave</th><th>runs</th><th>pending</th><th>drift</th><th>providers (latency, loss)</th><th>last seen</th></tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

function eventRows(events: readonly (ApiEvent | ApiTimelineEntry)[]): string {
  return events
    .map((e) => {
      const where = 'site' in e ? [e.site, 'wave' in e ? e.wave : undefined].filter(Boolean).join(' / ') : '';
      return `<tr data-kind="${esc(e.kind)}"><td class="muted">${esc(time(e.at))}</td><td>${badge(e.level)}</td><td><code>${esc(e.kind)}</code></td><td>${esc(where)}</td><td>${esc(e.message)}</td></tr>`;
    })
    .join('');
}

/** One site's page (`/sites/NAME`); with `fragment`, only what goes inside `<main>`. */
export function renderSitePage(
  d: ApiSiteDetail,
  controller: ApiStatus['controller'] | undefined,
  fragment = false,
): string {
  const s = d.site;
  const conditions = s.conditions
    .map((c) => `<li data-condition="${esc(c.state)}">${badge(c.state)} ${esc(c.message)}</li>`)
    .join('');
  const facts = [
    ['target', d.target ? `<code>${esc(short(d.target.commit))}</code>` : 'none'],
    [
      'runs',
      s.applied
        ? `${generation(s.applied.generation)} <span class="muted">applied ${esc(time(s.applied.at))}</span>`
        : 'nothing applied',
    ],
    [
      'pending',
      s.pending
        ? `${generation(s.pending.generation)} reverts at ${esc(time(s.pending.deadline))} unless confirmed`
        : '—',
    ],
    ['override', s.override ? `by ${esc(s.override.by)}: ${esc(s.override.reason)}` : '—'],
    [
      'suspended',
      s.suspended
        ? `by ${esc(s.suspended.by)} since ${esc(time(s.suspended.at))}: ${esc(s.suspended.reason)}`
        : '—',
    ],
    [
      'reconcile',
      s.reconcile
        ? `${esc(s.reconcile.note)}${s.reconcile.nextAt ? ` (next ${esc(time(s.reconcile.nextAt))})` : ''}`
        : '—',
    ],
    [
      'last attempt',
      s.lastAttempt
        ? `${badge(s.lastAttempt.outcome)} ${esc(time(s.lastAttempt.at))} <code>${esc(short(s.lastAttempt.commit))}</code>`
        : '—',
    ],
    ['wave', esc(s.wave ?? '—')],
    [
      'labels',
      Object.entries(s.labels)
        .map(([k, v]) => `<span class="label">${esc(`${k}=${v}`)}</span>`)
        .join('') || '—',
    ],
    ['last seen', esc(ago(d.now, s.lastSeen))],
    [
      'router facts',
      s.facts === null
        ? '<span class="muted">none reported: explain and plan use the spec\'s stand-ins</span>'
        : `read ${esc(ago(d.now, s.facts.readAt))} <code>${esc(s.facts.hash.slice(0, 12))}</code>`,
    ],
  ]
    .map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`)
    .join('');
  const providers = s.health
    .map(
      (h) =>
        `<tr data-provider="${esc(h.name)}" data-state="${esc(h.state)}"><td><b>${esc(h.name)}</b></td><td>${badge(h.state)}</td><td>${esc(time(h.since))}</td><td>${h.latencyMs === null ? '—' : `${esc(h.latencyMs.toFixed(1))} ms`}</td><td>${Math.round(h.loss * 100)}%</td><td>${esc(h.reason ?? '')}${h.unavailable ? `<div class="bad">unavailable: ${esc(h.unavailable)}</div>` : ''}${h.probeError ? `<div class="bad">probes cannot run: ${esc(h.probeError)}</div>` : ''}</td></tr>`,
    )
    .join('');
  const drift = s.drift?.items ?? [];
  const driftRows = drift
    .map(
      (i) =>
        `<tr data-drift="${esc(i.kind)}"><td>${badge(i.kind)}</td><td><code>${esc(i.object)}</code></td><td><code>${esc(i.expected ?? '—')}</code></td><td><code>${esc(i.found ?? '—')}</code></td><td>${esc(time(i.firstSeen))}</td></tr>`,
    )
    .join('');
  const main = [
    `<span id="stamp" data-now="${d.now}" hidden></span>`,
    `<section><h2 id="site" data-site="${esc(s.name)}">${esc(s.name)} ${badge(s.state)}${s.suspended ? ` ${badge('suspended')}` : ''}</h2><ul id="conditions">${conditions}</ul><table id="facts"><tbody>${facts}</tbody></table></section>`,
    `<section><h2>Providers</h2><table id="providers"><thead><tr><th>provider</th><th>state</th><th>since</th><th>latency</th><th>loss</th><th>why</th></tr></thead><tbody>${providers || '<tr><td colspan="6" class="muted">none reported</td></tr>'}</tbody></table></section>`,
    `<section><h2>Drift</h2>${s.drift ? `<div class="muted">policy ${esc(s.drift.policy)}, checked ${esc(time(s.drift.checkedAt))}${s.drift.shadowed ? `, ${s.drift.shadowed} foreign object(s) shadow Uplink's` : ''}</div>` : '<div class="muted">not reported yet</div>'}<table id="drift"><thead><tr><th>kind</th><th>object</th><th>expected</th><th>found</th><th>since</th></tr></thead><tbody>${driftRows || '<tr><td colspan="5" class="ok">none</td></tr>'}</tbody></table></section>`,
    `<section><h2>Timeline (${d.timeline.length}, newest first)</h2><table class="timeline" id="timeline"><tbody>${eventRows([...d.timeline].reverse())}</tbody></table></section>`,
    `<p class="muted">updated ${esc(time(d.now))} UTC · <a href="/">fleet</a> · <a href="/api/sites/${encodeURIComponent(s.name)}">/api/sites/${esc(s.name)}</a></p>`,
  ].join('\n');
  return fragment
    ? main
    : page(
        `Uplink — ${s.name}`,
        d.now,
        headerOf({ now: d.now, ...(controller ? { controller } : {}) }),
        main,
      );
}

/** A page for a site the controller does not know. */
export function renderUnknownSitePage(message: string, now: number): string {
  return page(
    'Uplink — unknown site',
    now,
    headerOf({ now }),
    `<section class="bad" id="unknown">${esc(message)} <a href="/">back to the fleet</a></section>`,
  );
}
