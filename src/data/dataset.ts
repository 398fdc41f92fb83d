/**
 * One entry point for every supported dataset: an MVTec AD category folder (given as a path) or
 * a folder dataset (given as a {@link FolderSpec}, e.g. built from CLI flags with
 * {@link folderSpecFromFlags}).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DataError } from './image.js';
import { DEFAULT_SPLIT, readFolderDataset, readMvtecDataset, scanImageFolder, validateFractions, type FolderSpec, type SplitDataset, type SplitFractions } from './folder.js';
import { naturalCompare, readMvtecCategory, type ReadOptions } from './mvtec.js';

/** Options of {@link readDataset}. */
export interface DatasetOptions extends ReadOptions {
  /** MVTec only: fraction of train/good held out (seeded) for validation, in [0, 1). */
  valFraction: number;
  /** MVTec only: seed of the hold-out (a FolderSpec carries its own seed). */
  seed: number;
}

/** Result of {@link detectLayout}. */
export type DetectedLayout =
  | { kind: 'mvtec'; root: string }
  | { kind: 'folder-like'; root: string; normal: string[]; abnormal: string[]; suggestion: string }
  | { kind: 'unknown'; root: string };

/** Folder names taken as "normal images" when guessing a folder dataset's layout. */
const NORMAL_NAME = /(^|[_\-\s.])(free|good|normal|ok|defect[_-]?free|non[_-]?defect(ive)?|no[_-]?defect)$/i;

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** The folder that holds a sub-folder's images: itself, or its only visible sub-folder when it has no images itself. */
async function imageFolderOf(dir: string): Promise<{ dir: string; images: number }> {
  const scan = await scanImageFolder(dir);
  if (scan.images.length > 0 || scan.subfolders.length !== 1) return { dir, images: scan.images.length };
  const inner = await scanImageFolder(scan.subfolders[0]!);
  return inner.images.length > 0 ? { dir: scan.subfolders[0]!, images: inner.images.length } : { dir, images: 0 };
}

const quote = (p: string): string => (/^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`);

/**
 * Guesses what a folder is: an MVTec AD category (train/good + test/), a folder dataset with
 * normal and defective sub-folders (a sub-folder named like `*_Free`, `good`, `normal`, `ok`,
 * `defect_free` holds the normal images, every other sub-folder with images is a defect type;
 * a sub-folder whose only content is one folder such as `Imgs/` is looked into), or unknown.
 * For "folder-like", `suggestion` is the flag list describing it.
 * @throws DataError when `dir` does not exist or is not a folder.
 */
export async function detectLayout(dir: string): Promise<DetectedLayout> {
  const root = path.resolve(dir);
  let st;
  try {
    st = await fsp.stat(root);
  } catch {
    throw new DataError(`Dataset folder ${root} does not exist. Check the path.`, root);
  }
  if (!st.isDirectory()) throw new DataError(`${root} is not a folder.`, root);
  if ((await isDir(path.join(root, 'train', 'good'))) && (await isDir(path.join(root, 'test')))) return { kind: 'mvtec', root };
  const scan = await scanImageFolder(root);
  const normal: string[] = [];
  const abnormal: string[] = [];
  for (const sub of scan.subfolders) {
    const f = await imageFolderOf(sub);
    if (f.images === 0) continue;
    (NORMAL_NAME.test(path.basename(sub)) ? normal : abnormal).push(f.dir);
  }
  if (normal.length === 0 || abnormal.length === 0) return { kind: 'unknown', root };
  normal.sort(naturalCompare);
  abnormal.sort(naturalCompare);
  const suggestion = `--normal ${normal.map(quote).join(' ')} --abnormal ${abnormal.map(quote).join(' ')}`;
  return { kind: 'folder-like', root, normal, abnormal, suggestion };
}

/**
 * Reads a dataset and decides its split.
 * - A string is a folder path. An MVTec AD category (train/good + test/) gives kind "mvtec":
 *   train/val = seeded hold-out of train/good (`valFraction`, `seed`; the same split as
 *   `ntsnet fit`), test = test/. A folder that looks like a folder dataset (e.g. Magnetic Tile's
 *   MT_Free + MT_<Defect>, or normal/ + abnormal/) is refused with a DataError that spells out
 *   the flags to use; anything else gets the MVTec reader's error.
 * - A {@link FolderSpec} gives kind "folder" (see readFolderDataset; it uses its own `split` and
 *   `seed`; `valFraction` and `seed` of `opts` are ignored).
 * @throws DataError for layout problems (naming the folder); RangeError for invalid fractions.
 */
export async function readDataset(input: string | FolderSpec, opts: DatasetOptions): Promise<SplitDataset> {
  if (typeof input !== 'string') return readFolderDataset(input, opts);
  const layout = await detectLayout(input);
  if (layout.kind === 'mvtec') return readMvtecDataset(layout.root, opts);
  if (layout.kind === 'folder-like') {
    throw new DataError(
      `${layout.root} is not an MVTec AD category folder (no train/good and test/), but it looks like a folder dataset: normal images in ${layout.normal.map((d) => path.relative(layout.root, d)).join(', ')}; defective images in ${layout.abnormal.map((d) => path.relative(layout.root, d)).join(', ')}. ` +
        `Describe it with flags instead of a path: ${layout.suggestion} ` +
        '(masks beside the images are found automatically; add --masks DIR for a separate mask folder, --split 0.7,0.1,0.2 and --seed N for the split of the normal images).',
      layout.root,
    );
  }
  await readMvtecCategory(layout.root, opts); // throws the MVTec reader's explanation
  throw new DataError(`${layout.root} is not a dataset folder.`, layout.root); // not reached
}

/**
 * Parses "train,val,test" fractions, e.g. "0.7,0.1,0.2" (percentages "70,10,20" are accepted too).
 * @throws RangeError with the expected format.
 */
export function parseSplitFractions(text: string): SplitFractions {
  const parts = text.split(',').map((s) => s.trim());
  const nums = parts.map((s) => (s === '' ? NaN : Number(s)));
  if (parts.length !== 3 || nums.some((n) => !Number.isFinite(n))) {
    throw new RangeError(`--split must be three comma-separated numbers train,val,test such as 0.7,0.1,0.2; got "${text}"`);
  }
  let [train, val, test] = nums as [number, number, number];
  if (Math.abs(train + val + test - 100) < 1e-6) [train, val, test] = [train / 100, val / 100, test / 100];
  const f = { train, val, test };
  validateFractions(f);
  return f;
}

/** CLI flags describing a folder dataset (as parsed by commander). */
export interface FolderFlags {
  normal: string[];
  abnormal?: string[];
  masks?: string;
  maskSuffix?: string;
  /** "train,val,test" fractions, default "0.7,0.1,0.2". */
  split?: string;
  seed: number;
  name?: string;
}

/**
 * Builds a {@link FolderSpec} from CLI flags (`--normal DIR... --abnormal DIR... [--masks DIR]
 * [--mask-suffix S] [--split 0.7,0.1,0.2] --seed N`).
 * @throws Error when no normal folder is given or the seed is not an integer; RangeError for a bad --split.
 */
export function folderSpecFromFlags(flags: FolderFlags): FolderSpec {
  if (!Array.isArray(flags.normal) || flags.normal.length === 0) throw new Error('--normal DIR... is required to describe a folder dataset');
  if (!Number.isInteger(flags.seed)) throw new Error(`--seed must be an integer, got ${String(flags.seed)}`);
  const spec: FolderSpec = {
    normal: [...flags.normal],
    abnormal: [...(flags.abnormal ?? [])],
    split: flags.split !== undefined ? parseSplitFractions(flags.split) : { ...DEFAULT_SPLIT },
    seed: flags.seed,
  };
  if (flags.masks !== undefined) spec.masks = flags.masks;
  if (flags.maskSuffix !== undefined) spec.maskSuffix = flags.maskSuffix;
  if (flags.name !== undefined) spec.name = flags.name;
  return spec;
}
