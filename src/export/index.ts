/**
 * Portable model export (docs/export.md): an ONNX graph of NTSNet.predict plus a sidecar JSON with the config, the
 * preprocessing and the decision thresholds.
 */
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import { loadCheckpoint, type CheckpointMeta } from '../engine/checkpoint.js';
import { effectiveThresholds } from '../engine/inspect.js';
import { NTSNET_VERSION } from '../engine/paths.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/image.js';
import type { ModelConfig } from '../model/config.js';
import type { NTSNet } from '../model/ntsnet.js';
import { paramsToRaw } from '../model/params.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { buildNtsnetOnnx, ONNX_BATCH_DIM, ONNX_INPUT, ONNX_MAPS, ONNX_OPSET, ONNX_SCORES, readOnnxSummary, type OnnxSummary } from './onnx.js';

export {
  buildNtsnetOnnx, readOnnxSummary, hwioToOihw, OnnxGraphBuilder,
  ONNX_OPSET, ONNX_IR_VERSION, ONNX_INPUT, ONNX_SCORES, ONNX_MAPS, ONNX_BATCH_DIM,
  type OnnxSummary, type OnnxBuildOptions, type OnnxDim,
} from './onnx.js';

/** The ONNX model of a loaded NTSNet (its current weights and running statistics). */
export function modelToOnnx(model: NTSNet, opts: { docString?: string; metadata?: Record<string, string> } = {}): Uint8Array {
  return buildNtsnetOnnx(model.config, paramsToRaw(model.teacher), paramsToRaw(model.student), {
    producerVersion: NTSNET_VERSION,
    docString: opts.docString ?? 'NTSNet anomaly detector (ntsnet export): images [batch,3,S,S] ImageNet-normalised RGB -> scores [batch], anomaly_maps [batch,S,S]',
    metadata: { 'ntsnet.model_config': JSON.stringify(model.config), ...opts.metadata },
  });
}

/** Sidecar JSON written next to the ONNX file: everything a non-ntsnet runtime needs to use the model. */
export interface OnnxSidecar {
  format: 'ntsnet-onnx';
  version: 1;
  ntsnetVersion: string;
  /** ONNX file name (relative to the sidecar). */
  onnx: string;
  /** The checkpoint's training state (complete, or interrupted at epoch k of n); null for older checkpoints. */
  training?: CheckpointMeta['training'] | null;
  opset: number;
  createdAt: string;
  model: ModelConfig;
  input: { name: string; shape: (string | number)[]; dtype: 'float32'; layout: 'NCHW' };
  outputs: Record<string, { shape: (string | number)[]; dtype: 'float32'; description: string }>;
  preprocessing: {
    size: [number, number];
    resize: string;
    channelOrder: 'RGB';
    scale: number;
    mean: readonly number[];
    std: readonly number[];
    formula: string;
    notes: string[];
  };
  /** Decision thresholds in anomaly-map units (null when the checkpoint has none and no validation scores). */
  thresholds: {
    image: number;
    pixel: number;
    imageSource: string;
    pixelSource: string;
    rule: string;
    notes: string[];
    calibration: CheckpointMeta['thresholds'] | null;
  } | null;
  checkpoint?: { teacher: CheckpointMeta['teacher']; bestEpoch: number; bestValLoss: number | null; valScores: number[]; createdAt: string; preset: string };
}

/** Builds the sidecar for a model config and (when exporting a checkpoint) its metadata. */
export function onnxSidecar(cfg: ModelConfig, onnxFile: string, meta?: CheckpointMeta): OnnxSidecar {
  const S = cfg.imageSize;
  let thresholds: OnnxSidecar['thresholds'] = null;
  if (meta) {
    try {
      const t = effectiveThresholds(meta);
      thresholds = {
        image: t.image, pixel: t.pixel, imageSource: t.imageSource, pixelSource: t.pixelSource,
        rule: 'an image is anomalous when score > image; a pixel is defective when anomaly_maps > pixel; normalised score = score / image',
        notes: t.notes, calibration: meta.thresholds ?? null,
      };
    } catch {
      thresholds = null;
    }
  }
  return {
    format: 'ntsnet-onnx', version: 1, ntsnetVersion: NTSNET_VERSION, onnx: path.basename(onnxFile), opset: ONNX_OPSET,
    createdAt: new Date().toISOString(), model: cfg, training: meta?.training ?? null,
    input: { name: ONNX_INPUT, shape: [ONNX_BATCH_DIM, 3, S, S], dtype: 'float32', layout: 'NCHW' },
    outputs: {
      [ONNX_SCORES]: { shape: [ONNX_BATCH_DIM], dtype: 'float32', description: 'image-level anomaly score = maximum of the anomaly map' },
      [ONNX_MAPS]: { shape: [ONNX_BATCH_DIM, S, S], dtype: 'float32', description: 'anomaly map at input resolution (unitless squared feature distance, Gaussian-smoothed)' },
    },
    preprocessing: {
      size: [S, S],
      resize: 'bilinear to size x size, aspect ratio not kept (ntsnet uses libvips resize with the linear kernel, fit fill)',
      channelOrder: 'RGB',
      scale: 1 / 255,
      mean: [...IMAGENET_MEAN],
      std: [...IMAGENET_STD],
      formula: 'x[c] = (v[c] / 255 - mean[c]) / std[c], v = 8-bit sRGB value; then HWC -> CHW',
      notes: [
        'EXIF orientation applied; greyscale, palette, CMYK and 16-bit images converted to 8-bit sRGB; alpha flattened onto black',
        'maps are at the model input size: resize them back to the original image size for display (ntsnet uses bilinear)',
      ],
    },
    thresholds,
    ...(meta
      ? { checkpoint: { teacher: meta.teacher, bestEpoch: meta.bestEpoch, bestValLoss: meta.bestValLoss, valScores: meta.valScores, createdAt: meta.createdAt, preset: meta.config.preset } }
      : {}),
  };
}

/** Default sidecar path: `<out>.json` (model.onnx -> model.onnx.json). */
export function defaultSidecarPath(out: string): string {
  return `${out}.json`;
}

/** Result of {@link exportCheckpointOnnx}. */
export interface OnnxExportResult {
  onnx: string;
  sidecar: string;
  bytes: number;
  summary: OnnxSummary;
  model: NTSNet;
  meta: CheckpointMeta;
}

/** metadata_props key holding the SHA-256 of the checkpoint's weights an ONNX file was exported from. */
export const ONNX_WEIGHTS_SHA_KEY = 'ntsnet.weights_sha256';

/** The identity metadata an ONNX export of a checkpoint carries (checked by {@link assertOnnxMatchesCheckpoint}). */
export function onnxIdentity(meta: CheckpointMeta): Record<string, string> {
  return { 'ntsnet.checkpoint_created': meta.createdAt, ...(meta.weightsSha256 ? { [ONNX_WEIGHTS_SHA_KEY]: meta.weightsSha256 } : {}) };
}

/**
 * Refuses an ONNX file that was not exported from this checkpoint (its thresholds would be applied to another
 * model's scores): the file's `ntsnet.weights_sha256` metadata must equal the checkpoint's `weightsSha256`.
 * @returns undefined when it matches; otherwise the reason (for a caller that re-exports instead of failing).
 */
export function onnxCheckpointMismatch(onnx: Uint8Array, meta: CheckpointMeta, onnxFile: string): string | undefined {
  if (!meta.weightsSha256) return undefined; // checkpoint of an older ntsnet: no identity to compare
  let got: string | undefined;
  try {
    got = readOnnxSummary(onnx).metadata[ONNX_WEIGHTS_SHA_KEY];
  } catch (e) {
    return `${onnxFile} is not a readable ONNX model (${(e as Error).message.split('\n')[0]}): a damaged or partial file`;
  }
  if (got === meta.weightsSha256) return undefined;
  return got === undefined
    ? `${onnxFile} carries no checkpoint identity (exported by an older ntsnet or another tool), so it cannot be checked against this checkpoint`
    : `${onnxFile} was exported from another checkpoint (weights SHA-256 ${got.slice(0, 12)}...; this checkpoint's is ${meta.weightsSha256.slice(0, 12)}...)`;
}

/**
 * Exports a checkpoint folder to ONNX (written atomically) and its sidecar JSON. The loaded model is returned (for a
 * parity check or a benchmark): the caller disposes it.
 */
export async function exportCheckpointOnnx(tf: Tf, checkpoint: string, out: string, sidecar = defaultSidecarPath(out)): Promise<OnnxExportResult> {
  const { model, meta } = await loadCheckpoint(tf, checkpoint);
  try {
    const bytes = modelToOnnx(model, { metadata: onnxIdentity(meta) });
    await writeFileAtomic(out, bytes);
    await writeJsonAtomic(sidecar, onnxSidecar(model.config, out, meta));
    return { onnx: out, sidecar, bytes: bytes.length, summary: readOnnxSummary(bytes), model, meta };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Two deterministic check images at `size` px, NHWC, ImageNet-normalised: a textured synthetic "part" (stripes,
 * gradient and a bright square defect, 8-bit values) and standard-normal noise. @returns [2, size, size, 3].
 */
export function parityInputs(size: number): Float32Array {
  const x = new Float32Array(2 * size * size * 3);
  const plane = size * size * 3;
  for (let y = 0; y < size; y++)
    for (let xx = 0; xx < size; xx++) {
      const base = 100 + 60 * Math.sin(xx / 4) + 30 * (y / size) + ((xx * 7 + y * 13) % 11);
      let rgb = [base, base * 0.8, 90];
      if (Math.abs(xx - size / 3) < size / 10 && Math.abs(y - size / 2) < size / 10) rgb = [255, 20, 240];
      for (let c = 0; c < 3; c++) x[(y * size + xx) * 3 + c] = (Math.min(255, Math.max(0, Math.round(rgb[c]!))) / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
    }
  let s = 987654321;
  const u = (): number => { s = (s * 1103515245 + 12345) >>> 0; return (s + 1) / (2 ** 32 + 2); };
  for (let i = 0; i < plane; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), t = 2 * Math.PI * u();
    x[plane + i] = r * Math.cos(t);
    if (i + 1 < plane) x[plane + i + 1] = r * Math.sin(t);
  }
  return x;
}
