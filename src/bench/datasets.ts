import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_SPLIT, type FolderSpec } from '../data/folder.js';
import { detectLayout } from '../data/dataset.js';

/** One benchmark dataset: an MVTec AD category folder or a folder dataset, with a short id for folder names. */
export interface BenchDataset {
  /** Short unique id used in result paths and tables, e.g. `bottle`, `magnetic_tile`. */
  id: string;
  /** What `fit` / `readDataset` take. */
  spec: string | FolderSpec;
  /** Human description of the layout, e.g. "MVTec AD category" or "Magnetic Tile (MT_Free normal, 5 defect types)". */
  kind: string;
}

const isDir = async (p: string): Promise<boolean> => (await fsp.stat(p).catch(() => undefined))?.isDirectory() ?? false;

/**
 * Resolves one `--dataset` argument into benchmark datasets:
 * - an MVTec AD category folder (train/good + test/) gives one dataset;
 * - an MVTec AD root (sub-folders that are categories, e.g. the full 15-category MVTec AD) gives one per category;
 * - a Magnetic Tile root (MT_Free + MT_<Defect>/Imgs) gives one folder dataset: MT_Free normal, split 0.7/0.1/0.2
 *   with `seed`, masks beside the images.
 * @throws Error naming the folder and the layouts accepted.
 */
export async function resolveBenchDatasets(arg: string, seed: number, warn: (l: string) => void = () => {}): Promise<BenchDataset[]> {
  const root = path.resolve(arg);
  if (!(await isDir(root))) throw new Error(`--dataset ${arg}: no such folder. Give an MVTec AD category or root folder, or a Magnetic Tile root.`);
  const layout = await detectLayout(root);
  if (layout.kind === 'mvtec') return [{ id: path.basename(root), spec: root, kind: 'MVTec AD category' }];
  if (await isDir(path.join(root, 'MT_Free'))) {
    const entries = (await fsp.readdir(root)).filter((n) => /^MT_/.test(n) && n !== 'MT_Free').sort();
    const imgs = async (d: string): Promise<string> => ((await isDir(path.join(root, d, 'Imgs'))) ? path.join(root, d, 'Imgs') : path.join(root, d));
    const abnormal: string[] = [];
    for (const e of entries) if (await isDir(path.join(root, e))) abnormal.push(await imgs(e));
    return [{
      id: path.basename(root), kind: `Magnetic Tile (MT_Free normal, ${abnormal.length} defect types, split 0.7/0.1/0.2 seed ${seed})`,
      spec: { normal: [await imgs('MT_Free')], abnormal, split: { ...DEFAULT_SPLIT }, seed, name: path.basename(root) },
    }];
  }
  const subs = (await fsp.readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort();
  const cats: BenchDataset[] = [];
  const skipped: string[] = [];
  for (const s of subs) {
    const l = await detectLayout(path.join(root, s));
    if (l.kind === 'mvtec') cats.push({ id: s, spec: path.join(root, s), kind: 'MVTec AD category' });
    else skipped.push(s);
  }
  if (cats.length && skipped.length) warn(`warning: --dataset ${arg}: ${skipped.length} sub-folder(s) are not MVTec AD categories (need train/good and test/) and are NOT benchmarked: ${skipped.join(', ')}`);
  if (cats.length) return cats;
  throw new Error(`--dataset ${arg}: not an MVTec AD category (train/good + test/), an MVTec AD root (category sub-folders) or a Magnetic Tile root (MT_Free + MT_<Defect>/Imgs).`);
}
