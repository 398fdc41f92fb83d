import type { TrainConfig } from '../engine/config.js';
import type { LayerId, ModelConfig } from '../model/config.js';

/**
 * Ablation configurations (paper Table 3); `ntsnet` is the full method (Table 1). The teacher-norm rows use
 * `self_ema` (the teacher's own statistics by EMA, docs/method.md); `eman` / `ntsnet_literal` keep the paper text's
 * literal reading (teacher statistics towards the student's), which collapses with a real teacher.
 */
export const ABLATION = {
  baseline: { label: 'symmetric baseline (basic student, frozen-BN teacher)', studentBlock: 'basic', teacherNorm: 'frozen_bn' },
  cot: { label: '+ CoT student', studentBlock: 'cot', teacherNorm: 'frozen_bn' },
  self_ema: { label: '+ teacher norm (self_ema)', studentBlock: 'basic', teacherNorm: 'self_ema' },
  ntsnet: { label: '+ both = NTSNet (CoT + self_ema)', studentBlock: 'cot', teacherNorm: 'self_ema' },
  eman: { label: '+ literal EMAN (student statistics)', studentBlock: 'basic', teacherNorm: 'eman' },
  ntsnet_literal: { label: 'CoT + literal EMAN (paper text)', studentBlock: 'cot', teacherNorm: 'eman' },
  // Teacher-normalisation interpretations (docs/method.md): one change each against `self_ema`.
  self_ema_cos: { label: '+ teacher norm (self_ema, cosine momentum to 1)', studentBlock: 'basic', teacherNorm: 'self_ema', emanSchedule: 'cosine' },
  self_ema_l3: { label: '+ teacher norm (self_ema, layer3 statistics only)', studentBlock: 'basic', teacherNorm: 'self_ema', emanScales: [3] },
  // CoT investigation (docs/method.md): one change each against `cot`.
  cot_pool: { label: '+ CoT student, avg-pool downsampling (CoTNet)', studentBlock: 'cot', teacherNorm: 'frozen_bn', cot: { downsample: 'avgpool' } },
  cot_zero: { label: '+ CoT student, zero-initialised value path', studentBlock: 'cot', teacherNorm: 'frozen_bn', cot: { valueInit: 'zero' } },
  cot_g1: { label: '+ CoT student, ungrouped key conv, 1 head', studentBlock: 'cot', teacherNorm: 'frozen_bn', cot: { groups: 1, heads: 1 } },
  // Training levers (issue 10): one change each against `baseline`.
  cosine: { label: '+ cosine learning-rate schedule', studentBlock: 'basic', teacherNorm: 'frozen_bn', train: { lrSchedule: 'cosine' } },
  flip: { label: '+ flip augmentation', studentBlock: 'basic', teacherNorm: 'frozen_bn', train: { augment: 'flip' } },
  epochs2x: { label: '+ twice the epochs', studentBlock: 'basic', teacherNorm: 'frozen_bn', epochsFactor: 2 },
  r256: { label: '+ 256 px input (baseline otherwise)', studentBlock: 'basic', teacherNorm: 'frozen_bn', imageSize: 256 },
  // A second student of the baseline (another initialisation and data order, same split): ensemble member.
  seed2: { label: 'baseline, second initialisation (ensemble member)', studentBlock: 'basic', teacherNorm: 'frozen_bn', train: { initSeed: 2 } },
} as const satisfies Record<string, { label: string; studentBlock: ModelConfig['studentBlock']; teacherNorm: ModelConfig['teacherNorm']; emanSchedule?: ModelConfig['emanSchedule']; emanScales?: readonly LayerId[]; cot?: Partial<ModelConfig['cot']>; train?: Partial<TrainConfig>; epochsFactor?: number; imageSize?: number }>;

export type AblationName = keyof typeof ABLATION;
export const ABLATION_NAMES = Object.keys(ABLATION) as AblationName[];
/** The configurations a benchmark runs unless `--configs` says otherwise: the four-row ablation. */
export const DEFAULT_ABLATION: AblationName[] = ['baseline', 'cot', 'self_ema', 'ntsnet'];

/** An evaluation-time variant of a trained model: which layers are fused, how, and the smoothing sigma. */
export interface Variant {
  name: string;
  layers: LayerId[];
  fusion: 'sum' | 'product';
  sigma: number;
}

/** Paper Table 5 layer subsets. */
export const LAYER_SUBSETS: LayerId[][] = [[1], [2], [3], [1, 2], [1, 3], [2, 3], [1, 2, 3]];

/** Sigmas of the smoothing sweep (pixels at the input resolution; 4 is the paper / STFPM default). */
export const SIGMAS = [0, 2, 4, 8];

export const layerKey = (l: readonly LayerId[]): string => `L${l.join('')}`;

/**
 * Variants evaluated on every trained model: the model's own setting, Table 5 subsets (when `subsets`), the other
 * fusion, and the sigma sweep. Duplicates are dropped; the first variant is always the model's own setting.
 */
export function variantsFor(m: Pick<ModelConfig, 'layers' | 'fusion' | 'sigma'>, subsets: boolean): Variant[] {
  const out: Variant[] = [];
  const add = (layers: LayerId[], fusion: 'sum' | 'product', sigma: number): void => {
    const name = `${layerKey(layers)}-${fusion}-s${sigma}`;
    if (!out.some((v) => v.name === name) && layers.every((l) => m.layers.includes(l))) out.push({ name, layers, fusion, sigma });
  };
  add([...m.layers], m.fusion, m.sigma);
  if (subsets) for (const l of LAYER_SUBSETS) add(l, m.fusion, m.sigma);
  add([...m.layers], m.fusion === 'sum' ? 'product' : 'sum', m.sigma);
  for (const s of SIGMAS) add([...m.layers], m.fusion, s);
  return out;
}
