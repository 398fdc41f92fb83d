/**
 * Browser export (`ntsnet export CHECKPOINT --format web --out DIR`, docs/export.md): a self-contained folder with
 * `model.json` (config, preprocessing, thresholds, tensor index), `weights.bin` (float32, TF layout), `ntsnet-web.js`
 * (ES module: TF.js + ntsnet's model code, src/web/index.ts) and a demo page `index.html`.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tf } from '../backend/index.js';
import { loadCheckpoint, type CheckpointMeta } from '../engine/checkpoint.js';
import type { NTSNet } from '../model/ntsnet.js';
import { paramsToRaw } from '../model/params.js';
import type { WebModelJson, WebTensorEntry } from '../web/index.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { onnxSidecar } from './index.js';

export const WEB_MODEL_JSON = 'model.json';
export const WEB_WEIGHTS = 'weights.bin';
export const WEB_BUNDLE = 'ntsnet-web.js';
export const WEB_PAGE = 'index.html';

/** The package root (folder of ntsnet's package.json), from this module's location (src/export or dist/src/export). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'src'))) return dir;
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'dist'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot locate the ntsnet package folder');
    dir = up;
  }
}

/**
 * The browser bundle (ntsnet-web.js) as text. In a source checkout with esbuild installed it is bundled fresh from
 * src/web/index.ts (about a second); otherwise the prebuilt `dist/web/ntsnet-web.js` (`npm run build:web`) is used.
 * @throws Error with the fix when neither is available.
 */
export async function webBundle(): Promise<{ code: string; source: string }> {
  const root = packageRoot();
  const entry = path.join(root, 'src', 'web', 'index.ts');
  if (existsSync(entry)) {
    let esbuild: typeof import('esbuild') | undefined;
    try {
      esbuild = await import('esbuild');
    } catch {
      esbuild = undefined;
    }
    if (esbuild) {
      const r = await esbuild.build({
        entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', target: 'es2020', minify: true,
        legalComments: 'none', write: false, logLevel: 'silent', absWorkingDir: root,
      });
      return { code: r.outputFiles[0]!.text, source: `bundled with esbuild from ${path.relative(root, entry)}` };
    }
  }
  const prebuilt = path.join(root, 'dist', 'web', WEB_BUNDLE);
  if (existsSync(prebuilt)) return { code: await fsp.readFile(prebuilt, 'utf8'), source: path.relative(root, prebuilt) };
  throw new Error(`no browser bundle: neither esbuild (npm install -D esbuild) nor a prebuilt ${path.relative(root, prebuilt)} ('npm run build:web') is available.`);
}

/** model.json and the bytes of weights.bin of a loaded model. */
export function webModelFiles(model: NTSNet, meta?: CheckpointMeta): { json: WebModelJson; weights: Buffer } {
  const tensors: WebTensorEntry[] = [];
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [net, params] of [['teacher', model.teacher], ['student', model.student]] as const)
    for (const [name, t] of paramsToRaw(params)) {
      const data = Float32Array.from(t.data);
      tensors.push({ net, name, shape: [...t.shape], offset, length: data.length });
      const b = Buffer.alloc(data.length * 4);
      for (let i = 0; i < data.length; i++) b.writeFloatLE(data[i]!, i * 4);
      chunks.push(b);
      offset += b.length;
    }
  const side = onnxSidecar(model.config, WEB_WEIGHTS, meta);
  const json: WebModelJson = {
    format: 'ntsnet-web', version: 1, ntsnetVersion: side.ntsnetVersion, createdAt: side.createdAt, model: model.config,
    preprocessing: { ...side.preprocessing, mean: [...side.preprocessing.mean], std: [...side.preprocessing.std], formula: 'x[c] = (v[c] / 255 - mean[c]) / std[c], v = 8-bit sRGB value; layout NHWC [batch, S, S, 3]' },
    thresholds: side.thresholds ? { image: side.thresholds.image, pixel: side.thresholds.pixel, imageSource: side.thresholds.imageSource, pixelSource: side.thresholds.pixelSource, rule: side.thresholds.rule, notes: side.thresholds.notes } : null,
    weights: { file: WEB_WEIGHTS, dtype: 'float32', byteLength: offset, layout: 'float32 little-endian, TF layout (conv filters [kh, kw, in, out]); tensors[i] at byte offset, length values', tensors },
    ...(side.checkpoint ? { checkpoint: side.checkpoint } : {}),
  };
  return { json, weights: Buffer.concat(chunks) };
}

/** The demo page: loads the bundle, scores the chosen (or a generated) image and draws the anomaly map. */
export function webPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ntsnet web model</title><link rel="icon" href="data:,">
<style>body{font-family:system-ui,sans-serif;margin:2em}canvas,img{width:256px;height:256px;image-rendering:pixelated;border:1px solid #ccc;margin-right:1em}</style>
</head><body>
<h1>ntsnet anomaly detector (browser)</h1>
<p><input type="file" id="file" accept="image/*"> <span id="status">loading model...</span></p>
<p><img id="img" alt="input"><canvas id="map"></canvas></p>
<pre id="out"></pre>
<script type="module">
import { loadModel } from './${WEB_BUNDLE}';
const $ = (id) => document.getElementById(id);
const model = await loadModel('${WEB_MODEL_JSON}');
window.ntsnetModel = model;
$('status').textContent = 'model loaded (' + model.size + ' px, TF.js backend ' + model.backend + ')';
async function run() {
  const r = await model.predict($('img'));
  const S = r.size, th = model.json.thresholds;
  const vmax = th ? 2 * th.pixel : Math.max(...r.maps) || 1;
  const c = $('map'); c.width = S; c.height = S;
  const ctx = c.getContext('2d'), im = ctx.createImageData(S, S);
  for (let i = 0; i < S * S; i++) { const t = Math.min(1, Math.max(0, r.maps[i] / vmax)); im.data[4 * i] = 255 * t; im.data[4 * i + 1] = 64 * (1 - t); im.data[4 * i + 2] = 255 * (1 - t); im.data[4 * i + 3] = 255; }
  ctx.putImageData(im, 0, 0);
  $('out').textContent = 'score ' + r.scores[0].toFixed(6) + (th ? ' (image threshold ' + th.image.toPrecision(6) + '): ' + (r.anomalous[0] ? 'ANOMALOUS' : 'normal') : '') + ', ' + r.ms.toFixed(0) + ' ms';
}
$('img').onload = () => run().catch((e) => { $('out').textContent = String(e); });
$('file').onchange = (e) => { const f = e.target.files[0]; if (f) $('img').src = URL.createObjectURL(f); };
// a generated striped test image until one is chosen
const g = document.createElement('canvas'); g.width = g.height = model.size;
const gx = g.getContext('2d');
for (let x = 0; x < model.size; x++) { const v = 100 + 60 * Math.sin(x / 4); gx.fillStyle = 'rgb(' + v + ',' + v * 0.8 + ',90)'; gx.fillRect(x, 0, 1, model.size); }
$('img').src = g.toDataURL();
</script>
</body></html>
`;
}

/** Result of {@link exportCheckpointWeb}. */
export interface WebExportResult {
  dir: string;
  files: { modelJson: string; weights: string; bundle: string; page: string };
  weightBytes: number;
  bundleBytes: number;
  bundleSource: string;
  tensors: number;
  model: NTSNet;
  meta: CheckpointMeta;
}

/** Writes the web export of a checkpoint into `dir` (created; files written atomically). The caller disposes `model`. */
export async function exportCheckpointWeb(tf: Tf, checkpoint: string, dir: string): Promise<WebExportResult> {
  const { model, meta } = await loadCheckpoint(tf, checkpoint);
  try {
    const bundle = await webBundle();
    const { json, weights } = webModelFiles(model, meta);
    await fsp.mkdir(dir, { recursive: true });
    const files = { modelJson: path.join(dir, WEB_MODEL_JSON), weights: path.join(dir, WEB_WEIGHTS), bundle: path.join(dir, WEB_BUNDLE), page: path.join(dir, WEB_PAGE) };
    await writeFileAtomic(files.weights, weights);
    await writeJsonAtomic(files.modelJson, json);
    await writeFileAtomic(files.bundle, bundle.code);
    await writeFileAtomic(files.page, webPage());
    return { dir, files, weightBytes: weights.length, bundleBytes: Buffer.byteLength(bundle.code), bundleSource: bundle.source, tensors: json.weights.tensors.length, model, meta };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
