/**
 * The controller's read-only status page, served at `/` by the HTTP server. One
 * self-contained HTML document (inline CSS and script, no build step) that polls
 * `/api/status` and renders it.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Uplink</title></head>
<body><h1>Uplink</h1><pre id="status">loading…</pre>
<script>
async function refresh() {
  const res = await fetch('/api/status');
  document.getElementById('status').textContent = JSON.stringify(await res.json(), null, 2);
}
refresh();
setInterval(refresh, 2000);
</script></body></html>
`;
