import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import { loadMaskForImage, SKIPPED_BAD } from '../data/image.js';
import type { SplitDataset } from '../data/folder.js';
import { auroc } from '../metrics/auroc.js';
import type { NTSNet } from '../model/ntsnet.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { chunks, loadImageSet, toBatch, type ImageSet } from './batches.js';
import { mapLimit } from '../util/concurrency.js';
import type { CheckpointMeta } from './checkpoint.js';
import { teacherLabel, type TeacherIdentity } from '../model/weights/resolve.js';
import { assessDetector, borderBand, borderMaximaCount, healthBanner, type DetectorHealth } from './health.js';
import { predictInto } from './score.js';
import { BinnedAuroc } from '../metrics/binnedAuroc.js';

/** Per-image result of an evaluation. */
export interface ImageResult {
  /** Path relative to the category folder, '/'-separated. */
  file: string;
  defectType: string;
  label: 0 | 1;
  score: number;
}

/** Metrics of one category (paper Table 1 row). */
export interface EvalResult {
  category: string;
  imageAuroc: number | null;
  /** Null when masks are missing for some defective image, or only one class is present. */
  pixelAuroc: number | null;
  /** Largest possible |pixelAuroc - exact pixel AUROC| from the binned accumulation (metrics/binnedAuroc.ts). */
  pixelAurocBound?: number;
  /** Why a metric is null, or what the metrics do not cover (also logged as `warning:` lines and written to metrics.md). */
  notes: string[];
  /** Files skipped as unreadable with --skip-bad (image or mask, with the reason). */
  skipped?: string[];
  /** Detector-health check on the test images (engine/health.ts): near-constant scores, map maxima on the border. */
  health: DetectorHealth;
  counts: { test: number; good: number; defective: number; pixels: number };
  seconds: number;
  imagesPerSecond: number;
  images: ImageResult[];
}

/**
 * Scores the test split of a dataset (see data/dataset.ts: MVTec AD category or folder dataset) and computes image
 * AUROC and pixel AUROC over all test pixels at the model's input resolution (masks resized nearest-neighbour and
 * binarised as documented in docs/data.md; a mask whose aspect ratio differs from its image is refused), and checks
 * the detector's health on the test images (engine/health.ts; `teacher` only shapes the likely-cause message).
 *
 * Memory is bounded by the batch, not the test split: images and masks are decoded one batch at a time (the next
 * batch while the current one is scored), and pixel AUROC is accumulated in fixed-size bins ({@link BinnedAuroc}:
 * within `pixelAurocBound` of the exact value, recorded in the result). Only the per-image scores are kept.
 * @param batchSize - images per forward pass and per decoded chunk.
 * @throws Error when the test split is empty or a mask cannot be aligned with its image.
 */
export async function evaluate(
  tf: Tf, model: NTSNet, cat: SplitDataset, batchSize: number, log: (l: string) => void = () => {},
  teacher?: Pick<TeacherIdentity, 'imagenet' | 'form'>,
  /** Another scoring engine (as `ntsnet test --engine onnxruntime`); default NTSNet.predict on tfjs-node. */
  scorer?: (set: ImageSet, n: number, keepMaps: boolean) => Promise<{ scores: Float32Array; maps?: Float32Array }>,
): Promise<EvalResult> {
  const t0 = Date.now();
  for (const w of cat.warnings) log(`warning: ${w}`);
  if (cat.test.length === 0) throw new Error(`${cat.root}: the dataset has no test images.`);
  const size = model.config.imageSize, hw = size * size, n = cat.test.length;
  const missing = cat.test.filter((t) => t.label === 1 && !t.maskPath);
  const pixels = missing.length ? null : new BinnedAuroc();
  const scores = new Float32Array(n);
  const groups = chunks([...Array(n).keys()], Math.max(1, batchSize));
  const load = async (idx: readonly number[]): Promise<{ set: ImageSet; gt: Uint8Array | null }> => {
    const items = idx.map((i) => cat.test[i]!);
    const [set, gt] = await Promise.all([loadImageSet(items.map((t) => t.path), size), pixels ? loadMasks(items, size) : null]);
    return { set, gt };
  };
  let scoreMs = 0, atBorder = 0;
  let next = load(groups[0]!);
  for (const [g, idx] of groups.entries()) {
    const { set, gt } = await next;
    if (g + 1 < groups.length) {
      next = load(groups[g + 1]!);
      next.catch(() => {}); // awaited on the next turn; a failure then must not also be an unhandled rejection
    }
    const ts = performance.now();
    const part = new Float32Array(idx.length), maps = new Float32Array(idx.length * hw);
    if (scorer) {
      const r = await scorer(set, idx.length, true);
      part.set(r.scores); maps.set(r.maps!);
    } else predictInto(model, toBatch(tf, set, [...idx.keys()]), part, maps, 0, hw);
    scoreMs += performance.now() - ts;
    scores.set(part, idx[0]!);
    if (pixels && gt) pixels.add(maps, gt);
    atBorder += borderMaximaCount(maps, idx.length, size, borderBand(size));
  }
  const labels = cat.test.map((t) => t.label);
  const notes: string[] = [];
  const imageAuroc = auroc(scores, labels);
  if (imageAuroc === null) {
    const onlyNormal = labels.every((l) => l === 0);
    notes.push(`image AUROC undefined: the test set has only ${onlyNormal ? 'normal' : 'defective'} images (${labels.length}), no ${onlyNormal ? 'defective' : 'normal'} ones; add some to measure it (per-image scores are still written).`);
  }
  let pixelAuroc: number | null = null, pixelAurocBound: number | undefined;
  if (!pixels) {
    notes.push(`pixel AUROC not available: ${missing.length} defective image(s) have no mask (e.g. ${path.relative(cat.root, missing[0]!.path)}); image AUROC does not need masks.`);
  } else {
    const r = pixels.result();
    pixelAuroc = r.auroc;
    pixelAurocBound = r.tieBound;
    if (pixelAuroc === null)
      notes.push(r.positives > 0
        ? 'pixel AUROC undefined: every test pixel is marked defective in the masks (no normal pixels).'
        : 'pixel AUROC undefined: the masks mark no defective pixel (no defective test image, or only empty masks).');
  }
  // Files left out by --skip-bad: the metrics cover fewer images than the folder holds, and the results say so.
  const skipped = cat.warnings.filter((w) => w.startsWith(SKIPPED_BAD)).map((w) => w.slice(SKIPPED_BAD.length));
  if (skipped.length) notes.push(`${skipped.length} unreadable file(s) of the dataset were skipped (--skip-bad), so the metrics cover ${n} test image(s) only: ${skipped.slice(0, 3).join('; ')}${skipped.length > 3 ? `; ... (all in "skipped")` : ''}`);
  // Undefined metrics are warnings, not silent "n/a" cells: say so on the log (stderr for the CLI) too.
  for (const note of notes) log(`warning: ${cat.name}: ${note}`);
  const health = assessDetector(scores, { borderFraction: atBorder / n }, size, 'test', model.config, teacher);
  for (const l of healthBanner(health)) log(l);
  const good = labels.filter((l) => l === 0).length;
  return {
    category: cat.name, imageAuroc, pixelAuroc, ...(pixelAurocBound !== undefined ? { pixelAurocBound } : {}), notes, ...(skipped.length ? { skipped } : {}), health,
    counts: { test: n, good, defective: n - good, pixels: n * hw },
    seconds: (Date.now() - t0) / 1000, imagesPerSecond: n / (scoreMs / 1000),
    images: cat.test.map((t, i) => ({ file: path.relative(cat.root, t.path).split(path.sep).join('/'), defectType: t.defectType, label: t.label, score: scores[i]! })),
  };
}

/** Masks of `items` at `size` x `size` ([items * size * size] uint8 0/1; all zero for images without a mask). */
async function loadMasks(items: readonly SplitDataset['test'][number][], size: number): Promise<Uint8Array> {
  const hw = size * size;
  const gt = new Uint8Array(items.length * hw);
  await mapLimit(items, 4, async (t, i) => { if (t.maskPath) gt.set(await loadMaskForImage(t.maskPath, t.path, size), i * hw); });
  return gt;
}

/**
 * Ground-truth masks of a test split at `size` x `size` (nearest-neighbour, binarised as docs/data.md; all zero for
 * normal images): [N * size * size] uint8 0/1, image-major. Null when some defective image has no mask.
 * Holds the whole split in memory: for the benchmark's AUPRO / F1-max, not for `test`.
 * @throws DataError when a mask cannot be aligned with its image.
 */
export async function loadTestMasks(ds: SplitDataset, size: number): Promise<Uint8Array | null> {
  if (ds.test.some((t) => t.label === 1 && !t.maskPath)) return null;
  return loadMasks(ds.test, size);
}

const pct = (v: number | null): string => (v === null ? 'n/a' : (100 * v).toFixed(1));

/** Markdown table shaped like the paper's Table 1 (values in %), with the mean row when there are several categories. */
export function metricsTable(results: readonly EvalResult[], title: string): string {
  const rows = results.map((r) => `| ${r.category} | ${pct(r.imageAuroc)} | ${pct(r.pixelAuroc)} |`);
  const mean = (f: (r: EvalResult) => number | null): number | null => {
    const v = results.map(f).filter((x): x is number => x !== null);
    return v.length === results.length && v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  if (results.length > 1) rows.push(`| **mean** | ${pct(mean((r) => r.imageAuroc))} | ${pct(mean((r) => r.pixelAuroc))} |`);
  return [`### ${title}`, '', '| Category | Image AUROC | Pixel AUROC |', '|---|---|---|', ...rows, ''].join('\n');
}

/** Writes results.json (metrics, per-image scores, checkpoint metadata, timings) and metrics.md, atomically. */
export async function writeResults(outDir: string, results: EvalResult[], meta: CheckpointMeta, extra: Record<string, unknown> = {}): Promise<{ json: string; md: string }> {
  const json = path.join(outDir, 'results.json');
  const md = path.join(outDir, 'metrics.md');
  const m = meta.config.model;
  const title = `NTSNet (${meta.config.preset} preset, student ${m.studentBlock}, teacher ${teacherLabel(meta.teacher)} / ${m.teacherNorm}, ${m.imageSize} px, best epoch ${meta.bestEpoch})`;
  const degenerateAny = !!meta.health?.degenerate || results.some((r) => r.health?.degenerate);
  await writeJsonAtomic(json, { degenerate: degenerateAny, results, checkpoint: { config: meta.config, teacher: meta.teacher, bestEpoch: meta.bestEpoch, bestValLoss: meta.bestValLoss, training: meta.training ?? null, health: meta.health ?? null, expectedDetection: meta.expectedDetection ?? null, ntsnetVersion: meta.ntsnetVersion }, ...extra, createdAt: new Date().toISOString() });
  const t = meta.training;
  const incomplete = t && t.status !== 'complete' ? [`- warning: the checkpoint is INCOMPLETE: training ${t.status === 'interrupted' ? 'was interrupted' : 'stopped'} after epoch ${t.epochsDone} of ${t.epochs} (best epoch so far ${meta.bestEpoch}); these figures are not those of the finished run.`] : [];
  const notes = [...incomplete, ...results.flatMap((r) => r.notes.map((n) => `- warning: ${r.category}: ${n}`))];
  const degenerate = [
    ...(meta.health?.degenerate ? [`- **DEGENERATE DETECTOR** (after fit, ${meta.health.images} ${meta.health.on} images): ${meta.health.problems.join(' ')}`] : []),
    ...results.filter((r) => r.health?.degenerate).map((r) => `- **DEGENERATE DETECTOR** (${r.category}, ${r.health.images} test images): ${r.health.problems.join(' ')}`),
  ];
  const teacherLine = `Teacher: ${meta.teacher.description ?? teacherLabel(meta.teacher)}${meta.teacher.sha256 ? ` (SHA-256 ${meta.teacher.sha256.slice(0, 16)}...)` : ''}.`;
  // The engine the scores came from (test --engine), so that a metrics.md of an int8 model says so.
  const eng = extra.engine as { name?: string; onnx?: string; quantization?: { weightBits?: number } | null } | undefined;
  const engineLine = eng?.name ? `\nEngine: ${eng.name}${eng.onnx ? ` on ${path.basename(eng.onnx)}` : ''}${eng.quantization ? ` (int8, ${eng.quantization.weightBits ?? 7}-bit weights)` : ''}.` : '';
  const ed = meta.expectedDetection;
  const edLine = ed?.images ? `\nExpected detection (synthetic defects pasted into ${ed.images} held-out normal images; no defect labels): image AUROC ${pct(ed.imageAuroc)}, pixel AUROC ${pct(ed.pixelAuroc)}.` : '';
  await writeFileAtomic(md, `${degenerate.length ? `> **WARNING: this model does not detect defects.**\n\n${degenerate.join('\n')}\n\n` : ''}${metricsTable(results, title)}\n${teacherLine}${engineLine}${edLine}\n${notes.length ? `\n${notes.join('\n')}\n` : ''}`);
  return { json, md };
}
