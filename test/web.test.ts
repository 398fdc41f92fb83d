/**
 * `ntsnet export --format web`: tiny fit (64 px, random teacher), export to a folder, serve it on 127.0.0.1 and run
 * the bundle in headless Chromium (playwright-core with the system /usr/bin/chromium; skipped with a message when it
 * is absent). The browser's maps must match tfjs-node's NTSNet.predict on the same input within 1e-4.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import { loadTf } from '../src/backend/index.js';
import { loadCheckpoint } from '../src/engine/checkpoint.js';
import { parityInputs } from '../src/export/index.js';
import type { WebModelJson } from '../src/web/index.js';
import { makeTempDir, repoRoot, writeStripedImage, chromiumMissing, launchChromium } from './helpers.js';

const run = promisify(execFile);
const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
const TOL = 1e-4;
const SIZE = 64;

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.bin': 'application/octet-stream' };

/** Static server for `dir` on 127.0.0.1 (GET only, no path escapes; `/blank.html` is an empty page). */
async function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET') { res.writeHead(405).end(); return; }
    if (u.pathname === '/blank.html') { res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>blank</title><link rel="icon" href="data:,">'); return; }
    const file = path.join(dir, path.normalize(decodeURIComponent(u.pathname)).replace(/^([/\\])+/, ''));
    if (!file.startsWith(dir + path.sep) || !existsSync(file) || !statSync(file).isFile()) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('export --format web: the bundle in headless Chromium reproduces NTSNet.predict (tfjs-node) within 1e-4', { timeout: 300_000 }, async (t) => {
  const tmp = makeTempDir('web');
  const data = path.join(tmp, 'widget');
  for (const d of ['train/good', 'test/good']) mkdirSync(path.join(data, d), { recursive: true });
  for (let i = 0; i < 8; i++) await writeStripedImage(path.join(data, 'train', 'good', `${i}.png`), i);
  for (let i = 0; i < 2; i++) await writeStripedImage(path.join(data, 'test', 'good', `${i}.png`), 50 + i);
  const ckpt = path.join(tmp, 'run');
  await run(process.execPath, [cli(), 'fit', '--data', data, '--out', ckpt, '--preset', 'tiny'], { maxBuffer: 1 << 24 });

  const dir = path.join(tmp, 'web');
  const ex = await run(process.execPath, [cli(), 'export', ckpt, '--format', 'web', '--out', dir], { maxBuffer: 1 << 24 });
  assert.match(ex.stdout, /wrote .*weights\.bin \([\d.]+ MiB, \d+ float32 tensors\)/);
  assert.match(ex.stdout, /wrote .*ntsnet-web\.js/);
  for (const f of ['model.json', 'weights.bin', 'ntsnet-web.js', 'index.html']) assert.ok(existsSync(path.join(dir, f)), `${f} written`);
  const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')) as WebModelJson;
  assert.equal(json.format, 'ntsnet-web');
  assert.equal(json.model.imageSize, SIZE);
  assert.deepEqual(json.preprocessing.mean, [0.485, 0.456, 0.406]);
  assert.equal(json.weights.byteLength, statSync(path.join(dir, 'weights.bin')).size);
  const cfg = JSON.parse(readFileSync(path.join(ckpt, 'config.json'), 'utf8')) as { thresholds?: { image: number } };
  if (cfg.thresholds) assert.equal(json.thresholds?.image, cfg.thresholds.image);
  const last = json.weights.tensors.at(-1)!;
  assert.equal(last.offset + 4 * last.length, json.weights.byteLength);

  // Reference: tfjs-node on the same input.
  const x = parityInputs(SIZE); // [2, 64, 64, 3]: synthetic part with a defect + N(0, 1) noise
  const tf = loadTf();
  const { model } = await loadCheckpoint(tf, ckpt);
  let refMaps: Float32Array, refScores: Float32Array;
  try {
    const xt = tf.tensor4d(x, [2, SIZE, SIZE, 3]) as Tensor4D;
    const p = model.predict(xt);
    refMaps = p.maps.dataSync() as Float32Array;
    refScores = p.scores.dataSync() as Float32Array;
    xt.dispose(); p.maps.dispose(); p.scores.dispose();
  } finally {
    model.dispose();
  }

  const missing = chromiumMissing();
  if (missing) {
    t.skip(missing);
    return;
  }
  const { server, url } = await serve(dir);
  const browser = await launchChromium();
  try {
    const errors: string[] = [];
    const watch = (page: import('playwright-core').Page): void => {
      page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
      page.on('response', (res) => { if (res.status() >= 400) errors.push(`HTTP ${res.status()} ${res.url()}`); });
    };
    // Parity: the bundle on the cpu backend, fixed float32 NHWC input.
    const page = await browser.newPage();
    watch(page);
    await page.goto(`${url}/blank.html`);
    const r = await page.evaluate(async (input: number[]) => {
      const m = (await import('./ntsnet-web.js' as string)) as typeof import('../src/web/index.js');
      const model = await m.loadModel('model.json', { backend: 'cpu' });
      const p = await model.predict(Float32Array.from(input));
      model.dispose();
      return { backend: model.backend, maps: Array.from(p.maps), scores: Array.from(p.scores), anomalous: p.anomalous, ms: p.ms };
    }, Array.from(x));
    assert.equal(r.maps.length, refMaps.length);
    let dm = 0, ds = 0, scale = 0;
    for (let i = 0; i < refMaps.length; i++) { dm = Math.max(dm, Math.abs(r.maps[i]! - refMaps[i]!)); scale = Math.max(scale, Math.abs(refMaps[i]!)); }
    for (let i = 0; i < 2; i++) ds = Math.max(ds, Math.abs(r.scores[i]! - refScores[i]!));
    t.diagnostic(`Chromium (TF.js ${r.backend} backend, ${r.ms.toFixed(0)} ms for 2 images) vs tfjs-node: max |map diff| ${dm.toExponential(2)}, max |score diff| ${ds.toExponential(2)} (map values up to ${scale.toPrecision(3)})`);
    assert.equal(r.backend, 'cpu');
    assert.ok(dm < TOL, `maps differ by ${dm}`);
    assert.ok(ds < TOL, `scores differ by ${ds}`);
    assert.ok(scale > 1e-3, 'maps are not trivially zero');
    if (json.thresholds) assert.deepEqual(r.anomalous, r.scores.map((s) => s > json.thresholds!.image));

    // The demo page: loads the bundle (WebGL when the browser offers it, else cpu) and scores its generated image.
    const demo = await browser.newPage();
    watch(demo);
    await demo.goto(`${url}/index.html`);
    await demo.waitForFunction(() => /score \d/.test(document.getElementById('out')?.textContent ?? ''), undefined, { timeout: 120_000 });
    t.diagnostic(`index.html: ${await demo.textContent('#status')}; ${await demo.textContent('#out')}`);
    // Informative only: the same input on the backend the demo page chose (WebGL runs on SwiftShader here).
    const g = await demo.evaluate(async (input: number[]) => {
      const model = (window as unknown as { ntsnetModel: import('../src/web/index.js').WebModel }).ntsnetModel;
      const p = await model.predict(Float32Array.from(input));
      return { backend: model.backend, maps: Array.from(p.maps) };
    }, Array.from(x));
    let dg = 0;
    for (let i = 0; i < refMaps.length; i++) dg = Math.max(dg, Math.abs(g.maps[i]! - refMaps[i]!));
    t.diagnostic(`demo page model (TF.js ${g.backend} backend) vs tfjs-node: max |map diff| ${dg.toExponential(2)} (not asserted)`);
    assert.deepEqual(errors.filter((e) => !/WebGL|webgl|GPU/i.test(e)), []);
  } finally {
    await browser.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
