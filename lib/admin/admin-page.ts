/**
 * The admin page: one self-contained HTML document (no build step, no
 * framework) that polls `<path>/state.json` and renders it as tables.
 * Endpoint rows carry a state class (healthy, unhealthy, ejected, drained, stale) so
 * each state looks distinct; the page works in any browser without assets.
 */
export function renderAdminPage(statePath: string, refreshMs = 2_000): string {
  const stateUrl = JSON.stringify(statePath);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>switchyard — discovery state</title>
<style>
  :root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
  body { margin: 1.5rem; color: #1b1f24; background: #f6f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .4rem; display: flex; gap: .6rem; align-items: baseline; flex-wrap: wrap; }
  .meta { color: #57606a; font-size: .85rem; }
  table { border-collapse: collapse; width: 100%; background: #fff; font-size: .85rem; }
  th, td { text-align: left; padding: .3rem .55rem; border-bottom: 1px solid #d0d7de; white-space: nowrap; }
  th { background: #eaeef2; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .badge { display: inline-block; padding: .05rem .45rem; border-radius: 999px; font-size: .75rem; font-weight: 600; border: 1px solid transparent; }
  .badge.ok, .badge.healthy, .badge.registered { background: #dafbe1; color: #116329; border-color: #4ac26b; }
  .badge.stale, .badge.lost, .badge.registering { background: #fff8c5; color: #7d4e00; border-color: #d4a72c; }
  .badge.empty, .badge.unknown, .badge.disabled, .badge.deregistered { background: #eaeef2; color: #424a53; border-color: #afb8c1; }
  .badge.unhealthy, .badge.failed, .badge.unreachable { background: #ffebe9; color: #a40e26; border-color: #ff8182; }
  .badge.ejected { background: #fbefff; color: #6e40c9; border-color: #c297ff; }
  .badge.drained { background: #ddf4ff; color: #0a3069; border-color: #54aeff; }
  .badge.panic { background: #a40e26; color: #fff; }
  tr.unhealthy td { background: #fff5f5; }
  tr.ejected td { background: #faf5ff; }
  tr.ejected td:first-child { text-decoration: line-through; text-decoration-color: #c297ff; }
  tr.drained td { background: #f1f8ff; color: #57606a; }
  tr.stale td { background: #fffbe6; }
  #error { color: #a40e26; font-weight: 600; }
  .empty-row td { color: #57606a; font-style: italic; }
</style>
</head>
<body>
<h1>switchyard — what this process sees</h1>
<div class="meta" id="summary">loading…</div>
<div id="error" role="alert"></div>
<section id="self"></section>
<section id="services"></section>
<noscript><p>This page refreshes itself with JavaScript; the raw state is at <a href="state.json">state.json</a>.</p></noscript>
<script>
(() => {
  const STATE_URL = ${stateUrl};
  const REFRESH_MS = ${Number(refreshMs)};
  const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const badge = (text, cls) => '<span class="badge ' + esc(cls || text) + '">' + esc(text) + '</span>';
  const num = (v, digits) => (v === undefined || v === null ? '' : Number(v).toFixed(digits || 0));
  function query(q) {
    const parts = [];
    if (q.namespace) parts.push('namespace ' + q.namespace);
    if (q.version) parts.push('version ' + q.version);
    for (const t of q.tags || []) parts.push('tag ' + t.key + (t.pattern && t.pattern !== 'exact' ? ' ' + t.pattern : '') + (t.value !== undefined ? ' ' + t.value : ''));
    if (q.zone) parts.push('zone ' + q.zone);
    return parts.join(', ') || 'no filters';
  }
  function renderSelf(state) {
    const s = state.self;
    const r = state.registry;
    let html = '<h2>Registry ' + badge(state.backend, 'unknown') + ' ' + badge(r.reachable === false ? 'unreachable' : r.reachable ? 'reachable' : 'unknown', r.reachable === false ? 'unreachable' : r.reachable ? 'ok' : 'unknown');
    if (r.reason) html += ' <span class="meta">' + esc(r.reason) + '</span>';
    html += '</h2>';
    if (s) {
      html += '<table><thead><tr><th>own instance</th><th>address</th><th>state</th><th>key / id</th><th>last heartbeat</th></tr></thead><tbody>';
      html += '<tr><td>' + esc(s.service) + '</td><td>' + esc(s.address) + '</td><td>' + badge(s.state) + '</td><td>' + esc(s.key || s.id) + '</td><td>' + esc(s.lastHeartbeat ? new Date(s.lastHeartbeat).toLocaleTimeString() : '') + '</td></tr>';
      html += '</tbody></table>';
    } else {
      html += '<p class="meta">client-only app: no own instance</p>';
    }
    document.getElementById('self').innerHTML = html;
  }
  function renderServices(state) {
    let html = '';
    for (const svc of state.services) {
      html += '<h2 data-service="' + esc(svc.service) + '">' + esc(svc.service) + ' ' + badge(svc.state) + (svc.panic ? ' ' + badge('panic') : '') +
        ' <span class="meta">rev ' + esc(svc.revision) + ' · ' + esc(svc.strategy) + ' · ' + esc(query(svc.query)) + ' · ' + esc(svc.served) + ' served of ' + esc(svc.known) + ' known' + (svc.reason ? ' · ' + esc(svc.reason) : '') + '</span></h2>';
      html += '<table><thead><tr><th>endpoint</th><th>instance</th><th>zone</th><th>version</th><th>weight</th><th>health</th><th>detail</th><th>in flight</th><th>picks/min</th><th>failures/min</th><th>EWMA ms</th></tr></thead><tbody>';
      if (!svc.endpoints.length) html += '<tr class="empty-row"><td colspan="11">no endpoints</td></tr>';
      for (const e of svc.endpoints) {
        const rowState = svc.state === 'stale' && e.health === 'healthy' ? 'stale' : e.health;
        html += '<tr class="' + esc(rowState) + '" data-address="' + esc(e.address) + '" data-health="' + esc(e.health) + '">' +
          '<td>' + esc(e.address) + '</td><td>' + esc(e.id) + '</td><td>' + esc(e.zone) + '</td><td>' + esc(e.version) + '</td>' +
          '<td class="num">' + esc(e.weight) + '</td><td>' + badge(rowState) + '</td><td>' + esc(e.detail) + '</td>' +
          '<td class="num">' + num(e.inFlight) + '</td><td class="num">' + num(e.picksLastMinute) + '</td><td class="num">' + num(e.failuresLastMinute) + '</td><td class="num">' + num(e.ewmaMs, 1) + '</td></tr>';
      }
      html += '</tbody></table>';
    }
    document.getElementById('services').innerHTML = html || '<p class="meta">no service clients yet</p>';
  }
  async function refresh() {
    try {
      const response = await fetch(STATE_URL, { cache: 'no-store' });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      const state = await response.json();
      document.getElementById('error').textContent = '';
      document.getElementById('summary').textContent = 'backend ' + state.backend + ' · ' + state.services.length + ' service(s) · updated ' + new Date(state.generatedAt).toLocaleTimeString();
      renderSelf(state);
      renderServices(state);
      document.body.dataset.revision = String(state.generatedAt);
    } catch (error) {
      document.getElementById('error').textContent = 'cannot load ' + STATE_URL + ': ' + error.message;
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }
  refresh();
})();
</script>
</body>
</html>
`;
}
