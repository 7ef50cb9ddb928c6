/**
 * The controller's read-only status page, served at `/` by the HTTP server. One
 * self-contained HTML document (inline CSS and script, no build step, no external requests)
 * that polls `/api/status` (the `ApiStatus` document of api-status.ts) every 2 s and renders
 * it: fleet summary, per-site table, the current rollout with its waves, recent events.
 *
 * Every value from the document reaches the page through `textContent` (the `el` helper) —
 * site names, labels, errors and commit messages come from git and routers, so nothing is
 * ever parsed as HTML. The script is plain ES2017 so that any browser runs it as is.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Uplink — fleet status</title>
<style>
  :root { --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #57606a; --line: #d0d7de; }
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
  header { background: #24292f; color: #fff; padding: 10px 20px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
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
  .events td:first-child { white-space: nowrap; }
  #error { display: none; }
</style></head>
<body>
<header><h1>Uplink</h1><span class="meta" id="meta">loading…</span></header>
<main>
  <section id="error" class="bad"></section>
  <section><h2>Fleet</h2><div class="cards" id="summary"></div><div id="commits" class="muted"></div></section>
  <section><h2>Rollout</h2><div id="rollout" class="muted">no rollout yet</div></section>
  <section><h2>Sites</h2>
    <table id="sites"><thead><tr>
      <th>site</th><th>labels</th><th>state</th><th>wave</th><th>applied</th><th>pending</th>
      <th>confirm</th><th>drift</th><th>providers (latency, loss)</th><th>last seen</th>
    </tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Recent events</h2><table class="events" id="events"><tbody></tbody></table></section>
</main>
<script>
'use strict';
// Builds an element; children are nodes or strings, strings become text nodes (never HTML).
function el(tag, attrs, children) {
  var node = document.createElement(tag);
  if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
  (children || []).forEach(function (c) {
    if (c === null || c === undefined) return;
    node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  });
  return node;
}
function replace(id, nodes) {
  var target = document.getElementById(id);
  while (target.firstChild) target.removeChild(target.firstChild);
  nodes.forEach(function (n) { target.appendChild(n); });
}
function ago(now, t) {
  if (t === null || t === undefined) return 'never';
  var s = Math.max(0, Math.round((now - t) / 1000));
  return s < 60 ? s + 's ago' : s < 3600 ? Math.round(s / 60) + 'm ago' : Math.round(s / 3600) + 'h ago';
}
function short(commit) { return commit ? String(commit).slice(0, 12) : '—'; }
var STATE_CLASS = { 'in-sync': 'ok', 'rolling-out': 'warn', 'out-of-date': 'warn', failed: 'bad', unreachable: 'bad', unknown: 'muted',
  up: 'ok', down: 'bad', confirmed: 'ok', pending: 'warn', reverted: 'bad', applying: 'warn', 'rolled-back': 'bad',
  waiting: 'muted', running: 'warn', baking: 'warn', passed: 'ok', halted: 'bad', skipped: 'muted', done: 'ok', superseded: 'muted',
  info: 'muted', warn: 'warn', error: 'bad' };
function badge(word) { return el('span', { class: 'badge ' + (STATE_CLASS[word] || 'muted') }, [String(word)]); }

function renderSummary(s) {
  var cards = [el('div', { class: 'card' }, [el('b', null, [s.summary.sites]), 'sites'])];
  Object.keys(s.summary.byState).forEach(function (k) {
    if (s.summary.byState[k] > 0) cards.push(el('div', { class: 'card ' + (STATE_CLASS[k] || '') }, [el('b', null, [s.summary.byState[k]]), k]));
  });
  cards.push(el('div', { class: 'card ' + (s.summary.drifted ? 'warn' : '') }, [el('b', null, [s.summary.drifted]), 'drifted']));
  cards.push(el('div', { class: 'card ' + (s.summary.degraded ? 'bad' : '') }, [el('b', null, [s.summary.degraded]), 'degraded']));
  replace('summary', cards);
  var commits = [el('span', null, ['commit in force ', el('code', null, [short(s.lastGoodCommit)])])];
  if (s.lastInvalidCommit) {
    commits.push(el('div', { class: 'bad' }, ['refused ', el('code', null, [short(s.lastInvalidCommit.commit)]), ' (' + s.lastInvalidCommit.reason + '): ' + s.lastInvalidCommit.message]));
    s.lastInvalidCommit.diagnostics.forEach(function (d) { commits.push(el('div', { class: 'mono bad' }, [d])); });
  }
  replace('commits', commits);
}

function renderRollout(s) {
  var r = s.rollout;
  if (!r) { replace('rollout', [el('span', { class: 'muted' }, ['no rollout yet'])]); return; }
  var p = r.progress;
  var head = el('div', null, [
    'commit ', el('code', null, [short(r.commit)]), ' ', badge(r.phase), ' ',
    p.confirmed + '/' + p.planned + ' confirmed, ' + p.failed + ' failed, ' + p.inFlight + ' in flight, ' + r.unchanged + ' unchanged',
  ]);
  var nodes = [head];
  if (r.halt) nodes.push(el('div', { class: 'bad' }, ['halted in wave ' + r.halt.wave + ': ' + r.halt.reason + (r.halt.failed.length ? ' (' + r.halt.failed.join(', ') + ')' : '')]));
  if (r.supersededBy) nodes.push(el('div', { class: 'muted' }, ['superseded by ', el('code', null, [short(r.supersededBy)])]));
  var waves = r.waves.map(function (w) {
    var extra = w.bakeUntil ? ' — bake ends in ' + Math.max(0, Math.round((w.bakeUntil - s.now) / 1000)) + 's' : '';
    return el('div', { class: 'wave', 'data-wave': w.name }, [
      el('h3', null, [w.name + ' ', badge(w.state)]),
      el('div', { class: 'muted' }, ['concurrency ' + w.concurrency + ', max failures ' + w.maxFailures + ', bake ' + Math.round(w.bakeMs / 1000) + 's' + extra]),
      el('div', null, w.sites.map(function (x) {
        return el('div', null, [x.site + ' ', badge(x.status), x.error ? el('span', { class: 'bad' }, [' ' + x.error]) : null]);
      })),
    ]);
  });
  nodes.push(el('div', { class: 'waves' }, waves));
  replace('rollout', nodes);
}

function renderSites(s) {
  var rows = s.sites.map(function (site) {
    var labels = Object.keys(site.labels).sort().map(function (k) { return el('span', { class: 'label' }, [k + '=' + site.labels[k]]); });
    var applied = site.applied ? el('code', { title: 'hash ' + site.applied.hash }, [site.applied.generation]) : el('span', { class: 'muted' }, ['—']);
    var pending = site.pending ? el('span', { class: 'warn' }, [el('code', null, [site.pending.generation]), ' reverts ' + ago(site.pending.deadline, s.now).replace(' ago', '') + ' from now']) : '';
    var confirm = site.confirm ? badge(site.confirm) : el('span', { class: 'muted' }, ['—']);
    if (site.lastRevert) confirm = el('span', null, [confirm, el('div', { class: 'bad' }, ['reverted ' + site.lastRevert.generation + ': ' + site.lastRevert.reason])]);
    var drift;
    if (!site.drift) drift = el('span', { class: 'muted' }, ['—']);
    else if (site.drift.items.length === 0) drift = el('span', { class: 'ok' }, ['none']);
    else drift = el('span', { class: 'warn', title: site.drift.items.map(function (d) { return d.kind + ' ' + d.object; }).join('\\n') },
      [site.drift.items.length + ' item' + (site.drift.items.length === 1 ? '' : 's') + ' (' + site.drift.policy + ')']);
    var providers = site.health.map(function (h) {
      var detail = (h.latencyMs === null ? '' : h.latencyMs.toFixed(1) + ' ms, ') + Math.round(h.loss * 100) + '% loss';
      return el('span', { class: 'prov', 'data-provider': h.name, 'data-state': h.state }, [h.name + ' ', badge(h.state), ' ', el('span', { class: 'muted' }, [detail]),
        h.probeError ? el('div', { class: 'bad' }, ['probes cannot run: ' + h.probeError]) : null]);
    });
    var problem = site.lastAttempt && site.lastAttempt.error ? site.lastAttempt.error : site.statusError;
    return el('tr', { 'data-site': site.name }, [
      el('td', null, [el('b', null, [site.name]), problem ? el('div', { class: 'bad' }, [problem]) : null]),
      el('td', null, labels),
      el('td', null, [badge(site.state), site.current === false ? el('div', { class: 'muted' }, ['not the commit in force']) : null]),
      el('td', null, [site.wave || '—']),
      el('td', null, [applied]),
      el('td', null, [pending]),
      el('td', null, [confirm]),
      el('td', null, [drift]),
      el('td', null, providers.length ? providers : [el('span', { class: 'muted' }, ['—'])]),
      el('td', { class: 'muted' }, [ago(s.now, site.lastSeen)]),
    ]);
  });
  var body = document.querySelector('#sites tbody');
  while (body.firstChild) body.removeChild(body.firstChild);
  rows.forEach(function (r) { body.appendChild(r); });
}

function renderEvents(s) {
  var body = document.querySelector('#events tbody');
  while (body.firstChild) body.removeChild(body.firstChild);
  s.events.slice(-30).reverse().forEach(function (e) {
    body.appendChild(el('tr', null, [
      el('td', { class: 'muted' }, [new Date(e.at).toLocaleTimeString()]),
      el('td', null, [badge(e.level)]),
      el('td', null, [el('code', null, [e.kind])]),
      el('td', null, [[e.site, e.wave].filter(Boolean).join(' / ')]),
      el('td', null, [e.message]),
    ]));
  });
}

function render(s) {
  var c = s.controller;
  document.getElementById('meta').textContent =
    'controller ' + c.version + ' · ' + (c.repo || 'no repository') + (c.branch ? ' (' + c.branch + ')' : '') +
    ' · fetched ' + ago(s.now, c.lastFetchAt) + (c.lastFetchError ? ' — fetch failed: ' + c.lastFetchError : '') +
    ' · updated ' + new Date(s.now).toLocaleTimeString();
  renderSummary(s);
  renderRollout(s);
  renderSites(s);
  renderEvents(s);
}

function refresh() {
  fetch('api/status', { cache: 'no-store' })
    .then(function (res) { if (!res.ok) throw new Error('/api/status answered ' + res.status); return res.json(); })
    .then(function (s) {
      document.getElementById('error').style.display = 'none';
      render(s);
      document.body.setAttribute('data-updated', String(s.now));
    })
    .catch(function (e) {
      var box = document.getElementById('error');
      box.textContent = 'cannot read the status: ' + e.message;
      box.style.display = 'block';
    })
    .then(function () { setTimeout(refresh, 2000); });
}
refresh();
</script></body></html>
`;
