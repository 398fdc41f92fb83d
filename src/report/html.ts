/**
 * `ntsnet report`: one self-contained HTML file (no server, no network: scripts, styles, the Chart.js UMD build and
 * every image are inline) that turns a test run's scores into decisions: metrics table, image-level ROC curves, score
 * histograms with the threshold line, a threshold slider with live pass/fail counts, and a gallery of the test images
 * (image, ground-truth mask, heat map, predicted mask) sorted by score. See docs/report.md.
 */
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import sharp from 'sharp';
import type { Tf } from '../backend/index.js';
import { loadImageRgb8, loadMaskFull, maskAlignment, resizeNearest } from '../data/image.js';
import type { SplitDataset } from '../data/folder.js';
import type { TestItem } from '../data/mvtec.js';
import { rocCurve } from '../metrics/auroc.js';
import { teacherLabel } from '../model/weights/resolve.js';
import { writeFileAtomic } from '../util/atomic.js';
import { chunks, loadImageSet } from '../engine/batches.js';
import { incompleteTrainingWarning } from '../engine/checkpoint.js';
import { mapLimit } from '../util/concurrency.js';
import { checkpointWeightsFile, loadCheckpoint, readCheckpointMeta, type CheckpointMeta } from '../engine/checkpoint.js';
import type { EvalResult, ImageResult } from '../engine/evaluate.js';
import { drawContour, effectiveThresholds } from '../engine/inspect.js';
import { NTSNET_VERSION } from '../engine/paths.js';
import { scoreImageSet } from '../engine/score.js';
import { chartJsSource, clientScript, REPORT_CSS, safeInlineJson, type ClientData } from './assets.js';
import { overlayRgb, resizeBilinear } from './overlay.js';

/** Default thumbnail size (longest side, pixels). */
export const DEFAULT_THUMB_SIZE = 128;
export const REPORT_FILE = 'report.html';
export const RESULTS_FILE = 'results.json';

/** The parts of results.json the report reads (written by engine/evaluate.ts writeResults). */
export interface ResultsFile {
  results: EvalResult[];
  checkpoint?: { bestEpoch?: number; config?: { preset?: string; model?: { imageSize?: number } } };
  createdAt?: string;
}

/** Thumbnails of one test image, as data: URIs. */
export interface Thumbs {
  image: string;
  /** Ground-truth mask (defective images with a mask). */
  gt?: string;
  /** 50 % image + 50 % jet heat map over 0 .. 2 x pixel threshold, predicted-mask contour in magenta. */
  heat: string;
  /** Predicted mask: 255 where the map (resized bilinearly to the thumbnail) > pixel threshold. */
  pred: string;
  /** Fraction of thumbnail pixels in the predicted mask. */
  predArea: number;
  /** Thumbnail size in pixels (aspect ratio of the image). */
  width: number;
  height: number;
  /** Why there is no ground-truth thumbnail (defective image without a usable mask). */
  gtNote?: string;
}

/** Everything {@link renderReportHtml} needs (no file access, no TF.js). */
export interface ReportModel {
  title: string;
  runDir: string;
  createdAt: string;
  resultsCreatedAt?: string;
  /** One line describing the model / checkpoint. */
  modelLine: string;
  /** Degenerate-detector problems (engine/health.ts), shown as a banner above everything else; empty when healthy. */
  degenerate: string[];
  thresholds: {
    /** Calibrated image threshold (null when the checkpoint has none; the slider then starts at `initial`). */
    image: number | null;
    initial: number;
    /** Pixel threshold used for predicted masks and heat-map scaling (null: no gallery). */
    pixel: number | null;
    /** How they were calibrated, for people. */
    description: string;
    /** Calibration caveats (shown in the decision section). */
    notes: string[];
  };
  results: EvalResult[];
  /** Thumbnails keyed `${category index}/${image index in results[c].images}`. */
  thumbs: Map<string, Thumbs>;
  thumbSize: number;
  notes: string[];
  chartJs: { source: string; version: string };
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const pct = (v: number | null): string => (v === null ? 'n/a' : (100 * v).toFixed(1));
const fmt = (v: number): string => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(4) : v.toPrecision(5));

/** Slider range: every score and the initial threshold, padded by 2 % of the span. */
export function sliderRange(scores: readonly number[], initial: number): { min: number; max: number } {
  let lo = initial, hi = initial;
  for (const s of scores) { if (s < lo) lo = s; if (s > hi) hi = s; }
  const pad = hi > lo ? 0.02 * (hi - lo) : Math.max(Math.abs(hi) * 0.05, 1e-6);
  return { min: lo - pad, max: hi + pad };
}

/** The counts at a threshold (decision: anomalous when score > t), as the report shows them. */
export function decisionCounts(images: readonly { label: 0 | 1; score: number }[], t: number): { tp: number; fp: number; tn: number; fn: number; good: number; defective: number } {
  const c = { tp: 0, fp: 0, tn: 0, fn: 0, good: 0, defective: 0 };
  for (const im of images) {
    const a = im.score > t;
    if (im.label === 1) { c.defective++; if (a) c.tp++; else c.fn++; }
    else { c.good++; if (a) c.fp++; else c.tn++; }
  }
  return c;
}

function countsRow(label: string, suffix: string, imgs: readonly ImageResult[], t: number, cls = ''): string {
  const c = decisionCounts(imgs, t);
  const rate = (n: number, d: number): string => (d > 0 ? `${((100 * n) / d).toFixed(1)} %` : 'n/a');
  const cell = (id: string, v: string | number): string => `<td id="${id}${suffix}">${v}</td>`;
  return `<tr${cls ? ` class="${cls}"` : ''}><td>${esc(label)}</td><td>${imgs.length}</td><td>${c.good}</td><td>${c.defective}</td>` +
    cell('n-pass', c.tn + c.fn) + cell('n-fail', c.tp + c.fp) + cell('n-tp', c.tp) + cell('n-fn', c.fn) + cell('n-fp', c.fp) + cell('n-tn', c.tn) +
    cell('rate-fr', rate(c.fp, c.good)) + cell('rate-miss', rate(c.fn, c.defective)) + '</tr>';
}

/**
 * Renders the report HTML: a pure function of `m` (thumbnails already encoded). The page's Content-Security-Policy
 * allows only inline scripts/styles and data: images, so it can never load anything from the network.
 */
export function renderReportHtml(m: ReportModel): string {
  const { results } = m;
  const all = results.flatMap((r, c) => r.images.map((im, j) => ({ im, c, j })));
  const t0 = m.thresholds.initial;
  const range = sliderRange(all.map((a) => a.im.score), t0);
  const clientData: ClientData = {
    threshold: { initial: t0, calibrated: m.thresholds.image, min: range.min, max: range.max },
    categories: results.map((r) => {
      const curve = rocCurve(r.images.map((i) => i.score), r.images.map((i) => i.label), 400);
      return { name: r.category, imageAuroc: r.imageAuroc, roc: curve ? { fpr: curve.fpr, tpr: curve.tpr } : null };
    }),
    images: all.map((a) => ({ c: a.c, label: a.im.label, score: a.im.score })),
  };

  // Metrics table (values in %, like metrics.md), with the mean row when there are several categories.
  const mean = (f: (r: EvalResult) => number | null): number | null => {
    const v = results.map(f).filter((x): x is number => x !== null);
    return v.length === results.length && v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  const metricRows = results.map((r) =>
    `<tr><td>${esc(r.category)}</td><td>${r.counts.test}</td><td>${r.counts.good}</td><td>${r.counts.defective}</td><td>${pct(r.imageAuroc)}</td><td>${pct(r.pixelAuroc)}</td></tr>`);
  if (results.length > 1)
    metricRows.push(`<tr class="total"><td>all (mean AUROC)</td><td>${results.reduce((a, r) => a + r.counts.test, 0)}</td><td>${results.reduce((a, r) => a + r.counts.good, 0)}</td><td>${results.reduce((a, r) => a + r.counts.defective, 0)}</td><td>${pct(mean((r) => r.imageAuroc))}</td><td>${pct(mean((r) => r.pixelAuroc))}</td></tr>`);
  const resultNotes = results.flatMap((r) => r.notes.map((n) => `${r.category}: ${n}`));

  // Counts table: one row per category (when several) and the total.
  const countRows = [
    ...(results.length > 1 ? results.map((r, k) => countsRow(r.category, `-${k}`, r.images, t0)) : []),
    countsRow(results.length > 1 ? 'all' : results[0]?.category ?? 'all', '', all.map((a) => a.im), t0, results.length > 1 ? 'total' : ''),
  ];

  // Gallery: every test image, highest score first.
  const order = all.map((a, i) => ({ ...a, i })).sort((a, b) => b.im.score - a.im.score || a.i - b.i);
  const galleryCount = order.filter((a) => m.thumbs.has(`${a.c}/${a.j}`)).length;
  const panel = (th: Thumbs, src: string | undefined, label: string, alt: string, placeholder: string): string =>
    `<div class="panel">${src ? `<img src="${src}" width="${th.width}" height="${th.height}" alt="${esc(alt)}">` : `<div class="ph" style="width:${th.width}px;height:${th.height}px">${esc(placeholder)}</div>`}${esc(label)}</div>`;
  const cards = order.map((a, rank) => {
    const th = m.thumbs.get(`${a.c}/${a.j}`);
    if (!th) return '';
    const anomalous = a.im.score > t0;
    const o = a.im.label === 1 ? (anomalous ? 'tp' : 'fn') : anomalous ? 'fp' : 'tn';
    const outcome = { tp: 'TP: defect caught', tn: 'TN: good passed', fp: 'FP: good rejected', fn: 'FN: defect missed' }[o];
    const cat = results.length > 1 ? `${results[a.c]!.category} / ` : '';
    const truth = a.im.label === 1 ? `defect: ${a.im.defectType}` : 'good';
    return `<figure class="card o-${o}" data-i="${a.i}" data-outcome="${o}" data-label="${a.im.label}">` +
      `<figcaption><b>#${rank + 1}</b> ${esc(cat + a.im.file)}</figcaption><div class="panels">` +
      panel(th, th.image, 'image', `test image ${a.im.file}`, '') +
      panel(th, th.gt, 'ground truth', 'ground-truth mask', a.im.label === 1 ? th.gtNote ?? 'no mask' : 'good: no defect') +
      panel(th, th.heat, 'heat map', 'anomaly heat map', '') +
      panel(th, th.pred, `predicted mask (${(100 * th.predArea).toFixed(1)} %)`, 'predicted defect mask', '') +
      `</div><div class="meta"><span>truth: <b>${esc(truth)}</b></span><span>score <b>${fmt(a.im.score)}</b> (<span class="ratio">${(a.im.score / t0).toFixed(3)} x threshold</span>)</span>` +
      `<span>decision: <b class="decision">${anomalous ? 'anomalous' : 'normal'}</b></span><span class="badge">${outcome}</span></div></figure>`;
  }).join('\n');

  const cjs = m.chartJs;
  const px = m.thresholds.pixel;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ntsnet ${esc(NTSNET_VERSION)}">
<title>${esc(m.title)}</title>
<style>${REPORT_CSS}.gallery { grid-template-columns: repeat(auto-fill, minmax(${4 * m.thumbSize + 50}px, 1fr)); }</style>
</head>
<body>
<header>
<h1>${esc(m.title)}</h1>
<div class="muted">${esc(m.modelLine)}</div>
${m.degenerate.length ? `<div class="degenerate" id="degenerate" role="alert" style="border:3px solid #c00;background:#fee;padding:0.6em 1em;margin:0.6em 0"><strong>WARNING: this model does not detect defects (degenerate detector).</strong><ul>${m.degenerate.map((d) => `<li>${esc(d)}</li>`).join('')}</ul></div>` : ''}
<div class="muted small">run folder <code>${esc(m.runDir)}</code>; results ${esc(m.resultsCreatedAt ?? 'n/a')}; report ${esc(m.createdAt)} (ntsnet ${esc(NTSNET_VERSION)})</div>
</header>
<main>
<section id="metrics-section">
<h2>Metrics</h2>
<table id="metrics"><thead><tr><th>Category</th><th>Test images</th><th>Good</th><th>Defective</th><th>Image AUROC (%)</th><th>Pixel AUROC (%)</th></tr></thead>
<tbody>
${metricRows.join('\n')}
</tbody></table>
${resultNotes.length || m.notes.length ? `<ul class="notes" id="notes">${[...resultNotes, ...m.notes].map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
</section>
<section id="decision-section">
<h2>Decision at a threshold</h2>
${m.thresholds.notes.length ? `<ul class="notes" id="threshold-notes">${m.thresholds.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<p class="muted small">An image is <b>anomalous</b> (rejected) when its score is strictly above the threshold. ${m.thresholds.image === null ? 'The checkpoint has no calibrated threshold: the slider starts at a fallback value.' : `Calibrated image threshold <b>${fmt(m.thresholds.image)}</b> (${esc(m.thresholds.description)}).`}${px === null ? '' : ` Pixel threshold (predicted masks, fixed): <b>${fmt(px)}</b>.`}</p>
<div class="controls">
<label for="threshold"><b>Image threshold</b></label>
<input type="range" id="threshold" min="${range.min}" max="${range.max}" step="any" value="${t0}" aria-label="image threshold">
<input type="number" id="threshold-value" step="any" value="${Number(t0.toPrecision(7))}" aria-label="image threshold value">
<span class="muted" id="threshold-norm"></span>
<button type="button" id="threshold-reset">reset to calibrated</button>
</div>
<table id="counts"><thead><tr><th>Category</th><th>Images</th><th>Good</th><th>Defective</th><th>Pass</th><th>Fail</th><th title="defective and rejected">TP caught</th><th title="defective but passed">FN missed</th><th title="good but rejected">FP false reject</th><th title="good and passed">TN</th><th title="FP / good">False-reject rate</th><th title="FN / defective">Miss rate</th></tr></thead>
<tbody>
${countRows.join('\n')}
</tbody></table>
</section>
<div class="row">
<section id="roc-section"><h2>ROC curve (image level)</h2><div class="chart"><canvas id="roc-chart" aria-label="ROC curve"></canvas></div>
<p class="muted small">From the scores in results.json; the dots mark the operating point at the current threshold.</p></section>
<section id="hist-section"><h2>Score histogram</h2><div class="chart"><canvas id="hist-chart" aria-label="score histogram"></canvas></div>
<p class="muted small">Good vs defective test images; black line: current threshold, dashed: calibrated. <label><input type="checkbox" id="hist-log"> log score axis</label></p></section>
</div>
<p class="notes" id="chart-note" hidden></p>
<section id="gallery-section">
<h2>Test images by score</h2>
${galleryCount ? `<div class="muted small">Highest score first. Heat map: jet colours from 0 (blue) to 2 x the pixel threshold (red; green = pixel threshold), predicted-mask contour in magenta. Predicted mask: map &gt; pixel threshold, at thumbnail resolution.</div>
<div class="controls" style="margin-top:8px">
<span>show</span>
<button type="button" data-filter="all" class="on">all</button><button type="button" data-filter="errors">errors (FP + FN)</button><button type="button" data-filter="flagged">rejected</button><button type="button" data-filter="defective">defective</button><button type="button" data-filter="good">good</button>
<span class="muted"><span id="gallery-shown">${galleryCount}</span> of ${galleryCount} shown</span>
<span class="legend small"><span><i class="swatch" style="background:var(--tp)"></i>TP</span><span><i class="swatch" style="background:var(--tn)"></i>TN</span><span><i class="swatch" style="background:var(--fp)"></i>FP (dashed)</span><span><i class="swatch" style="background:var(--fn)"></i>FN (dashed)</span></span>
</div>
<div class="gallery" id="gallery">
${cards}
</div>` : '<p class="muted" id="gallery-missing">No gallery: pass the dataset (<code>--data DIR</code>, or <code>--normal</code>/<code>--abnormal</code> as for <code>ntsnet test</code>) so the report can compute heat maps.</p>'}
</section>
<p class="muted small">Charts: Chart.js ${esc(cjs.version)} (MIT licence), inlined.</p>
</main>
<script>${cjs.source}</script>
<script type="application/json" id="report-data">${safeInlineJson(clientData)}</script>
<script>${clientScript()}</script>
</body>
</html>
`;
}

const dataUri = (mime: string, buf: Buffer): string => `data:${mime};base64,${buf.toString('base64')}`;

/**
 * Thumbnails of one test image: the image (aspect ratio kept, longest side `thumb`), its ground-truth mask, the heat
 * map (map resized bilinearly to the thumbnail, jet over 0 .. 2 x pixel, 50 % over the image, predicted-mask contour)
 * and the predicted mask (resized map > pixel).
 * @param map `[size, size]` anomaly map at the model's resolution.
 */
export async function makeThumbs(item: TestItem, map: Float32Array, size: number, pixel: number, thumb: number): Promise<Thumbs> {
  const rgb = await loadImageRgb8(item.path);
  const scale = thumb / Math.max(rgb.width, rgb.height);
  const w = Math.max(1, Math.round(rgb.width * scale)), h = Math.max(1, Math.round(rgb.height * scale));
  const small = new Uint8Array(await sharp(Buffer.from(rgb.data.buffer, rgb.data.byteOffset, rgb.data.length), { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
    .resize(w, h, { fit: 'fill' }).raw().toBuffer());
  const full = resizeBilinear(map, size, size, w, h);
  const pred = new Uint8Array(w * h);
  let area = 0;
  for (let i = 0; i < full.length; i++) if (full[i]! > pixel) { pred[i] = 255; area++; }
  const heat = overlayRgb({ data: small, width: w, height: h }, full, { mapWidth: w, mapHeight: h, vmin: 0, vmax: 2 * pixel, alpha: 0.5 });
  drawContour(heat, pred, w, h);
  const jpeg = (px: Uint8Array): Promise<Buffer> => sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 82 }).toBuffer();
  const png1 = (px: Uint8Array): Promise<Buffer> => sharp(px, { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').png({ compressionLevel: 9 }).toBuffer();
  const out: Thumbs = { image: dataUri('image/jpeg', await jpeg(small)), heat: dataUri('image/jpeg', await jpeg(heat)), pred: dataUri('image/png', await png1(pred)), predArea: area / (w * h), width: w, height: h };
  if (item.maskPath) {
    const m = await loadMaskFull(item.maskPath);
    if (maskAlignment(m, rgb) === 'mismatch') out.gtNote = 'mask does not fit the image';
    else {
      const g = resizeNearest(m.data, m.width, m.height, w, h);
      for (let i = 0; i < g.length; i++) g[i] = g[i] ? 255 : 0;
      out.gt = dataUri('image/png', await png1(g));
    }
  }
  return out;
}

/**
 * Reads and checks results.json (a folder holding it, or the file).
 * @throws Error naming the file when it is missing or not written by `ntsnet test` / `ntsnet fit --test`.
 */
export async function readResultsFile(location: string): Promise<{ file: string; data: ResultsFile }> {
  const file = location.endsWith('.json') ? location : path.join(location, RESULTS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`${file} not found. Pass the output folder of 'ntsnet test' or 'ntsnet fit --test' (it holds ${RESULTS_FILE}).`);
  }
  let data: ResultsFile;
  try {
    data = JSON.parse(text) as ResultsFile;
  } catch {
    throw new Error(`${file} is not valid JSON (interrupted write?). Re-run 'ntsnet test'.`);
  }
  const bad = `${file} is not an ntsnet results file (written by 'ntsnet test' or 'ntsnet fit --test')`;
  if (!data || !Array.isArray(data.results) || data.results.length === 0) throw new Error(`${bad}: no 'results'.`);
  for (const r of data.results) {
    if (typeof r.category !== 'string' || !Array.isArray(r.images)) throw new Error(`${bad}: a result has no category or images.`);
    for (const im of r.images)
      if (typeof im.file !== 'string' || (im.label !== 0 && im.label !== 1) || typeof im.score !== 'number' || !Number.isFinite(im.score))
        throw new Error(`${bad}: image entry ${JSON.stringify(im).slice(0, 120)} needs file, label 0/1 and a finite score.`);
    r.notes ??= [];
    r.counts ??= { test: r.images.length, good: r.images.filter((i) => i.label === 0).length, defective: r.images.filter((i) => i.label === 1).length, pixels: 0 };
  }
  return { file, data };
}

/** Options of {@link createReport}. */
export interface ReportOptions {
  /** Folder with results.json (output of `ntsnet test` / `ntsnet fit --test`), or the results.json file. */
  runDir: string;
  /** Checkpoint folder or model.safetensors (default: `runDir`). */
  checkpoint?: string;
  /** Test datasets (as `ntsnet test` builds them); without them the report has no gallery. */
  datasets?: SplitDataset[];
  /** Output HTML file. */
  out: string;
  /** Thumbnail size, longest side in pixels (default 128). */
  thumbSize?: number;
  /** Images per forward pass when recomputing heat maps (default: the checkpoint's evalBatchSize). */
  batchSize?: number;
  log?: (line: string) => void;
}

/** What {@link createReport} wrote. */
export interface ReportSummary {
  file: string;
  bytes: number;
  images: number;
  /** Images with thumbnails in the gallery. */
  gallery: number;
  notes: string[];
}

/**
 * Builds the report: reads results.json and the checkpoint metadata; when datasets are given, loads the model,
 * re-scores their test images (heat maps) and makes thumbnails; writes one self-contained HTML file atomically.
 * Output-folder checks (outside the datasets) are the caller's job.
 * @throws Error when results.json or the checkpoint cannot be read, or a results.json image is missing from the
 *   given dataset.
 */
export async function createReport(tf: Tf | undefined, opts: ReportOptions): Promise<ReportSummary> {
  const log = opts.log ?? (() => {});
  const thumbSize = opts.thumbSize ?? DEFAULT_THUMB_SIZE;
  if (!(Number.isInteger(thumbSize) && thumbSize >= 16 && thumbSize <= 1024)) throw new Error(`thumbnail size must be an integer in 16..1024 (got ${thumbSize}).`);
  const { file: resultsFile, data } = await readResultsFile(opts.runDir);
  const runDir = opts.runDir.endsWith('.json') ? path.dirname(opts.runDir) : opts.runDir;
  const ckpt = opts.checkpoint ?? runDir;
  const ckptFile = checkpointWeightsFile(ckpt);
  if (!(await stat(ckptFile).catch(() => undefined))?.isFile())
    throw new Error(`Checkpoint ${ckptFile} not found: the report needs the checkpoint's thresholds${opts.datasets ? ' and model' : ''}. Pass --checkpoint DIR (the folder written by 'ntsnet fit') when results.json is elsewhere.`);
  const notes: string[] = [], thresholdNotes: string[] = [];
  const results = data.results;

  let meta: CheckpointMeta = await readCheckpointMeta(ckpt);
  const rc = data.checkpoint;
  if (rc && (rc.bestEpoch !== undefined && rc.bestEpoch !== meta.bestEpoch || (rc.config?.model?.imageSize !== undefined && rc.config.model.imageSize !== meta.config.model.imageSize)))
    notes.push(`${resultsFile} was written with another checkpoint (best epoch ${rc.bestEpoch}, ${rc.config?.model?.imageSize} px) than ${ckptFile} (best epoch ${meta.bestEpoch}, ${meta.config.model.imageSize} px): heat maps and thresholds come from the latter.`);

  // Thresholds: calibrated (checkpoint) or a fallback for very old checkpoints.
  let image: number | null = null, pixel: number | null = null, initial: number, description: string;
  try {
    const th = effectiveThresholds(meta);
    image = th.image; pixel = th.pixel; initial = th.image;
    for (const n of th.notes) thresholdNotes.push(n);
    const t = meta.thresholds;
    description = t
      ? (t.imageMethod === 'f1'
        ? `F1-optimal on ${t.normal.count} normal + ${t.f1?.defectiveCount} defective validation images`
        : `(1 + ${t.rule.margin}) x max(mean + ${t.rule.sigmas} std, max) of ${t.normal.count} normal ${t.source} scores`)
      : 'recomputed from the validation scores stored in the checkpoint';
    for (const w of t?.warnings ?? []) thresholdNotes.push(`calibration: ${w}`);
  } catch {
    const scores = results.flatMap((r) => r.images.map((i) => i.score)).sort((a, b) => a - b);
    initial = (scores[0]! + scores[scores.length - 1]!) / 2;
    description = 'none';
    thresholdNotes.push('the checkpoint has no calibrated thresholds and no validation scores (older ntsnet): the slider starts mid-range and predicted masks use that value as pixel threshold.');
  }

  const thumbs = new Map<string, Thumbs>();
  if (opts.datasets?.length) {
    if (!tf) throw new Error('createReport: a TF.js instance is needed to compute heat maps.');
    const loaded = await loadCheckpoint(tf, ckpt);
    meta = loaded.meta;
    const model = loaded.model;
    const pixelT = pixel ?? initial;
    try {
      const size = model.config.imageSize;
      const used = new Set<number>();
      for (const [c, r] of results.entries()) {
        let di = opts.datasets.findIndex((d, k) => !used.has(k) && d.name === r.category);
        if (di < 0 && opts.datasets.length === results.length && !used.has(c)) di = c;
        if (di < 0) {
          notes.push(`no dataset given for category ${r.category}: its images are not in the gallery (pass its folder as for 'ntsnet test').`);
          continue;
        }
        used.add(di);
        const ds = opts.datasets[di]!;
        const byFile = new Map(ds.test.map((t) => [path.relative(ds.root, t.path).split(path.sep).join('/'), t]));
        const items = r.images.map((im) => {
          const t = byFile.get(im.file);
          if (!t) throw new Error(`${r.category}: test image ${im.file} of ${resultsFile} is not in the dataset at ${ds.root}. Pass the same dataset as for 'ntsnet test' (--data or --normal/--abnormal).`);
          return t;
        });
        log(`${r.category}: scoring ${items.length} test image(s) for heat maps`);
        // One batch at a time: memory is bounded by the batch and the thumbnails, not by the test split.
        let worst = 0;
        for (const idx of chunks([...items.keys()], opts.batchSize ?? meta.config.train.evalBatchSize)) {
          const set = await loadImageSet(idx.map((j) => items[j]!.path), size);
          const { scores, maps } = scoreImageSet(tf, model, set, idx.length, true);
          idx.forEach((j, k) => { const im = r.images[j]!; worst = Math.max(worst, Math.abs(scores[k]! - im.score) / Math.max(Math.abs(im.score), 1e-12)); });
          await mapLimit(idx, 4, async (j, k) => {
            thumbs.set(`${c}/${j}`, await makeThumbs(items[j]!, maps!.subarray(k * size * size, (k + 1) * size * size), size, pixelT, thumbSize));
          });
        }
        if (worst > 1e-3)
          notes.push(`${r.category}: scores recomputed with the checkpoint differ from ${RESULTS_FILE} by up to ${(100 * worst).toFixed(2)} % (other checkpoint or changed images?): the charts and counts use ${RESULTS_FILE}, the heat maps the checkpoint.`);
      }
    } finally {
      model.dispose();
    }
  } else {
    notes.push('no dataset given: the gallery (images, masks, heat maps) is left out; pass --data DIR (or --normal/--abnormal) as for ntsnet test.');
  }
  for (const n of [...thresholdNotes, ...notes]) log(`note: ${n}`);

  const m = meta.config.model;
  const teacher = `teacher ${meta.teacher.description ?? teacherLabel(meta.teacher)}${meta.teacher.sha256 ? ` (SHA-256 ${meta.teacher.sha256.slice(0, 12)}...)` : ''}`;
  const incomplete = incompleteTrainingWarning(meta, ckpt);
  if (incomplete) notes.unshift(`WARNING: ${incomplete}`);
  const degenerate = [
    ...(meta.health?.degenerate ? meta.health.problems.map((p) => `after fit (${meta.health!.images} ${meta.health!.on} images): ${p}`) : []),
    ...results.filter((r) => r.health?.degenerate).flatMap((r) => r.health.problems.map((p) => `${r.category} (${r.health.images} test images): ${p}`)),
  ];
  for (const d of degenerate) log(`WARNING: DEGENERATE DETECTOR: ${d}`);
  const html = renderReportHtml({
    title: `ntsnet report: ${results.map((r) => r.category).join(', ')}`,
    runDir,
    createdAt: new Date().toISOString(),
    resultsCreatedAt: data.createdAt,
    degenerate,
    modelLine: `NTSNet, ${meta.config.preset} preset, student ${m.studentBlock}, ${teacher} / ${m.teacherNorm}, layers ${m.layers.join(',')}, ${m.imageSize} px, best epoch ${meta.bestEpoch}`,
    thresholds: { image, initial, pixel, description, notes: thresholdNotes },
    results,
    thumbs,
    thumbSize,
    notes,
    chartJs: chartJsSource(),
  });
  await writeFileAtomic(opts.out, html);
  return { file: path.resolve(opts.out), bytes: Buffer.byteLength(html), images: results.reduce((a, r) => a + r.images.length, 0), gallery: thumbs.size, notes };
}
