/** Which feature layers of the ResNet trunk are compared (paper Table 5). */
export type LayerId = 1 | 2 | 3;

/** Model hyper-parameters; saved with every checkpoint (see engine/config.ts for the full run config). */
export interface ModelConfig {
  /** Student residual-block 3x3 convolution: `cot` = improved Contextual Transformer block (paper eq. 1-2), `basic` = plain 3x3 conv (STFPM / MKD symmetric baseline). */
  studentBlock: 'cot' | 'basic';
  /**
   * Teacher BatchNorm statistics: `eman` = follow the student's batch statistics at the same path (paper eq. 6-8);
   * `frozen_bn` = pretrained statistics; `self_ema` = follow the teacher's OWN batch statistics on the training images
   * (same momentum; an AdaBN-style adaptation of the teacher to the product's images, not in the paper, see
   * docs/method.md). Affine parameters stay frozen in every mode.
   */
  teacherNorm: 'eman' | 'frozen_bn' | 'self_ema';
  /** EMAN momentum m (paper eq. 6-7). */
  emanMomentum: number;
  /**
   * Momentum schedule of the teacher statistics (`eman` / `self_ema`; not in the paper, docs/method.md "Teacher
   * normalisation"): `constant` = m at every step (eq. 6-7 as written, the default when absent); `cosine` = m rises
   * from `emanMomentum` to 1 over training, m_k = 1 - (1 - m)(cos(pi k / K) + 1) / 2 (BYOL's schedule), so the
   * statistics settle and the student's target stops moving towards the end.
   */
  emanSchedule?: 'constant' | 'cosine';
  /**
   * Feature scales whose teacher BatchNorms follow the moving average (`eman` / `self_ema`): scale 1 = the stem
   * (`bn1`) and layer1, 2 = layer2, 3 = layer3. The others keep their pretrained statistics. Absent = every scale.
   */
  emanScales?: LayerId[];
  /** Teacher / student depth (paper Table 4). Only 18 has torchvision weights wired in. */
  teacherDepth: 18 | 34;
  studentDepth: 18 | 34;
  /** Compared layers, a non-empty subset of {1, 2, 3}. */
  layers: LayerId[];
  /** Fusion of per-layer anomaly maps: `sum` (paper eq. 12) or `product` (STFPM). */
  fusion: 'sum' | 'product';
  /** Gaussian smoothing sigma in pixels of the input resolution (paper eq. 13); 0 disables. */
  sigma: number;
  /** Square input size in pixels. */
  imageSize: number;
  /**
   * CoT block details: grouped key convolution, attention heads, hidden width divisor of the attention MLP; and two
   * choices the paper leaves open (docs/method.md, "CoT investigation"): `downsample` = how a stride-2 block
   * subsamples (`strided`: strided key 3x3 and strided 1x1 query / value convolutions, the default; `avgpool`: a 3x3
   * stride-2 average pool in front of a stride-1 block, as CoTNet does), and `valueInit` = the value path's second
   * 1x1 convolution initialised Kaiming-normal (default) or to zero (the block starts as its static key path).
   * Absent fields mean the defaults, so older checkpoints load unchanged.
   */
  cot: { groups: number; heads: number; reduction: number; downsample?: 'strided' | 'avgpool'; valueInit?: 'kaiming' | 'zero' };
}

/**
 * The shipped defaults, chosen by measurement (docs/method.md "Defaults"; benchmark run docs/results/cpu-imagenet-2026-12-01):
 * with the ImageNet teacher the plain student and frozen teacher statistics measured best on both datasets; the
 * paper's text (CoT student, literal EMAN) stays available as named options (`studentBlock: 'cot'`, `teacherNorm: 'eman'`).
 */
export const DEFAULT_MODEL_CONFIG: ModelConfig = {
  studentBlock: 'basic',
  teacherNorm: 'frozen_bn',
  emanMomentum: 0.99,
  teacherDepth: 18,
  studentDepth: 18,
  layers: [1, 2, 3],
  fusion: 'sum',
  sigma: 4,
  imageSize: 256,
  cot: { groups: 4, heads: 4, reduction: 4 },
};

/**
 * Checks a model config and throws an Error listing every invalid field and the accepted values.
 */
export function validateModelConfig(c: ModelConfig): void {
  const errs: string[] = [];
  if (c.studentBlock !== 'cot' && c.studentBlock !== 'basic') errs.push(`studentBlock must be 'cot' or 'basic' (got ${String(c.studentBlock)})`);
  if (!['eman', 'frozen_bn', 'self_ema'].includes(c.teacherNorm)) errs.push(`teacherNorm must be 'eman', 'frozen_bn' or 'self_ema' (got ${String(c.teacherNorm)})`);
  if (!(c.emanMomentum >= 0 && c.emanMomentum < 1)) errs.push(`emanMomentum must be in [0, 1) (got ${c.emanMomentum})`);
  if (c.emanSchedule !== undefined && c.emanSchedule !== 'constant' && c.emanSchedule !== 'cosine') errs.push(`emanSchedule must be 'constant' or 'cosine' (got ${String(c.emanSchedule)})`);
  if (c.emanScales !== undefined && (!Array.isArray(c.emanScales) || c.emanScales.length === 0 || c.emanScales.some((l) => ![1, 2, 3].includes(l)) || new Set(c.emanScales).size !== c.emanScales.length))
    errs.push(`emanScales must be a non-empty subset of 1,2,3 without repeats (got ${JSON.stringify(c.emanScales)})`);
  if (c.teacherNorm === 'frozen_bn' && (c.emanSchedule === 'cosine' || c.emanScales !== undefined))
    errs.push("emanSchedule / emanScales only apply to teacherNorm 'self_ema' or 'eman' (the frozen teacher's statistics never move)");
  if (![18, 34].includes(c.teacherDepth) || ![18, 34].includes(c.studentDepth)) errs.push('teacherDepth/studentDepth must be 18 or 34');
  if (!Array.isArray(c.layers) || c.layers.length === 0 || c.layers.some((l) => ![1, 2, 3].includes(l)) || new Set(c.layers).size !== c.layers.length)
    errs.push(`layers must be a non-empty subset of 1,2,3 without repeats (got ${JSON.stringify(c.layers)})`);
  if (c.fusion !== 'sum' && c.fusion !== 'product') errs.push(`fusion must be 'sum' or 'product' (got ${String(c.fusion)})`);
  if (!(c.sigma >= 0)) errs.push(`sigma must be >= 0 (got ${c.sigma})`);
  if (!Number.isInteger(c.imageSize) || c.imageSize < 32 || c.imageSize % 16 !== 0) {
    const lo = Math.max(32, Math.floor(c.imageSize / 16) * 16), hi = Math.max(32, Math.ceil(c.imageSize / 16) * 16);
    errs.push(`imageSize must be a multiple of 16 and >= 32 (got ${c.imageSize}; e.g. ${lo === hi || !Number.isFinite(hi) ? lo : `${lo} or ${hi}`})`);
  }
  const { groups, heads, reduction, downsample, valueInit } = c.cot;
  if (downsample !== undefined && downsample !== 'strided' && downsample !== 'avgpool') errs.push(`cot.downsample must be 'strided' or 'avgpool' (got ${String(downsample)})`);
  if (valueInit !== undefined && valueInit !== 'kaiming' && valueInit !== 'zero') errs.push(`cot.valueInit must be 'kaiming' or 'zero' (got ${String(valueInit)})`);
  for (const ch of [64, 128, 256]) {
    if (ch % groups !== 0 || ch % heads !== 0 || ch % reduction !== 0) { errs.push(`cot groups/heads/reduction must divide 64 (got ${groups}/${heads}/${reduction})`); break; }
  }
  if (errs.length) throw new Error(`Invalid model config:\n  - ${errs.join('\n  - ')}`);
}
