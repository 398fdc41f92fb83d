/**
 * `ntsnet export --format onnx --quantize int8`: calibration of the activation ranges on normal images with
 * onnxruntime-node, then the QDQ graph (src/export/quantize.ts). docs/export.md, "int8".
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import { loadImageSet } from '../engine/batches.js';
import { loadCheckpoint, type CheckpointMeta } from '../engine/checkpoint.js';
import { loadOrt, nhwcToNchw, type OnnxDetector } from '../engine/onnxPredict.js';
import { collectInspectionInputs } from '../engine/predict.js';
import { NTSNET_VERSION } from '../engine/paths.js';
import type { NTSNet } from '../model/ntsnet.js';
import { paramsToRaw } from '../model/params.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { onnxIdentity, onnxSidecar } from './index.js';
import { buildNtsnetOnnx, ONNX_INPUT } from './onnx.js';
import { assertInt8Supported, CALIB_PREFIX, defaultInt8WeightBits, INT8_WEIGHT_MAX, type ActRange, type Int8WeightBits } from './quantize.js';

/** What the int8 export records about its calibration (also stored as the model's `ntsnet.quantization` metadata). */
export interface Int8Calibration {
  scheme: string;
  calibrationImages: number;
  activationPoints: number;
  /** Weight precision (8: +-127, needs VNNI on x86; 7: +-63); absent in files of older ntsnet (7). */
  weightBits?: Int8WeightBits;
  /** Factor the calibrated ranges were widened by. */
  headroom?: number;
  /** Calibration quantile. */
  percentile?: number;
}

/** The q and 1 - q quantiles of `d` (a strided sample of at most 65,536 values; q = 1: the exact min and max). */
function quantileRange(d: Float32Array, q: number): ActRange {
  if (q >= 1) {
    let lo = Infinity, hi = -Infinity;
    for (let k = 0; k < d.length; k++) { const v = d[k]!; if (v < lo) lo = v; if (v > hi) hi = v; }
    return { min: lo, max: hi };
  }
  const step = Math.max(1, Math.floor(d.length / 65536));
  const sample = new Float32Array(Math.ceil(d.length / step));
  for (let k = 0, j = 0; k < d.length; k += step) sample[j++] = d[k]!;
  sample.sort();
  const at = (f: number): number => sample[Math.min(sample.length - 1, Math.max(0, Math.round(f * (sample.length - 1))))]!;
  return { min: at(1 - q), max: at(q) };
}

/**
 * Range of every activation point over the calibration images (the BatchNorm-folded float32 graph, run by
 * onnxruntime-node): with `percentile` q < 1, the mean over calibration batches of the (1 - q, q) quantiles, so that
 * rare outliers do not coarsen the uint8 steps of every other value (values beyond are clipped); with q = 1, min / max.
 * @param images - normalised images, each [S, S, 3] float32 NHWC (as loadImageSet gives), at the model's size.
 * @throws Error when no images are given.
 */
export async function calibrateInt8(model: NTSNet, images: readonly Float32Array[], batchSize = 8, percentile = INT8_PERCENTILE): Promise<Map<string, ActRange>> {
  if (!images.length) throw new Error('int8 export: no calibration images (pass normal images of the product with --calibration)');
  const cfg = model.config, S = cfg.imageSize;
  const bytes = buildNtsnetOnnx(cfg, paramsToRaw(model.teacher), paramsToRaw(model.student), { producerVersion: NTSNET_VERSION, quant: { mode: 'calibrate' } });
  const ort = await loadOrt();
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'basic', executionProviders: ['cpu'] });
  const names = session.outputNames.filter((n) => n.startsWith(CALIB_PREFIX));
  const sums = new Map<string, ActRange & { n: number }>();
  try {
    for (let i = 0; i < images.length; i += batchSize) {
      const b = Math.min(batchSize, images.length - i);
      const x = new Float32Array(b * S * S * 3);
      for (let k = 0; k < b; k++) x.set(images[i + k]!, k * S * S * 3);
      const out = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', nhwcToNchw(x, b, S, S), [b, 3, S, S]) }, names);
      for (const n of names) {
        const r = quantileRange(out[n]!.data as Float32Array, percentile);
        const id = n.slice(CALIB_PREFIX.length), acc = sums.get(id);
        if (percentile >= 1) sums.set(id, acc ? { min: Math.min(acc.min, r.min), max: Math.max(acc.max, r.max), n: 1 } : { ...r, n: 1 });
        else sums.set(id, acc ? { min: acc.min + r.min, max: acc.max + r.max, n: acc.n + 1 } : { ...r, n: 1 });
        out[n]!.dispose();
      }
    }
  } finally {
    await session.release();
  }
  return new Map([...sums].map(([id, r]) => [id, { min: r.min / r.n, max: r.max / r.n }]));
}

/**
 * Default calibration quantile of the activation ranges: chosen without defect labels, as the one of 1 (min / max),
 * 0.99999, 0.9999 and 0.999 with the smallest mean map difference to float32 on normal images, on bottle and Magnetic
 * Tile (docs/export.md, "int8").
 */
export const INT8_PERCENTILE = 0.9999;

/** Default factor the calibrated activation ranges are widened by (see modelToInt8Onnx; docs/export.md, "int8"). */
export const INT8_HEADROOM = 1.5;
/** Largest headroom accepted: at 8x a normal image's values use 1/8 of the uint8 steps. */
export const INT8_MAX_HEADROOM = 8;

/**
 * The int8 QDQ ONNX model of `model`, calibrated on `images` (normal images of the product: use its training images).
 * Same input and outputs as the float32 export.
 * @throws Error for a CoT student (no int8 form), or without calibration images.
 */
export async function modelToInt8Onnx(model: NTSNet, images: readonly Float32Array[], opts: { metadata?: Record<string, string>; batchSize?: number; percentile?: number; headroom?: number; weightBits?: Int8WeightBits } = {}): Promise<{ bytes: Uint8Array; calibration: Int8Calibration }> {
  assertInt8Supported(model.config);
  const q = opts.percentile ?? INT8_PERCENTILE;
  const h = opts.headroom ?? INT8_HEADROOM;
  if (!(h >= 1 && h <= INT8_MAX_HEADROOM)) throw new Error(`int8 export: the calibration headroom must be between 1 and ${INT8_MAX_HEADROOM} (got ${h})`);
  const bits = opts.weightBits ?? defaultInt8WeightBits();
  // Headroom widens every range beyond what the normal images reached, so that a defect's stronger activations are
  // not clipped (at the cost of coarser uint8 steps).
  const ranges = new Map([...(await calibrateInt8(model, images, opts.batchSize, q))].map(([id, r]) => [id, { min: r.min < 0 ? r.min * h : r.min, max: r.max * h }]));
  const calibration: Int8Calibration = {
    scheme: `QDQ; activations uint8 per tensor (${q >= 1 ? 'min/max over the calibration images' : `mean over calibration batches of the ${Number((1 - q).toPrecision(6))} / ${q} quantiles`}${h > 1 ? `, widened ${h}x` : ''}); weights int8 symmetric per output channel in ${bits} bits (+-${bits === 8 ? 127 : INT8_WEIGHT_MAX}); biases int32; BatchNorm folded; compared features float32`,
    calibrationImages: images.length, activationPoints: ranges.size, weightBits: bits, headroom: h, percentile: q,
  };
  const bytes = buildNtsnetOnnx(model.config, paramsToRaw(model.teacher), paramsToRaw(model.student), {
    producerVersion: NTSNET_VERSION, quant: { mode: 'int8', ranges, weightBits: bits },
    docString: 'NTSNet anomaly detector, int8 QDQ (ntsnet export --quantize int8): images [batch,3,S,S] ImageNet-normalised RGB -> scores [batch], anomaly_maps [batch,S,S]',
    metadata: { 'ntsnet.model_config': JSON.stringify(model.config), 'ntsnet.quantization': JSON.stringify(calibration), ...opts.metadata },
  });
  return { bytes, calibration };
}

/** Up to `n` of `files`, evenly spread over the list (deterministic). */
export function spreadSample<T>(files: readonly T[], n: number): T[] {
  if (files.length <= n) return [...files];
  return Array.from({ length: n }, (_, i) => files[Math.floor((i * files.length) / n)]!);
}

/**
 * Compares the int8 model with TF.js's float32 NTSNet.predict on real images: max |score difference| relative to the
 * score, max |map difference| relative to each image's score, and the mean |map difference| relative to the mean map
 * value (a label-free measure of how much the quantisation noise moves the anomaly maps).
 * @param images - normalised [S, S, 3] images at the model's size.
 */
export async function int8Parity(tf: Tf, model: NTSNet, det: OnnxDetector, images: readonly Float32Array[]): Promise<{ scoreRel: number; scoreMeanRel: number; mapRel: number; mapMeanRel: number; images: number }> {
  const S = model.config.imageSize, hw = S * S;
  let scoreRel = 0, scoreSum = 0, mapRel = 0, absDiff = 0, absRef = 0;
  for (const img of images) {
    const x = tf.tensor4d(img, [1, S, S, 3]);
    const p = model.predict(x);
    const refMap = p.maps.dataSync() as Float32Array, ref = (p.scores.dataSync() as Float32Array)[0]!;
    p.maps.dispose(); p.scores.dispose(); x.dispose();
    const o = await det.run(img, 1, S, S);
    scoreRel = Math.max(scoreRel, Math.abs(o.scores[0]! - ref) / Math.abs(ref));
    scoreSum += Math.abs(o.scores[0]! - ref) / Math.abs(ref);
    let dm = 0;
    for (let i = 0; i < hw; i++) { const e = Math.abs(o.maps[i]! - refMap[i]!); dm = Math.max(dm, e); absDiff += e; absRef += Math.abs(refMap[i]!); }
    mapRel = Math.max(mapRel, dm / Math.abs(ref));
  }
  return { scoreRel, scoreMeanRel: scoreSum / images.length, mapRel, mapMeanRel: absDiff / absRef, images: images.length };
}

/** Result of {@link exportCheckpointInt8}. */
export interface Int8ExportResult {
  onnx: string;
  sidecar: string;
  bytes: number;
  calibration: Int8Calibration;
  model: NTSNet;
  meta: CheckpointMeta;
  /** Up to 8 of the calibration images, for the caller's parity check. */
  checkImages: Float32Array[];
}

/**
 * `ntsnet export CKPT --format onnx --quantize int8 --calibration IMAGES --out FILE`: loads the checkpoint, calibrates
 * on up to `maxImages` of the images (evenly spread), writes the int8 ONNX file (with the checkpoint's identity, so that
 * `predict --onnx FILE` accepts it) and its sidecar. The caller disposes `model`.
 * @throws Error for a CoT student, an unreadable image (named), or no images.
 */
export async function exportCheckpointInt8(tf: Tf, checkpoint: string, out: string, sidecar: string, o: { calibration: string; maxImages: number; percentile?: number; headroom?: number; weightBits?: Int8WeightBits; log: (l: string) => void }): Promise<Int8ExportResult> {
  const { model, meta } = await loadCheckpoint(tf, checkpoint);
  try {
    assertInt8Supported(model.config); // before the calibration images are read
    const inputs = await collectInspectionInputs(o.calibration);
    // A category folder holds test defects and masks: calibrating on them would fit the ranges to defects.
    if (existsSync(path.join(o.calibration, 'train')) && existsSync(path.join(o.calibration, 'test')))
      throw new Error(`--calibration ${o.calibration} is a whole dataset folder (with train/ and test/): give the normal training images only, e.g. ${path.join(o.calibration, 'train', 'good')}`);
    const files = spreadSample(inputs.files, o.maxImages);
    o.log(`int8: calibrating on ${files.length} of ${inputs.files.length} image(s) in ${o.calibration}`);
    if (files.length < 16) o.log(`warning: only ${files.length} calibration image(s): the activation ranges may miss values of other normal images (give 16 or more, e.g. the training images)`);
    const set = await loadImageSet(files, model.config.imageSize);
    const { bytes, calibration } = await modelToInt8Onnx(model, set.images, { metadata: onnxIdentity(meta), percentile: o.percentile, headroom: o.headroom, weightBits: o.weightBits });
    await writeFileAtomic(out, bytes);
    await writeJsonAtomic(sidecar, { ...onnxSidecar(model.config, out, meta), quantization: { ...calibration, calibrationSource: o.calibration } });
    return { onnx: out, sidecar, bytes: bytes.length, calibration, model, meta, checkImages: spreadSample(set.images, 8) };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
