import type { ModelConfig } from '../model/config.js';
import type { TeacherIdentity } from '../model/weights/resolve.js';
import type { ExpectedDetection } from './synthetic.js';

/**
 * Whether a trained detector can detect anything, judged from its own outputs on images without labels (validation
 * images after `fit`, test images in `test` / `report`). A detector that fails is "degenerate": it still writes scores
 * and maps, but they say nothing about defects, and ntsnet says so loudly instead of reporting success.
 */
export interface DetectorHealth {
  /** True when any check failed. */
  degenerate: boolean;
  /** One line per failed check, with the likely cause and the fix. */
  problems: string[];
  /** Which images the figures were computed on. */
  on: 'validation' | 'training' | 'test';
  images: number;
  /** (q90 - q10) / |median| of the image-level scores; near 0 when every image gets the same score. */
  relativeSpread: number;
  /** Share of images whose anomaly-map maximum lies within `borderPx` of the image border. */
  borderFraction: number;
  borderPx: number;
}

/** Scores whose q10..q90 range is below this fraction of their median are "near-constant". */
export const MIN_RELATIVE_SPREAD = 1e-3;
/** A detector whose map maximum is on the border for at least this share of images is "maxima on the border". */
export const MAX_BORDER_FRACTION = 0.8;
/** Synthetic-defect image AUROC at or below this is chance: the detector misses even obvious pasted defects. */
export const MIN_SYNTHETIC_AUROC = 0.55;
/** Fewer images than this cannot show either symptom reliably: the checks are skipped. */
export const MIN_HEALTH_IMAGES = 5;

function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Share of anomaly maps whose maximum lies within `border` pixels of the image edge.
 * @param maps - [N * size * size] float32, image-major, row-major. @param border - band width in pixels.
 */
export function borderMaximaFraction(maps: Float32Array, n: number, size: number, border: number): number {
  return n ? borderMaximaCount(maps, n, size, border) / n : 0;
}

/** Number of anomaly maps in `maps` ([n * size * size]) whose maximum lies within `border` px of the edge. */
export function borderMaximaCount(maps: Float32Array, n: number, size: number, border: number): number {
  const hw = size * size;
  let atBorder = 0;
  for (let i = 0; i < n; i++) {
    let best = -Infinity, at = 0;
    for (let k = 0; k < hw; k++) { const v = maps[i * hw + k]!; if (v > best) { best = v; at = k; } }
    const y = Math.floor(at / size), x = at % size;
    if (y < border || x < border || y >= size - border || x >= size - border) atBorder++;
  }
  return atBorder;
}

/** Band width (px) of the border-maxima check for maps of `size` x `size`. */
export const borderBand = (size: number): number => Math.max(1, Math.round(size / 16));

/** Likely cause of a degenerate detector, from what it was trained with. */
function likelyCause(model: Pick<ModelConfig, 'teacherNorm'>, teacher: Pick<TeacherIdentity, 'imagenet' | 'form'> | undefined): string {
  const causes: string[] = [];
  if (teacher && !teacher.imagenet) causes.push(`the teacher is ${teacher.form === 'random' ? 'a RANDOM ResNet18' : 'not a known ImageNet ResNet18'} (use ../shared/weights/resnet18-imagenet-trunk.safetensors or torchvision's resnet18-f37072fd.pth with --teacher-weights)`);
  if (model.teacherNorm === 'eman') causes.push("--teacher-norm eman moves the teacher's BatchNorm statistics towards the student's, which do not match the teacher's own activations (docs/method.md); use the default frozen_bn (or self_ema)");
  if (!causes.length) causes.push('training diverged or stopped too early (check the loss history), or the images carry no structure the teacher responds to');
  return causes.join('; and ');
}

/**
 * Checks a detector's image-level scores and anomaly maps for the signs of a useless model: near-constant scores
 * (every image looks the same to it), map maxima on the image border for most images (the score measures a border
 * artefact, not the product), and, when given, chance-level detection of synthetic defects pasted into the same images.
 * @param scores - [N] image-level scores.
 * @param maps - [N * size * size] anomaly maps, image-major; or, when the maps were streamed, the share of them whose
 *   maximum lies within {@link borderBand} px of the edge ({@link borderMaximaCount} summed over chunks / N).
 * @returns the figures and, when degenerate, one problem line per failed check naming the likely cause.
 */
export function assessDetector(
  scores: Float32Array, maps: Float32Array | { borderFraction: number }, size: number, on: DetectorHealth['on'],
  model: Pick<ModelConfig, 'teacherNorm'>, teacher?: Pick<TeacherIdentity, 'imagenet' | 'form'>,
  synthetic?: Pick<ExpectedDetection, 'images' | 'imageAuroc'>,
): DetectorHealth {
  const n = scores.length, borderPx = borderBand(size);
  if (maps instanceof Float32Array && maps.length !== n * size * size) throw new Error(`assessDetector: ${maps.length} map values for ${n} images of ${size} x ${size}`);
  const sorted = Float64Array.from(scores).sort();
  const median = n ? quantile(sorted, 0.5) : 0;
  const relativeSpread = n ? (quantile(sorted, 0.9) - quantile(sorted, 0.1)) / Math.max(Math.abs(median), 1e-30) : 0;
  const borderFraction = maps instanceof Float32Array ? borderMaximaFraction(maps, n, size, borderPx) : maps.borderFraction;
  const problems: string[] = [];
  if (n >= MIN_HEALTH_IMAGES) {
    const cause = likelyCause(model, teacher);
    if (!Number.isFinite(relativeSpread) || relativeSpread < MIN_RELATIVE_SPREAD)
      problems.push(`near-constant scores: the ${on} images' scores vary by only ${(100 * relativeSpread).toPrecision(2)} % of their median (q10..q90), so the detector cannot tell images apart. Likely cause: ${cause}.`);
    if (borderFraction >= MAX_BORDER_FRACTION)
      problems.push(`map maxima on the border: for ${Math.round(100 * borderFraction)} % of the ${on} images the anomaly map peaks within ${borderPx} px of the image edge, so the score measures a border artefact, not the product. Likely cause: ${cause}.`);
    if (synthetic && synthetic.images >= MIN_HEALTH_IMAGES && synthetic.imageAuroc !== null && synthetic.imageAuroc <= MIN_SYNTHETIC_AUROC)
      problems.push(`blind to synthetic defects: copies of the ${synthetic.images} ${on} images with pasted defects (cut-paste patches, noise blobs) score no higher than the originals (image AUROC ${(100 * synthetic.imageAuroc).toFixed(1)}, chance 50). Likely cause: ${cause}.`);
  }
  return { degenerate: problems.length > 0, problems, on, images: n, relativeSpread, borderFraction, borderPx };
}

/** The loud terminal form of a degenerate verdict (one block, every line prefixed so it stands out in logs). */
export function healthBanner(h: DetectorHealth): string[] {
  if (!h.degenerate) return [];
  return ['*'.repeat(100), `WARNING: DEGENERATE DETECTOR: this model does not detect defects (checked on ${h.images} ${h.on} images):`,
    ...h.problems.map((p) => `  - ${p}`), '*'.repeat(100)];
}
