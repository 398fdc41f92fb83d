/**
 * Batch inspection (`ntsnet predict`): scores images with a checkpoint, decides normal / anomalous with its calibrated
 * thresholds (engine/threshold.ts) and writes, per image, the anomaly map (16-bit PNG and/or .npy), a binary defect
 * mask and an overlay, plus predictions.csv / predictions.json for the run. Resumable: see docs/inspection.md.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import sharp from 'sharp';
import type { Tf } from '../backend/index.js';
import { DataError, loadImage, loadImageRgb8 } from '../data/image.js';
import { mapLimit } from '../util/concurrency.js';
import { imageMetadata } from '../data/open.js';
import type { NTSNet } from '../model/ntsnet.js';
import { overlayRgb, resizeBilinear, type RgbImage } from '../report/overlay.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { chunks, type ImageSet } from './batches.js';
import { checkpointWeightsFile, type CheckpointMeta } from './checkpoint.js';
import { assertPredictOutput, collectInspectionInputs, type InspectionInputs } from './predict.js';
import { scoreImageSet } from './score.js';
import { normalTailThreshold, type Thresholds } from './threshold.js';
import { processAlive } from '../util/process.js';
import { lockFolder, LOCK_FILE, type FolderLock } from '../util/lock.js';

/** How anomaly maps are written: 16-bit greyscale PNG, float32 .npy, or both. */
export type MapFormat = 'png16' | 'npy' | 'both';

export const PREDICTIONS_CSV = 'predictions.csv';
export const PREDICTIONS_JSON = 'predictions.json';
/** Journal of finished images, one JSON line each (first line: the run's settings). Kept after the run. */
export const JOURNAL_FILE = 'predictions.partial.jsonl';
/** Contour colour drawn on overlays (magenta: absent from the jet colour map). */
export const CONTOUR_RGB: readonly [number, number, number] = [255, 0, 255];

/** The thresholds a run applies, and where each came from. */
export interface EffectiveThresholds {
  /** Image threshold (raw score units): anomalous when score > image. */
  image: number;
  /** Pixel threshold (map units): defective pixel when map > pixel. Never above `image`. */
  pixel: number;
  imageSource: 'checkpoint' | 'override' | 'checkpoint-val-scores';
  pixelSource: 'checkpoint' | 'override' | 'image-threshold';
  /** 16-bit PNG full scale: 2 x pixel threshold (see {@link encodeMapPng16}). */
  fullScale: number;
  notes: string[];
}

/**
 * The thresholds to apply: the checkpoint's calibrated ones, with `--threshold` / `--pixel-threshold` overrides.
 * The pixel threshold is lowered to the image threshold when above it, so an anomalous image always has a non-empty
 * mask at model resolution. Checkpoints written before thresholds existed: the image threshold is recomputed from
 * their stored validation scores with the same rule and the pixel threshold equals it (conservative), with a note.
 * @throws Error when an override is not a positive finite number, or nothing is available (old checkpoint without
 *   validation scores and no override).
 */
export function effectiveThresholds(meta: CheckpointMeta, overrides: { image?: number; pixel?: number } = {}): EffectiveThresholds {
  for (const [k, v] of Object.entries(overrides))
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new Error(`${k === 'image' ? '--threshold' : '--pixel-threshold'} must be a positive number (got ${v}).`);
  const notes: string[] = [];
  const stored: Thresholds | undefined = meta.thresholds;
  let image: number, imageSource: EffectiveThresholds['imageSource'];
  if (overrides.image !== undefined) {
    image = overrides.image;
    imageSource = 'override';
  } else if (stored) {
    image = stored.image;
    imageSource = 'checkpoint';
  } else if (meta.valScores.length) {
    image = normalTailThreshold(meta.valScores).threshold;
    imageSource = 'checkpoint-val-scores';
    notes.push('the checkpoint has no stored thresholds (older ntsnet): image threshold recomputed from its validation scores with the same rule.');
  } else {
    throw new Error('The checkpoint has no calibrated thresholds and no validation scores (older ntsnet, no validation images). Pass --threshold X (and optionally --pixel-threshold Y), or retrain.');
  }
  let pixel: number, pixelSource: EffectiveThresholds['pixelSource'];
  if (overrides.pixel !== undefined) {
    pixel = overrides.pixel;
    pixelSource = 'override';
  } else if (stored) {
    pixel = stored.pixel;
    pixelSource = 'checkpoint';
  } else {
    pixel = image;
    pixelSource = 'image-threshold';
    notes.push('no calibrated pixel threshold in the checkpoint: masks use the image threshold.');
  }
  if (pixel > image) {
    notes.push(`pixel threshold ${pixel} lowered to the image threshold ${image} (so that every anomalous image has defective pixels).`);
    pixel = image;
  }
  return { image, pixel, imageSource, pixelSource, fullScale: 2 * pixel, notes };
}

/**
 * Encodes a map as a 16-bit greyscale PNG: value = round(clamp(map / fullScale, 0, 1) * 65535)
 * (NaN -> 0). Decode with map ~= value / 65535 * fullScale; values >= fullScale saturate.
 * @param map [height, width] float32, row-major.
 */
export async function encodeMapPng16(map: Float32Array, width: number, height: number, fullScale: number): Promise<Buffer> {
  if (map.length !== width * height) throw new RangeError(`encodeMapPng16: map length ${map.length} does not match ${width}x${height}`);
  const u16 = new Uint16Array(map.length);
  for (let i = 0; i < map.length; i++) {
    const t = map[i]! / fullScale;
    u16[i] = t > 0 ? Math.round(Math.min(1, t) * 65535) : 0;
  }
  return sharp(u16, { raw: { width, height, channels: 1 } }).toColourspace('grey16').png().toBuffer();
}

/**
 * Encodes a [height, width] float32 map as a NumPy .npy file (format 1.0, dtype '<f4', C order), readable with
 * `numpy.load`.
 */
export function encodeNpyFloat32(map: Float32Array, width: number, height: number): Buffer {
  if (map.length !== width * height) throw new RangeError(`encodeNpyFloat32: map length ${map.length} does not match ${width}x${height}`);
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${height}, ${width}), }`;
  const pre = 10; // magic (6) + version (2) + header length (2)
  header += ' '.repeat((64 - ((pre + header.length + 1) % 64)) % 64) + '\n';
  const out = Buffer.alloc(pre + header.length + map.length * 4);
  out.write('\x93NUMPY', 0, 'latin1');
  out[6] = 1; out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, pre, 'latin1');
  for (let i = 0; i < map.length; i++) out.writeFloatLE(map[i]!, pre + header.length + i * 4);
  return out;
}

/**
 * Draws the boundary of a binary mask onto RGB pixels in place: mask pixels with a 4-neighbour outside the mask (the
 * image border counts as outside), widened to a `thickness` x `thickness` square.
 * @param rgb [height, width, 3] Uint8Array, modified.
 * @param mask [height, width], non-zero = inside.
 */
export function drawContour(rgb: Uint8Array, mask: Uint8Array, width: number, height: number, color: readonly [number, number, number] = CONTOUR_RGB, thickness = 1): void {
  const inside = (x: number, y: number): boolean => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x]! !== 0;
  const lo = -Math.floor((thickness - 1) / 2), hi = lo + thickness - 1;
  const paint = new Uint8Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      if (!inside(x, y) || (inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1))) continue;
      for (let dy = lo; dy <= hi; dy++)
        for (let dx = lo; dx <= hi; dx++) {
          const px = x + dx, py = y + dy;
          if (px >= 0 && py >= 0 && px < width && py < height) paint[py * width + px] = 1;
        }
    }
  for (let i = 0; i < paint.length; i++)
    if (paint[i]) { rgb[i * 3] = color[0]; rgb[i * 3 + 1] = color[1]; rgb[i * 3 + 2] = color[2]; }
}

/** Output files of one image, relative to the output folder ('/'-separated). */
export interface InspectionFiles {
  /** 16-bit PNG anomaly map at model resolution (map formats png16 / both). */
  map?: string;
  /** float32 .npy anomaly map at model resolution (map formats npy / both). */
  npy?: string;
  /** Binary defect mask PNG (0 / 255) at the original image size. */
  mask: string;
  /** Overlay PNG at the original image size: image, heat map, contour of the mask. */
  overlay: string;
}

/** Result for one image (one row of predictions.csv, one entry of predictions.json). */
export interface InspectedImage {
  /** Absolute path of the image. */
  path: string;
  /** Path relative to the input root, '/'-separated. */
  file: string;
  /** Raw image score (anomaly-map maximum). */
  score: number;
  /** score / image threshold (1.0 = at the threshold). */
  normalizedScore: number;
  label: 'normal' | 'anomalous';
  /** The image threshold applied. */
  threshold: number;
  /** Wall time spent on this image in milliseconds: its share of decoding + scoring its batch, plus its own outputs. */
  timeMs: number;
  /** Original image size in pixels (mask and overlay size). */
  width: number;
  height: number;
  /** Present when an output folder was given. */
  files?: InspectionFiles;
}

/** Options of {@link inspectImages}. */
export interface InspectOptions {
  /** Image file, folder (recursive) or list file (.txt, one path per line). */
  input: string;
  /** Output folder (must not be inside the input folders); without it only scores are returned. */
  out?: string;
  /** Map file format (default png16). */
  mapFormat?: MapFormat;
  /** Image-threshold override (raw score units). */
  threshold?: number;
  /** Pixel-threshold override (map units). */
  pixelThreshold?: number;
  /** Images per forward pass (default: the checkpoint's evalBatchSize). A resumed run keeps the interrupted run's value. */
  batchSize?: number;
  /** Continue an interrupted run from the journal (default true); false redoes every image. */
  resume?: boolean;
  /**
   * Write into an `out` that holds another predict run's output (its listed files are removed first) or other
   * files (same-named ones are overwritten). Without it such a folder is refused.
   */
  force?: boolean;
  /** Lock `out` for the run (default true). The queue passes false: its job lock already makes the run exclusive, across machines. */
  lock?: boolean;
  /** Checkpoint folder or file the model came from (recorded in the outputs; its hash keys the journal). */
  checkpoint: string;
  /** Called after each image (resumed images too), in input order. */
  onImage?: (r: InspectedImage, resumed: boolean) => void;
  log?: (line: string) => void;
  /** Progress bar on stderr when it is a TTY (default true). */
  progress?: boolean;
  /**
   * Scores one batch instead of `model.predict` (tfjs-node), e.g. an exported ONNX graph on onnxruntime
   * (`ntsnet predict --engine onnxruntime`). Same contract as {@link scoreImageSet}: scores [n], maps [n * S * S].
   */
  scorer?: (set: ImageSet, n: number, keepMaps: boolean) => Promise<{ scores: Float32Array; maps?: Float32Array }>;
  /** Name of the scoring engine, recorded in predictions.json and the journal (default 'tfjs-node'). */
  engine?: string;
  /**
   * Unreadable images (zero-byte, truncated, not an image, above the pixel limit) are skipped and recorded with their
   * reason in `failed`, predictions.csv (label `error`) and predictions.json, instead of stopping the run.
   */
  skipBad?: boolean;
  /** Called for each image skipped with `skipBad`. */
  onFailed?: (f: FailedImage) => void;
}

/** An image that could not be inspected (with `skipBad`). */
export interface FailedImage {
  /** Absolute path of the image. */
  path: string;
  /** Path relative to the input root, '/'-separated. */
  file: string;
  /** Why: the DataError message (names the file and the fix). */
  error: string;
}

/** Summary returned by {@link inspectImages}. */
export interface InspectionSummary {
  /** Inspected images, in input order (without the failed ones). */
  images: InspectedImage[];
  /** Images skipped because they could not be read (only with `skipBad`; otherwise the run stops at the first). */
  failed: FailedImage[];
  thresholds: EffectiveThresholds;
  /** Images taken over from an interrupted run's journal (not redone). */
  resumed: number;
  root: string;
  csv?: string;
  json?: string;
}

/** Settings that must match for a journal to be resumed. */
interface JournalHeader {
  type: 'header';
  version: 1;
  checkpointSha256: string;
  root: string;
  image: number;
  pixel: number;
  mapFormat: MapFormat;
  batchSize: number;
  /** Scoring engine when not tfjs-node (absent in journals of older runs). */
  engine?: string;
}

type JournalEntry = InspectedImage & { type: 'image'; input: { size: number; mtimeMs: number } };

async function sha256File(file: string): Promise<string> {
  return createHash('sha256').update(await fsp.readFile(file)).digest('hex');
}

const exists = async (p: string): Promise<boolean> => (await fsp.stat(p).catch(() => undefined))?.isFile() ?? false;


/** Removes writeFileAtomic temporaries (`.tmp-<name>-<pid>-<12 hex>`) of dead processes under `dir` (recursive). */
async function removeStaleTemps(dir: string): Promise<number> {
  let n = 0;
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += await removeStaleTemps(p);
    else {
      const m = /^\.tmp-.+-(\d+)-[0-9a-f]{12}$/.exec(e.name);
      if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) {
        await fsp.rm(p, { force: true });
        n++;
      }
    }
  }
  return n;
}

/**
 * Output base names (relative to the output folder, without suffix) of every image, keeping the relative folder
 * structure: `<rel dir>/<stem>`; when two images of one folder share a stem (a.png, a.jpg) both use `<stem>_<ext>`.
 */
export function outputBases(files: readonly string[], root: string): string[] {
  const rel = files.map((f) => path.relative(root, f).split(path.sep).join('/'));
  const stemOf = (r: string): string => r.slice(0, r.length - path.posix.extname(r).length);
  const count = new Map<string, number>();
  for (const r of rel) count.set(stemOf(r), (count.get(stemOf(r)) ?? 0) + 1);
  return rel.map((r) => (count.get(stemOf(r))! > 1 ? `${stemOf(r)}_${path.posix.extname(r).slice(1)}` : stemOf(r)));
}

function filesFor(base: string, fmt: MapFormat): InspectionFiles {
  return {
    ...(fmt !== 'npy' ? { map: `${base}_map.png` } : {}),
    ...(fmt !== 'png16' ? { npy: `${base}_map.npy` } : {}),
    mask: `${base}_mask.png`,
    overlay: `${base}_overlay.png`,
  };
}

/** Reads a journal: the header and the complete image lines; a torn last line (killed mid-append) is cut off. */
/**
 * The scoring engine recorded by an interrupted run's journal in `out` (read only; nothing is changed), so that
 * `predict --engine auto` resumes with the engine that run used. @returns undefined when there is no readable journal.
 */
export async function journalEngine(out: string): Promise<string | undefined> {
  const first = (await fsp.readFile(path.join(out, JOURNAL_FILE), 'utf8').catch(() => '')).split('\n', 1)[0]!;
  try {
    const h = JSON.parse(first) as Partial<JournalHeader>;
    return h.type === 'header' ? (h.engine ?? 'tfjs-node') : undefined;
  } catch {
    return undefined;
  }
}

async function readJournal(file: string): Promise<{ header?: JournalHeader; entries: JournalEntry[] }> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return { entries: [] };
  }
  const end = text.lastIndexOf('\n') + 1;
  if (end < text.length) await fsp.truncate(file, Buffer.byteLength(text.slice(0, end)));
  const lines = text.slice(0, end).split('\n').filter(Boolean);
  const out: { header?: JournalHeader; entries: JournalEntry[] } = { entries: [] };
  for (const [i, l] of lines.entries()) {
    let v: JournalHeader | JournalEntry;
    try {
      v = JSON.parse(l) as JournalHeader | JournalEntry;
    } catch {
      return i === 0 ? { entries: [] } : out; // unreadable: keep what precedes it
    }
    if (i === 0) {
      if (v.type !== 'header') return { entries: [] };
      out.header = v;
    } else if (v.type === 'image') out.entries.push(v);
  }
  return out;
}

/** CSV field quoting (RFC 4180). */
const csvField = (v: string | number): string => {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export const CSV_COLUMNS = ['path', 'file', 'score', 'normalized_score', 'label', 'threshold', 'time_ms', 'width', 'height', 'map_png', 'map_npy', 'mask', 'overlay', 'error'] as const;

/**
 * predictions.csv text: a header row, then one row per image (numbers in full precision); images that could not be
 * read (`skipBad`) follow with label `error`, empty numbers and the reason in the `error` column.
 */
export function predictionsCsv(images: readonly InspectedImage[], failed: readonly FailedImage[] = []): string {
  const rows = images.map((r) => [r.path, r.file, r.score, r.normalizedScore, r.label, r.threshold, r.timeMs, r.width, r.height, r.files?.map ?? '', r.files?.npy ?? '', r.files?.mask ?? '', r.files?.overlay ?? '', ''].map(csvField).join(','));
  const bad = failed.map((f) => [f.path, f.file, '', '', 'error', '', '', '', '', '', '', '', '', f.error].map(csvField).join(','));
  return `${[CSV_COLUMNS.join(','), ...rows, ...bad].join('\n')}\n`;
}

/**
 * Predicted mask and heat-map overlay at the image's own size: the map [size, size] resized bilinearly, mask = map >
 * pixel threshold (0 / 255, [H * W] uint8), overlay = 50 % image + jet heat map over 0 .. fullScale with the mask
 * contour ([H * W * 3] uint8). Shared by `ntsnet predict` and `ntsnet serve`.
 */
export function maskAndOverlay(rgb: RgbImage, map: Float32Array, size: number, th: Pick<EffectiveThresholds, 'pixel' | 'fullScale'>): { mask: Uint8Array; over: Uint8Array } {
  const { width, height } = rgb;
  const full = resizeBilinear(map, size, size, width, height);
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < full.length; i++) mask[i] = full[i]! > th.pixel ? 255 : 0;
  const over = overlayRgb(rgb, full, { mapWidth: width, mapHeight: height, vmin: 0, vmax: th.fullScale, alpha: 0.5 });
  drawContour(over, mask, width, height, CONTOUR_RGB, Math.max(1, Math.round(Math.min(width, height) / 256)));
  return { mask, over };
}

/** Mask at the original size (bilinear-resized map > pixel threshold, 0 / 255), overlay pixels and the map files. */
async function imageOutputs(file: string, map: Float32Array, size: number, th: EffectiveThresholds, fmt: MapFormat): Promise<{ width: number; height: number; data: Map<keyof InspectionFiles, Buffer> }> {
  const rgb = await loadImageRgb8(file);
  const { width, height } = rgb;
  const { mask, over } = maskAndOverlay(rgb, map, size, th);
  const data = new Map<keyof InspectionFiles, Buffer>();
  if (fmt !== 'npy') data.set('map', await encodeMapPng16(map, size, size, th.fullScale));
  if (fmt !== 'png16') data.set('npy', encodeNpyFloat32(map, size, size));
  data.set('mask', await sharp(mask, { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer());
  data.set('overlay', await sharp(over, { raw: { width, height, channels: 3 } }).png().toBuffer());
  return { width, height, data };
}

const round1 = (v: number): number => Math.round(v * 10) / 10;

/**
 * Decodes the images `group` of `files` for one batch. An unreadable image (DataError) stops the run with a hint
 * about `--skip-bad`, or with `skipBad` is reported to `onFailed` and left out of the batch.
 * @returns the decoded set and the indices (into `files`) it holds, in order.
 */
async function loadBatch(group: readonly number[], files: readonly string[], rels: readonly string[], size: number, skipBad: boolean, onFailed: (f: FailedImage) => void): Promise<{ set: ImageSet; ok: number[] }> {
  const loaded = await mapLimit(group, 4, async (i) => {
    try {
      return await loadImage(files[i]!, size);
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      if (!skipBad) throw new DataError(`${e.message} (Or pass --skip-bad to skip unreadable images and list them with the reason in predictions.csv / predictions.json.)`, e.path, { cause: e });
      return e;
    }
  });
  const ok: number[] = [], images: Float32Array[] = [];
  for (const [j, i] of group.entries()) {
    const v = loaded[j]!;
    if (v instanceof DataError) onFailed({ path: files[i]!, file: rels[i]!, error: v.message });
    else { ok.push(i); images.push(v); }
  }
  return { set: { size, images }, ok };
}

/**
 * Inspects images with a loaded checkpoint. With `out`: per image (relative folder structure kept) the map
 * (`<stem>_map.png` 16-bit and/or `<stem>_map.npy`, model resolution), `<stem>_mask.png` and `<stem>_overlay.png`
 * (original size), then predictions.csv and predictions.json. Every file is written atomically; a journal line is
 * appended after an image's files exist, so an interrupted run resumes without redoing finished images. Images are
 * scored in fixed batches of the input order, so a resumed run gives bit-identical results.
 * @throws Error when the output is inside an input folder, an input is missing or not an image, or an override is
 *   invalid.
 */
export async function inspectImages(tf: Tf, model: NTSNet, meta: CheckpointMeta, opts: InspectOptions): Promise<InspectionSummary> {
  const log = opts.log ?? (() => {});
  const inputs: InspectionInputs = await collectInspectionInputs(opts.input);
  for (const w of inputs.warnings) log(`warning: ${w}`);
  const out = opts.out === undefined ? undefined : path.resolve(opts.out);
  if (out) for (const d of inputs.guardDirs) await assertPredictOutput(out, d);
  const th = effectiveThresholds(meta, { image: opts.threshold, pixel: opts.pixelThreshold });
  for (const n of th.notes) log(`note: ${n}`);
  const fmt = opts.mapFormat ?? 'png16';
  if (!['png16', 'npy', 'both'].includes(fmt)) throw new Error(`map format must be png16, npy or both (got ${fmt}).`);
  const size = model.config.imageSize;
  const files = inputs.files;
  const bases = outputBases(files, inputs.root);
  const rels = files.map((f) => path.relative(inputs.root, f).split(path.sep).join('/'));
  let batchSize = opts.batchSize ?? meta.config.train.evalBatchSize;
  const engine = opts.engine ?? 'tfjs-node';

  // Journal: resume finished images when the run's settings are unchanged.
  const done = new Map<number, JournalEntry>();
  let journal: fsp.FileHandle | undefined;
  const ckptFile = checkpointWeightsFile(opts.checkpoint);
  const ckptSha = await sha256File(ckptFile);
  let lock: FolderLock | undefined;
  if (out) {
    await fsp.mkdir(out, { recursive: true });
    // Two runs writing one folder would mix their maps and scores: the second stops (as fit does).
    if (opts.lock !== false) lock = await lockFolder(out, 'predict', log);
  }
  try {
  if (out) {
    const removed = await removeStaleTemps(out);
    if (removed) log(`removed ${removed} temporary file(s) left by an interrupted run`);
    const jf = path.join(out, JOURNAL_FILE);
    const header: JournalHeader = { type: 'header', version: 1, checkpointSha256: ckptSha, root: inputs.root, image: th.image, pixel: th.pixel, mapFormat: fmt, batchSize, ...(engine !== 'tfjs-node' ? { engine } : {}) };
    const prev = await readJournal(jf);
    const same = prev.header && (['checkpointSha256', 'root', 'image', 'pixel', 'mapFormat'] as const).every((k) => prev.header![k] === header[k]) && (prev.header.engine ?? 'tfjs-node') === engine;
    // The same run's own folder may be resumed or (--no-resume) redone in place; anything else must be claimed.
    if (!same) await claimOutput(out, prev, opts.force ?? false, log);
    if (same && opts.resume !== false) {
      if (prev.header!.batchSize !== batchSize) log(`note: resuming with the interrupted run's batch size ${prev.header!.batchSize} (keeps results identical).`);
      batchSize = prev.header!.batchSize;
      const index = new Map(rels.map((r, i) => [r, i]));
      for (const e of prev.entries) {
        const i = index.get(e.file);
        if (i === undefined || !e.files) continue;
        const st = await fsp.stat(files[i]!).catch(() => undefined);
        if (!st || st.size !== e.input.size || st.mtimeMs !== e.input.mtimeMs) continue; // the image changed: redo it
        const want = filesFor(bases[i]!, fmt);
        if (JSON.stringify(e.files) !== JSON.stringify(want)) continue;
        if ((await Promise.all(Object.values(want).map((f) => exists(path.join(out, f))))).every(Boolean)) done.set(i, e);
      }
      if (done.size) log(`resuming: ${done.size} of ${files.length} image(s) already done (${JOURNAL_FILE})`);
    } else {
      await writeFileAtomic(jf, `${JSON.stringify(header)}\n`);
    }
    journal = await fsp.open(jf, 'a');
  }

  const results: InspectedImage[] = new Array(files.length);
  const failed: FailedImage[] = [];
  const useBar = (opts.progress ?? true) && process.stderr.isTTY === true;
  const bar = useBar ? new SingleBar({ format: 'predict |{bar}| {value}/{total} img | {ips} img/s | eta {eta_formatted}', stream: process.stderr, etaBuffer: 50 }, Presets.shades_classic) : undefined;
  bar?.start(files.length, 0, { ips: '-' });
  const t0 = performance.now();
  let processed = 0;
  try {
    for (const group of chunks([...files.keys()], batchSize)) {
      if (group.every((i) => done.has(i))) {
        for (const i of group) {
          const e = done.get(i)!;
          results[i] = { path: files[i]!, file: e.file, score: e.score, normalizedScore: e.normalizedScore, label: e.label, threshold: e.threshold, timeMs: e.timeMs, width: e.width, height: e.height, files: e.files };
          opts.onImage?.(results[i]!, true);
          bar?.increment(1);
        }
        continue;
      }
      // Score the whole fixed batch (also any images of it finished before an interruption: same batch = same bits).
      const tb = performance.now();
      const { set, ok } = await loadBatch(group, files, rels, size, opts.skipBad ?? false, (f) => { failed.push(f); opts.onFailed?.(f); });
      const { scores, maps } = !ok.length ? { scores: new Float32Array(0), maps: undefined } : opts.scorer ? await opts.scorer(set, ok.length, out !== undefined) : scoreImageSet(tf, model, set, ok.length, out !== undefined);
      const shareMs = (performance.now() - tb) / group.length;
      for (const [j, i] of ok.entries()) {
        const prevEntry = done.get(i);
        if (prevEntry) {
          results[i] = { path: files[i]!, file: prevEntry.file, score: prevEntry.score, normalizedScore: prevEntry.normalizedScore, label: prevEntry.label, threshold: prevEntry.threshold, timeMs: prevEntry.timeMs, width: prevEntry.width, height: prevEntry.height, files: prevEntry.files };
          opts.onImage?.(results[i]!, true);
          bar?.increment(1);
          continue;
        }
        const ti = performance.now();
        const score = scores[j]!;
        const r: InspectedImage = {
          path: files[i]!, file: rels[i]!, score, normalizedScore: score / th.image, label: score > th.image ? 'anomalous' : 'normal',
          threshold: th.image, timeMs: 0, width: 0, height: 0,
        };
        if (out) {
          const map = maps!.subarray(j * size * size, (j + 1) * size * size);
          let o: Awaited<ReturnType<typeof imageOutputs>>;
          try {
            o = await imageOutputs(files[i]!, map, size, th, fmt);
          } catch (e) {
            if (!(e instanceof DataError) || !opts.skipBad) throw e;
            const f: FailedImage = { path: files[i]!, file: rels[i]!, error: e.message };
            failed.push(f);
            opts.onFailed?.(f);
            continue;
          }
          r.width = o.width; r.height = o.height;
          r.files = filesFor(bases[i]!, fmt);
          for (const [k, buf] of o.data) await writeFileAtomic(path.join(out, r.files[k]!), buf);
        } else {
          const m = await imageMetadata(files[i]!);
          const swap = (m.orientation ?? 1) >= 5;
          r.width = (swap ? m.height : m.width) ?? 0; r.height = (swap ? m.width : m.height) ?? 0;
        }
        r.timeMs = round1(shareMs + performance.now() - ti);
        if (journal) {
          const st = await fsp.stat(files[i]!);
          const entry: JournalEntry = { type: 'image', ...r, input: { size: st.size, mtimeMs: st.mtimeMs } };
          await journal.write(`${JSON.stringify(entry)}\n`);
          await journal.datasync();
        }
        results[i] = r;
        processed++;
        opts.onImage?.(r, false);
        bar?.increment(1, { ips: (processed / ((performance.now() - t0) / 1000)).toFixed(1) });
      }
    }
  } finally {
    bar?.stop();
    await journal?.close();
  }
  const images = results.filter((r) => r !== undefined);
  const summary: InspectionSummary = { images, failed, thresholds: th, resumed: done.size, root: inputs.root };
  if (out) {
    summary.csv = path.join(out, PREDICTIONS_CSV);
    summary.json = path.join(out, PREDICTIONS_JSON);
    await writeFileAtomic(summary.csv, predictionsCsv(images, failed));
    await writeJsonAtomic(summary.json, predictionsJson(images, failed, th, meta, { input: path.resolve(opts.input), root: inputs.root, checkpoint: path.resolve(opts.checkpoint), checkpointSha256: ckptSha, mapFormat: fmt, size, batchSize, resumed: done.size, engine }));
  }
  return summary;
  } finally {
    lock?.release();
  }
}

/**
 * Before a fresh (not resumed) run writes into `out`: an empty folder is used as it is; one holding another predict
 * run's output (journal from other settings) or anything else is refused, so that no file is overwritten unasked
 * and no stale map is left beside the new predictions.csv. With `force`, the earlier predict run's files (those its
 * journal lists, predictions.csv / .json, the journal) are removed first; other files are kept and may be overwritten.
 * @throws Error naming the folder and the fix.
 */
async function claimOutput(out: string, prev: { header?: JournalHeader; entries: JournalEntry[] }, force: boolean, log: (l: string) => void): Promise<void> {
  const entries = (await fsp.readdir(out)).filter((e) => e !== LOCK_FILE);
  if (!entries.length) return;
  const earlier = prev.header !== undefined || entries.includes(PREDICTIONS_JSON);
  if (!force) {
    throw new Error(earlier
      ? `--out ${out} holds the output of another 'ntsnet predict' run (other checkpoint, input folder, thresholds, map format or engine / ONNX file): writing there would overwrite its maps and leave stale ones beside the new predictions. Choose another --out, or pass --force to replace that run's files.`
      : `--out ${out} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, e.g. ${entries.slice(0, 3).join(', ')}) and is not the output of an earlier 'ntsnet predict': its files could be overwritten. Choose a new or empty folder, or pass --force to write there anyway.`);
  }
  const listed = new Set<string>([PREDICTIONS_CSV, PREDICTIONS_JSON, JOURNAL_FILE]);
  for (const e of prev.entries) for (const f of Object.values(e.files ?? {})) if (typeof f === 'string') listed.add(f);
  let removed = 0;
  for (const f of listed) {
    const full = path.resolve(out, f);
    if (!full.startsWith(out + path.sep)) continue; // never outside the output folder
    if (await fsp.rm(full, { force: true }).then(() => true, () => false)) removed++;
  }
  log(`warning: --force: writing into ${out}${earlier ? `; removed the earlier predict run's files (${removed} listed in its journal)` : ' (files of the same name are overwritten)'}.`);
}

/** The predictions.json document (see docs/inspection.md). */
export function predictionsJson(images: InspectedImage[], failed: FailedImage[], th: EffectiveThresholds, meta: CheckpointMeta, run: { input: string; root: string; checkpoint: string; checkpointSha256: string; mapFormat: MapFormat; size: number; batchSize: number; resumed: number; engine: string }): unknown {
  const anomalous = images.filter((r) => r.label === 'anomalous').length;
  return {
    format: 'ntsnet-predictions',
    version: 1,
    input: run.input,
    root: run.root,
    checkpoint: { path: run.checkpoint, sha256: run.checkpointSha256, createdAt: meta.createdAt, bestEpoch: meta.bestEpoch, preset: meta.config.preset, imageSize: meta.config.model.imageSize, ntsnetVersion: meta.ntsnetVersion },
    thresholds: { image: th.image, pixel: th.pixel, imageSource: th.imageSource, pixelSource: th.pixelSource, notes: th.notes, calibration: meta.thresholds ?? null },
    decision: 'anomalous when score > thresholds.image; normalizedScore = score / thresholds.image; defective pixel when map > thresholds.pixel',
    map: {
      format: run.mapFormat,
      width: run.size,
      height: run.size,
      resolution: 'model input resolution (the image is resized to a square); mask and overlay are at the original image size',
      png16: { fullScale: th.fullScale, encode: 'value = round(clamp(map / fullScale, 0, 1) * 65535), fullScale = 2 * thresholds.pixel', decode: 'map = value / 65535 * fullScale (values >= fullScale are saturated)' },
      npy: "float32 little-endian [height, width], raw map values ('<f4', C order)",
    },
    mask: 'PNG, 8-bit grey, original image size: 255 where the map (resized bilinearly to the image size) > thresholds.pixel, else 0',
    overlay: `PNG, original image size: 50 % image + 50 % jet heat map (0 .. fullScale), mask contour in rgb(${CONTOUR_RGB.join(', ')})`,
    counts: { images: images.length, anomalous, normal: images.length - anomalous, resumed: run.resumed, failed: failed.length },
    batchSize: run.batchSize,
    engine: run.engine,
    images,
    failed,
    createdAt: new Date().toISOString(),
  };
}
