/**
 * The page at `/`: drop (or choose) an image, pick a model, see the decision, the scores and the heat-map overlay.
 * Plain HTML + one script from the same origin (no external resources; CSP `default-src 'self'`).
 */

/** The HTML of `/`. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ntsnet inspection</title>
<link rel="icon" href="data:,">
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
  #drop { border: 2px dashed #888; border-radius: 8px; padding: 2.5rem; text-align: center; cursor: pointer; }
  #drop.over { background: #eef5ff; border-color: #36c; }
  .row { display: flex; gap: 1rem; align-items: center; margin: .8rem 0; flex-wrap: wrap; }
  #decision { font-size: 1.6rem; font-weight: 600; }
  #decision.anomalous { color: #b00020; } #decision.normal { color: #1b7f3b; }
  #error { color: #b00020; white-space: pre-wrap; }
  img { max-width: 100%; border: 1px solid #ccc; }
  table { border-collapse: collapse; } td { padding: .15rem .8rem .15rem 0; }
</style>
</head>
<body>
<h1>ntsnet inspection</h1>
<div class="row">
  <label>Model <select id="model"></select></label>
  <label>API key <input id="key" type="password" autocomplete="off" placeholder="(only if the service needs one)"></label>
</div>
<div id="drop" tabindex="0">Drop an image here, or click to choose one (PNG, JPEG, BMP, TIFF, WebP, GIF)
  <input id="file" type="file" accept="image/*" hidden>
</div>
<p id="status" role="status"></p>
<p id="error" role="alert"></p>
<div id="result" hidden>
  <div id="decision"></div>
  <table>
    <tr><td>score</td><td id="score"></td></tr>
    <tr><td>normalised score</td><td id="normalized"></td></tr>
    <tr><td>threshold</td><td id="threshold"></td></tr>
    <tr><td>engine</td><td id="engine"></td></tr>
    <tr><td>latency</td><td id="latency"></td></tr>
  </table>
  <p><img id="overlay" alt="anomaly heat-map overlay"></p>
</div>
<script type="module" src="/ui.js"></script>
</body>
</html>
`;

/** The script of the page (served as /ui.js). */
export const PAGE_JS = `const $ = (id) => document.getElementById(id);
const headers = () => { const k = $('key').value.trim(); return k ? { authorization: 'Bearer ' + k } : {}; };
async function json(res) { try { return await res.json(); } catch { return { message: res.status + ' ' + res.statusText }; } }
async function loadModels() {
  $('error').textContent = '';
  const res = await fetch('/v1/models', { headers: headers() });
  const body = await json(res);
  if (!res.ok) { $('error').textContent = body.message || ('HTTP ' + res.status); return; }
  const sel = $('model'); sel.textContent = '';
  for (const m of body.models) { const o = document.createElement('option'); o.value = m.name; o.textContent = m.name + ' (' + m.imageSize + ' px, ' + m.engine + ')'; sel.append(o); }
  $('status').textContent = body.models.length + ' model(s) ready';
  document.body.dataset.ready = '1';
}
async function inspect(file) {
  $('error').textContent = ''; $('result').hidden = true; $('status').textContent = 'inspecting ' + file.name + ' ...';
  const model = $('model').value;
  const res = await fetch('/v1/models/' + encodeURIComponent(model) + '/predict?map=overlay', {
    method: 'POST', body: file, headers: { 'content-type': file.type || 'application/octet-stream', ...headers() },
  });
  const r = await json(res);
  if (!res.ok) { $('status').textContent = ''; $('error').textContent = (r.code ? r.code + ': ' : '') + (r.message || ('HTTP ' + res.status)); return; }
  const d = $('decision'); d.textContent = r.decision; d.className = r.decision;
  $('score').textContent = r.score.toFixed(5);
  $('normalized').textContent = r.normalizedScore.toFixed(3);
  $('threshold').textContent = r.threshold.toPrecision(6);
  $('engine').textContent = r.engine + ', batch of ' + r.batchSize;
  $('latency').textContent = r.latencyMs.total.toFixed(1) + ' ms';
  const img = $('overlay');
  await new Promise((ok) => { img.onload = ok; img.onerror = ok; img.src = 'data:' + r.map.contentType + ';base64,' + r.map.base64; });
  $('result').hidden = false;
  $('status').textContent = file.name + ': ' + r.decision;
}
const drop = $('drop');
drop.addEventListener('click', () => $('file').click());
drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') $('file').click(); });
$('file').addEventListener('change', () => { const f = $('file').files[0]; if (f) inspect(f); });
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); const f = e.dataTransfer.files[0]; if (f) inspect(f); });
$('key').addEventListener('change', loadModels);
loadModels().catch((e) => { $('error').textContent = String(e); });
`;
