import { preset, type RunConfig } from '../engine/config.js';

/**
 * A benchmark protocol: the training recipe shared by every configuration, and how speed is measured.
 * Named in every report so that numbers from different protocols are never mixed up.
 */
export interface Protocol {
  name: 'default' | 'cpu' | 'paper';
  description: string;
  /** Base run config (preset) before the ablation switches. */
  base: RunConfig;
  /**
   * When set, the epoch count per dataset is chosen so that training takes about this many optimiser steps
   * (ceil(steps / batches per epoch), at most `base.train.epochs`): small and large datasets get the same budget.
   */
  stepBudget?: number;
  /** Table 5 layer subsets: `eval` = subsets of the model trained on {1,2,3}; `retrain` = one model per subset (paper). */
  layerSubsets: 'eval' | 'retrain';
  /** Table 2: input size and batch sizes of the inference-speed measurement, timed runs per size. */
  speed: { imageSize: number; batches: number[]; runs: number };
}

/**
 * `default`: the shipped `cpu` preset as `ntsnet fit` runs it (50 epochs whatever the dataset size; issue 10: the
 * step-budgeted `cpu` protocol under-trains large datasets).
 * `cpu`: fits this project's 2-core machine: 128 px, batch 16, SGD lr 0.4 / momentum 0.9 / wd 1e-4, about 400 steps
 * per training run (bottle 34 epochs, Magnetic Tile 10), Table 5 by evaluating layer subsets of one trained model.
 * `paper`: the paper's protocol: 256 px, 200 epochs, batch 32, one model per layer subset.
 */
export function protocol(name: string): Protocol {
  if (name === 'default') {
    return {
      name: 'default', description: "the cpu preset as 'ntsnet fit' runs it: 128 px, 50 epochs, batch 16, SGD lr 0.4 momentum 0.9 wd 1e-4; both epoch choices of each training run evaluated: the best on synthetic defects (checkpoint/) and the lowest validation loss (val-loss/, what 'ntsnet fit' ships)",
      base: selectingBySynthetic(preset('cpu')), layerSubsets: 'eval', speed: { imageSize: 256, batches: [1, 32], runs: 5 },
    };
  }
  if (name === 'cpu') {
    return {
      name: 'cpu', description: '128 px, batch 16, SGD lr 0.4 momentum 0.9 wd 1e-4, ~400 optimiser steps per run (<= 50 epochs)',
      base: preset('cpu'), stepBudget: 400, layerSubsets: 'eval', speed: { imageSize: 256, batches: [1, 32], runs: 5 },
    };
  }
  if (name === 'paper') {
    return {
      name: 'paper', description: '256 px, 200 epochs, batch 32, SGD lr 0.4 momentum 0.9 wd 1e-4 (paper setting)',
      base: preset('paper'), layerSubsets: 'retrain', speed: { imageSize: 256, batches: [1, 32], runs: 7 },
    };
  }
  throw new Error(`Unknown protocol '${name}'. Available: default, cpu, paper.`);
}

/** A config that selects its checkpoint by synthetic defects, so that a benchmark job also keeps the default's val_loss choice (runner.ts). */
function selectingBySynthetic(c: RunConfig): RunConfig {
  c.train.selectBy = 'synthetic';
  return c;
}

/** Epochs for a training set of `trainImages` images under a protocol (see {@link Protocol.stepBudget}). */
export function epochsFor(p: Protocol, trainImages: number): number {
  if (!p.stepBudget) return p.base.train.epochs;
  const perEpoch = Math.max(1, Math.ceil(trainImages / p.base.train.batchSize));
  return Math.max(1, Math.min(p.base.train.epochs, Math.ceil(p.stepBudget / perEpoch)));
}
