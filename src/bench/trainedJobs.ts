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
}

/**
 * Calls `fn` for every `<dataset>/<config>` training job of a benchmark run that has a checkpoint (speed and peer
 * jobs are skipped), in sorted order, then disposes its model. `only` narrows the datasets / configurations.
 */
export async function forEachTrainedJob(tf: Tf, run: string, fn: (j: TrainedJob) => Promise<void>, only: { dataset?: string; configs?: string[] } = {}): Promise<void> {
  const dirs = (d: string): string[] => readdirSync(d).filter((e) => statSync(path.join(d, e)).isDirectory()).sort();
  for (const dataset of dirs(run).filter((d) => !only.dataset || d === only.dataset)) {
    for (const config of dirs(path.join(run, dataset)).filter((c) => !only.configs || only.configs.includes(c))) {
      const dir = path.join(run, dataset, config);
      if (!existsSync(path.join(dir, 'job.json')) || !existsSync(path.join(dir, 'checkpoint', 'model.safetensors'))) continue;
      const job = JSON.parse(readFileSync(path.join(dir, 'job.json'), 'utf8')) as { kind: string; dataset: { spec: string | FolderSpec } };
      if (job.kind !== 'train') continue;
      const { model, meta } = await loadCheckpoint(tf, path.join(dir, 'checkpoint'));
      try {
        await fn({ dataset, config, dir, model, meta, split: await applySavedSplit(job.dataset.spec, meta.split) });
      } finally {
        model.dispose();
      }
    }
  }
}
