import type { Command } from 'commander';
import { folderSpecFromFlags, readDataset } from '../data/dataset.js';
import { applySavedSplit, type FolderSpec, type SavedSplit, type SplitDataset } from '../data/folder.js';

/** Flags describing a folder dataset (see docs/data.md). */
export interface DatasetFlags {
  normal?: string[];
  abnormal?: string[];
  masks?: string;
  maskSuffix?: string;
  split?: string;
  skipBad?: boolean;
}

/** Adds --normal/--abnormal/--masks/--mask-suffix/--split/--skip-bad (folder datasets) to a command. */
export function addDatasetOptions(cmd: Command): Command {
  return cmd
    .option('--normal <dirs...>', 'folder dataset: folders of normal images (instead of --data)')
    .option('--abnormal <dirs...>', 'folder dataset: folders of defective images, one defect type each')
    .option('--masks <dir>', 'folder dataset: separate mask folder (masks beside the images are found automatically)')
    .option('--mask-suffix <s>', 'mask file-name suffix', '_mask')
    .option('--split <fractions>', 'folder dataset: train,val,test fractions of the normal images', '0.7,0.1,0.2')
    .option('--skip-bad', 'skip unreadable or truncated images with a warning instead of stopping');
}

/** The folder-dataset spec of the flags, or undefined when --normal is not given. @throws Error on bad flags. */
export function folderSpec(f: DatasetFlags, seed: number): FolderSpec | undefined {
  if (!f.normal) return undefined;
  return folderSpecFromFlags({ normal: f.normal, abnormal: f.abnormal, masks: f.masks, maskSuffix: f.maskSuffix, split: f.split, seed });
}

/**
 * Datasets to evaluate: each MVTec path as it is, or the folder dataset rebuilt with exactly the split saved in the
 * checkpoint (so test images never overlap the training images).
 */
export async function testDatasets(data: string[] | undefined, f: DatasetFlags, saved: SavedSplit, seed: number, valFraction: number): Promise<SplitDataset[]> {
  const spec = folderSpec(f, seed);
  if (spec) {
    if (saved.kind !== 'folder') throw new Error('The checkpoint was trained on an MVTec AD folder; pass --data PATH, not --normal/--abnormal.');
    return [await applySavedSplit(spec, saved, { skipBad: f.skipBad })];
  }
  if (!data?.length) throw new Error('Give --data DIR... (MVTec AD category folders) or --normal/--abnormal (folder dataset).');
  const out: SplitDataset[] = [];
  for (const d of data) out.push(await readDataset(d, { valFraction, seed, skipBad: f.skipBad }));
  return out;
}
