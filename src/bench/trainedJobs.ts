import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import { applySavedSplit, type FolderSpec, type SplitDataset } from '../data/folder.js';
import { loadCheckpoint, type CheckpointMeta } from '../engine/checkpoint.js';
import type { NTSNet } from '../model/ntsnet.js';

/** One finished training job of a benchmark run folder, with its checkpoint loaded and its split rebuilt. */
export interface TrainedJob {
  dataset: string;
  config: string;
  dir: string;
  model: NTSNet;
  meta: CheckpointMeta;
  split: SplitDataset;
  /** The checkpoint folder loaded, relative to `dir` (`checkpoint`, or `only.prefer` where the job has it). */
  folder: string;
}

/**
 * Calls `fn` for every `<dataset>/<config>` training job of a benchmark run that has a checkpoint (speed and peer
 * jobs are skipped), in sorted order, then disposes its model. `only` narrows the datasets / configurations;
 * `only.prefer` names a checkpoint folder loaded instead of `checkpoint/` where the job has one (e.g. `val-loss`).
 */
export async function forEachTrainedJob(tf: Tf, run: string, fn: (j: TrainedJob) => Promise<void>, only: { dataset?: string; configs?: string[]; prefer?: string } = {}): Promise<void> {
  const dirs = (d: string): string[] => readdirSync(d).filter((e) => statSync(path.join(d, e)).isDirectory()).sort();
  for (const dataset of dirs(run).filter((d) => !only.dataset || d === only.dataset)) {
    for (const config of dirs(path.join(run, dataset)).filter((c) => !only.configs || only.configs.includes(c))) {
      const dir = path.join(run, dataset, config);
      if (!existsSync(path.join(dir, 'job.json')) || !existsSync(path.join(dir, 'checkpoint', 'model.safetensors'))) continue;
      const job = JSON.parse(readFileSync(path.join(dir, 'job.json'), 'utf8')) as { kind: string; dataset: { spec: string | FolderSpec } };
      if (job.kind !== 'train') continue;
      const folder = only.prefer && existsSync(path.join(dir, only.prefer, 'model.safetensors')) ? only.prefer : 'checkpoint';
      const { model, meta } = await loadCheckpoint(tf, path.join(dir, folder));
      try {
        await fn({ dataset, config, dir, model, meta, split: await applySavedSplit(job.dataset.spec, meta.split), folder });
      } finally {
        model.dispose();
      }
    }
  }
}
