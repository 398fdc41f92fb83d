import { folderSpecFromFlags, readDataset } from './dataset.js';
import { applySavedSplit, type FolderSpec, type SavedSplit, type SplitDataset } from './folder.js';

/** Flags describing a folder dataset (see docs/data.md). */
export interface DatasetFlags {
  normal?: string[];
  abnormal?: string[];
  masks?: string;
  maskSuffix?: string;
  split?: string;
  skipBad?: boolean;
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
