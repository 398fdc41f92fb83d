/**
 * "Folder" datasets: the layout users bring when they do not have MVTec AD's train/test folders.
 *
 *     --normal  DIR...   folders of normal (defect-free) images
 *     --abnormal DIR...  folders of defective images, one defect type per folder
 *     --masks DIR        optional separate mask folder (flat, or one sub-folder per defect type)
 *
 * Masks may also sit BESIDE the images (the Magnetic Tile layout:
 * `MT_Blowhole/Imgs/<name>.jpg` + `MT_Blowhole/Imgs/<name>.png`). Within one folder a file is a
 * MASK, not an image, when
 *   1. its stem ends with the mask suffix (default `_mask`, case-insensitive), e.g. `001_mask.png`
 *      is the mask of `001.<any image extension>`; or
 *   2. it is a `.png` that shares its stem with another image file of a different extension
 *      (`001.jpg` + `001.png`): the `.png` is the mask of the other file.
 * Folders are NOT read recursively; hidden files and folders (name starting with "."), non-image
 * files (.DS_Store, Thumbs.db, notes.txt, ...) and sub-folders are ignored.
 *
 * Defect type of an abnormal folder: the nearest folder name, walking up from the folder itself,
 * that is not a generic name ({@link GENERIC_DIR_NAMES}: Imgs, images, img, ...), so
 * `MT_Blowhole/Imgs` gives `MT_Blowhole`. Normal test images get the defect type `good`.
 *
 * Split: the normal images (all --normal folders, in the given folder order, natural file order
 * within each) are split by a seeded permutation into train / val / test with the given
 * fractions (default 0.7 / 0.1 / 0.2); every defective image goes to test. Save the split with
 * {@link splitToJson} and reproduce it exactly with {@link applySavedSplit}.
 */
import { promises as fsp } from 'node:fs';
import type { Dirent } from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../util/rng.js';
import { DataError, findBadFiles, skippedBadWarning } from './image.js';
import { dropSameFiles, sameFileWarning } from './dedupe.js';
import { MASK_PIXEL_CHECKS_PER_FOLDER, notMaskReason } from './maskLike.js';
import { mapLimit } from '../util/concurrency.js';
import { entryKind, IMAGE_EXTENSIONS_TEXT, isImageFile, naturalCompare, readMvtecCategory, type ReadOptions, type TestItem } from './mvtec.js';
import { holdOut } from './split.js';

/** Fractions of the normal images that go to each split (each in [0, 1], sum 1). */
export interface SplitFractions {
  train: number;
  val: number;
  test: number;
}

/** Default split of the normal images of a folder dataset: 70 % train, 10 % val, 20 % test. */
export const DEFAULT_SPLIT: Readonly<SplitFractions> = Object.freeze({ train: 0.7, val: 0.1, test: 0.2 });

/** Default mask-file suffix (`<stem>_mask.<ext>`). */
export const DEFAULT_MASK_SUFFIX = '_mask';

/** Folder names skipped when naming a defect type after its folder (compared case-insensitively). */
export const GENERIC_DIR_NAMES: readonly string[] = [
  'img', 'imgs', 'image', 'images', 'pic', 'pics', 'picture', 'pictures', 'photo', 'photos', 'data', 'samples', 'jpg', 'jpeg', 'png',
];

/** Description of a folder dataset (see the module comment for the rules). */
export interface FolderSpec {
  /** Folders of normal images (at least one). */
  normal: string[];
  /** Folders of defective images; each folder is one defect type (may be empty: no defective test images). */
  abnormal: string[];
  /** Optional separate mask folder: masks matched by stem (`<stem><suffix>.*` or `<stem>.*`), flat or in `<masks>/<defect type>/`. */
  masks?: string;
  /** Mask-file suffix, default {@link DEFAULT_MASK_SUFFIX}. */
  maskSuffix?: string;
  /** Fractions of the normal images for train / val / test, default {@link DEFAULT_SPLIT}. */
  split?: SplitFractions;
  /** Seed of the split permutation. */
  seed: number;
  /** Dataset name; default the base name of the common ancestor folder. */
  name?: string;
}

/** A dataset with its train / val / test split decided (MVTec category or folder dataset). */
export interface SplitDataset {
  /** "mvtec": MVTec AD category folder; "folder": {@link FolderSpec} dataset. */
  kind: 'mvtec' | 'folder';
  /** Dataset name (category name, or the root's base name). */
  name: string;
  /** Absolute root folder: the category folder, or the deepest common ancestor of the spec's folders. */
  root: string;
  /** Absolute paths of the normal training images. */
  train: string[];
  /** Absolute paths of the normal validation images (best-checkpoint selection). */
  val: string[];
  /** Test images: normal ones (label 0, defect type "good") first, then the defective ones (label 1). */
  test: TestItem[];
  /** Non-fatal problems, one line each. */
  warnings: string[];
  /** How the split was made; `files` are '/'-separated paths relative to `root` (save it with {@link splitToJson}). */
  split: {
    seed: number;
    /** For MVTec the fractions apply to train/good (test = 0: test images come from test/). */
    fractions: SplitFractions;
    files: { train: string[]; val: string[]; test: string[] };
  };
}

/** A split saved to JSON by {@link splitToJson}: enough to reproduce the exact file lists. */
export interface SavedSplit {
  format: 'ntsnet-split';
  version: 1;
  kind: 'mvtec' | 'folder';
  name: string;
  seed: number;
  fractions: SplitFractions;
  /** '/'-separated paths relative to the dataset root. */
  files: { train: string[]; val: string[]; test: string[] };
}

/** A file skipped while listing a folder, with the reason. */
export interface IgnoredFile {
  path: string;
  reason: string;
}

/** What {@link scanImageFolder} found in one folder. */
export interface FolderScan {
  /** Absolute path of the folder. */
  dir: string;
  /** Absolute paths of the images (masks excluded), natural order. */
  images: string[];
  /** Image path -> mask beside it (rules 1 and 2 of the module comment). */
  masks: Map<string, string>;
  /** Mask files (by rule 1) whose image does not exist in the folder. */
  orphanMasks: string[];
  /** Hidden files, non-image files, broken links, hidden folders: not used. */
  ignored: IgnoredFile[];
  /** Absolute paths of the visible sub-folders (not read: folders are not scanned recursively). */
  subfolders: string[];
}

/** The files of a folder dataset before splitting (see {@link listFolderDataset}). */
export interface FolderListing {
  name: string;
  root: string;
  /** All normal images, in folder order then natural order. */
  normal: string[];
  /** Defective images (label 1) with their mask where one was found. */
  defective: TestItem[];
  /** Masks found for normal images (e.g. Magnetic Tile's empty masks): normal image -> mask. */
  normalMasks: Map<string, string>;
  /** Every folder read (normal, abnormal, masks and its sub-folders). */
  scans: FolderScan[];
  warnings: string[];
}

const rel = (root: string, p: string): string => path.relative(root, p).split(path.sep).join('/');
const stemOf = (name: string): string => name.slice(0, name.length - path.extname(name).length);


async function assertDir(dir: string, what: string): Promise<string> {
  const abs = path.resolve(dir);
  let st;
  try {
    st = await fsp.stat(abs);
  } catch {
    throw new DataError(`${what} ${abs} does not exist. Check the path.`, abs);
  }
  if (!st.isDirectory()) throw new DataError(`${what} ${abs} is not a folder. Pass the folder that holds the images.`, abs);
  return abs;
}

/**
 * Lists one folder (not recursive), separating images from masks with the rules of the module
 * comment and recording everything ignored.
 * @param dir the folder.
 * @param opts.maskSuffix mask-file suffix (default `_mask`; "" disables rule 1).
 * @param opts.besideMasks apply the mask rules (default true); false treats every image file as an image.
 * @throws DataError when the folder cannot be read.
 */
export async function scanImageFolder(dir: string, opts: { maskSuffix?: string; besideMasks?: boolean } = {}): Promise<FolderScan> {
  const abs = path.resolve(dir);
  const suffix = (opts.maskSuffix ?? DEFAULT_MASK_SUFFIX).toLowerCase();
  const beside = opts.besideMasks ?? true;
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(abs, { withFileTypes: true });
  } catch (e) {
    throw new DataError(`Cannot read folder ${abs}: ${(e as Error).message}. Check that it exists and is readable.`, abs, { cause: e });
  }
  const ignored: IgnoredFile[] = [];
  const subfolders: string[] = [];
  const files: string[] = [];
  for (const e of entries) {
    const p = path.join(abs, e.name);
    const kind = await entryKind(abs, e);
    if (e.name.startsWith('.')) ignored.push({ path: p, reason: kind === 'dir' ? 'hidden folder' : 'hidden file' });
    else if (kind === 'dir') subfolders.push(p);
    else if (kind === 'other') ignored.push({ path: p, reason: e.isSymbolicLink() ? 'broken symbolic link' : 'not a regular file' });
    else if (!isImageFile(e.name)) ignored.push({ path: p, reason: 'not an image file (by extension)' });
    else files.push(e.name);
  }
  files.sort(naturalCompare);
  ignored.sort((a, b) => naturalCompare(a.path, b.path));
  subfolders.sort(naturalCompare);

  const images: string[] = [];
  const masks = new Map<string, string>();
  const orphanMasks: string[] = [];
  if (!beside) {
    return { dir: abs, images: files.map((n) => path.join(abs, n)), masks, orphanMasks, ignored, subfolders };
  }
  // Rule 1: suffix masks.
  const suffixMasks: string[] = [];
  const rest: string[] = [];
  for (const n of files) {
    const s = stemOf(n);
    if (suffix !== '' && s.length > suffix.length && s.toLowerCase().endsWith(suffix)) suffixMasks.push(n);
    else rest.push(n);
  }
  // Rule 2: a .png sharing its stem with another image extension is that image's mask.
  const byStem = new Map<string, string[]>();
  for (const n of rest) {
    const list = byStem.get(stemOf(n)) ?? [];
    list.push(n);
    byStem.set(stemOf(n), list);
  }
  const imageByStem = new Map<string, string>();
  const pngMaskOf = new Map<string, string>();
  // Same-stem .png candidates are checked to look like masks, 4 at a time.
  const candidates = [...byStem.values()].filter((ns) => ns.some((n) => path.extname(n).toLowerCase() !== '.png')).flatMap((ns) => ns.filter((n) => path.extname(n).toLowerCase() === '.png'));
  // Every candidate gets the header check (channels); an evenly spread sample of MASK_PIXEL_CHECKS_PER_FOLDER also the
  // pixel check (binary or near-binary), which bounds the cost on large folders (Magnetic Tile: 952 masks in one).
  const step = Math.max(1, candidates.length / MASK_PIXEL_CHECKS_PER_FOLDER);
  const sampled = new Set(Array.from({ length: Math.min(candidates.length, MASK_PIXEL_CHECKS_PER_FOLDER) }, (_, k) => candidates[Math.floor(k * step)]!));
  const notMask = new Map(await mapLimit(candidates, 4, async (n) => [n, await notMaskReason(path.join(abs, n), { decode: sampled.has(n) })] as const));
  for (const [stem, names] of byStem) {
    const pngs = names.filter((n) => path.extname(n).toLowerCase() === '.png');
    const others = names.filter((n) => path.extname(n).toLowerCase() !== '.png');
    if (pngs.length > 0 && others.length > 0) {
      // A same-stem .png is a mask only if it looks like one; a second photo would otherwise be dropped silently.
      for (const png of pngs) {
        const why = notMask.get(png);
        if (why)
          throw new DataError(
            `${path.join(abs, png)} shares its stem with ${path.join(abs, others[0]!)}, so it would be taken as that image's mask, but it does not look like a mask: ${why}. ` +
              `If both are photos, rename one of them (e.g. ${stem}_2.png); if it is a mask, save it as one channel with values 0 / 255 (or name it ${stem}${suffix || '_mask'}.png).`,
            path.join(abs, png),
          );
      }
      for (const o of others) images.push(o);
      imageByStem.set(stem, others[0]!);
      pngMaskOf.set(others[0]!, pngs[0]!);
      for (const extra of pngs.slice(1)) orphanMasks.push(path.join(abs, extra));
    } else {
      for (const n of names) images.push(n);
      imageByStem.set(stem, names[0]!);
    }
  }
  for (const m of suffixMasks) {
    const base = stemOf(m).slice(0, stemOf(m).length - suffix.length);
    const img = imageByStem.get(base);
    if (img === undefined) {
      orphanMasks.push(path.join(abs, m));
      continue;
    }
    const prev = masks.get(path.join(abs, img));
    // Prefer a .png suffix mask when there are several.
    if (prev === undefined || (path.extname(prev).toLowerCase() !== '.png' && path.extname(m).toLowerCase() === '.png')) {
      if (prev !== undefined) orphanMasks.push(prev);
      masks.set(path.join(abs, img), path.join(abs, m));
    } else orphanMasks.push(path.join(abs, m));
  }
  for (const [img, png] of pngMaskOf) {
    const key = path.join(abs, img);
    if (!masks.has(key)) masks.set(key, path.join(abs, png));
    else orphanMasks.push(path.join(abs, png)); // a suffix mask wins over the .png sibling
  }
  images.sort(naturalCompare);
  orphanMasks.sort(naturalCompare);
  return { dir: abs, images: images.map((n) => path.join(abs, n)), masks, orphanMasks, ignored, subfolders };
}

/**
 * Defect type named after a folder: the nearest folder name, from `dir` upwards, that is not in
 * {@link GENERIC_DIR_NAMES} and does not start with "."; falls back to the folder's own name.
 * @example defectTypeOf('/data/magnetic_tile/MT_Blowhole/Imgs') === 'MT_Blowhole'
 */
export function defectTypeOf(dir: string): string {
  const abs = path.resolve(dir);
  let d = abs;
  for (;;) {
    const name = path.basename(d);
    if (name !== '' && !name.startsWith('.') && !GENERIC_DIR_NAMES.includes(name.toLowerCase())) return name;
    const parent = path.dirname(d);
    if (parent === d) return path.basename(abs) || abs;
    d = parent;
  }
}

/** Deepest common ancestor folder of absolute paths. */
export function commonAncestor(paths: readonly string[]): string {
  if (paths.length === 0) throw new RangeError('commonAncestor: no paths');
  let parts = path.resolve(paths[0]!).split(path.sep);
  for (const p of paths.slice(1)) {
    const q = path.resolve(p).split(path.sep);
    let i = 0;
    while (i < parts.length && i < q.length && parts[i] === q[i]) i++;
    parts = parts.slice(0, i);
  }
  const joined = parts.join(path.sep);
  return joined === '' ? path.parse(path.resolve(paths[0]!)).root : joined;
}

/**
 * Checks split fractions: each finite and in [0, 1], train > 0, sum 1 (within 0.001).
 * @throws RangeError explaining the problem.
 */
export function validateFractions(f: SplitFractions): void {
  for (const k of ['train', 'val', 'test'] as const) {
    if (!Number.isFinite(f[k]) || f[k] < 0 || f[k] > 1) throw new RangeError(`split fraction ${k} must be in [0, 1], got ${f[k]}`);
  }
  if (!(f.train > 0)) throw new RangeError('split fraction train must be > 0 (the model trains on normal images)');
  const sum = f.train + f.val + f.test;
  if (Math.abs(sum - 1) > 1e-3) throw new RangeError(`split fractions train,val,test must sum to 1, got ${f.train}+${f.val}+${f.test} = ${Number(sum.toFixed(6))}`);
}

/**
 * Seeded three-way split. Sizes: test = round(test * n), val = round(val * n) (each at least 1
 * when its fraction is > 0), train = the rest (at least 1). A permutation from `Rng(seed)` picks the
 * members: its first `nTest` indices go to test, the next `nVal` to val. Every part keeps the input
 * order; the same (items, fractions, seed) always gives the same split.
 * @throws RangeError on invalid fractions, or when there are too few items for the requested parts.
 */
export function splitThree<T>(items: readonly T[], fractions: SplitFractions, seed: number): { train: T[]; val: T[]; test: T[] } {
  validateFractions(fractions);
  const n = items.length;
  const nTest = fractions.test > 0 ? Math.max(1, Math.round(fractions.test * n)) : 0;
  const nVal = fractions.val > 0 ? Math.max(1, Math.round(fractions.val * n)) : 0;
  if (n - nTest - nVal < 1) {
    throw new RangeError(`cannot split ${n} normal image(s) into train/val/test with fractions ${fractions.train},${fractions.val},${fractions.test}: at least ${nTest + nVal + 1} needed. Add normal images or change the split.`);
  }
  const perm = new Rng(seed).permutation(n);
  const part = new Uint8Array(n); // 0 train, 1 val, 2 test
  for (let i = 0; i < nTest; i++) part[perm[i]!] = 2;
  for (let i = nTest; i < nTest + nVal; i++) part[perm[i]!] = 1;
  const out = { train: [] as T[], val: [] as T[], test: [] as T[] };
  for (let i = 0; i < n; i++) (part[i] === 2 ? out.test : part[i] === 1 ? out.val : out.train).push(items[i]!);
  return out;
}

function emptyFolderHint(scan: FolderScan): string {
  if (scan.subfolders.length === 0) return '';
  const names = scan.subfolders.map((s) => path.basename(s));
  return ` It has sub-folder(s) ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''}; folders are not read recursively, so pass the sub-folder that holds the images (e.g. ${scan.subfolders[0]}).`;
}

/** Index of a mask folder: stem -> file names (image extensions only). */
async function indexMaskFolder(dir: string): Promise<{ scan: FolderScan; byStem: Map<string, string[]> }> {
  const scan = await scanImageFolder(dir, { besideMasks: false });
  const byStem = new Map<string, string[]>();
  for (const f of scan.images) {
    const s = stemOf(path.basename(f));
    const list = byStem.get(s) ?? [];
    list.push(f);
    byStem.set(s, list);
  }
  return { scan, byStem };
}

const preferPng = (list: readonly string[] | undefined, exclude: string): string | undefined => {
  const l = (list ?? []).filter((f) => f !== exclude);
  return l.find((f) => path.extname(f).toLowerCase() === '.png') ?? l[0];
};

/**
 * Lists the files of a folder dataset without splitting it (see the module comment for the rules).
 * Warnings cover: empty folders, a folder given twice, defective images without a mask, masks
 * without an image, and (with `skipBad`) every skipped file.
 * @throws DataError when a folder does not exist, is not a folder or cannot be read, when a
 *   folder is given both as normal and abnormal, or when there is no normal image at all.
 * @throws Error when `spec.normal` is empty.
 */
export async function listFolderDataset(spec: FolderSpec, opts: ReadOptions = {}): Promise<FolderListing> {
  if (!Array.isArray(spec.normal) || spec.normal.length === 0) throw new Error('folder dataset: at least one normal image folder is required (--normal DIR)');
  const abnormalIn = Array.isArray(spec.abnormal) ? spec.abnormal : [];
  const warnings: string[] = [];
  const suffix = spec.maskSuffix ?? DEFAULT_MASK_SUFFIX;
  const dedupe = async (dirs: readonly string[], what: string, seen: Map<string, string>): Promise<string[]> => {
    const out: string[] = [];
    for (const d of dirs) {
      const abs = await assertDir(d, what);
      const real = await fsp.realpath(abs);
      const prev = seen.get(real);
      if (prev !== undefined) {
        if (prev === what) warnings.push(`${what} ${abs} is given more than once; read once.`);
        else throw new DataError(`${abs} is given both as a normal and as an abnormal folder. A folder holds either normal or defective images.`, abs);
        continue;
      }
      seen.set(real, what);
      out.push(abs);
    }
    return out;
  };
  const seen = new Map<string, string>();
  const normalDirs = await dedupe(spec.normal, 'Normal image folder', seen);
  const abnormalDirs = await dedupe(abnormalIn, 'Abnormal image folder', seen);
  const masksDir = spec.masks !== undefined ? await assertDir(spec.masks, 'Mask folder') : undefined;

  const scans: FolderScan[] = [];
  const normal: string[] = [];
  const normalMasks = new Map<string, string>();
  const orphanBeside: string[] = [];
  for (const d of normalDirs) {
    const scan = await scanImageFolder(d, { maskSuffix: suffix });
    scans.push(scan);
    if (scan.images.length === 0) warnings.push(`Normal image folder ${d} contains no images.${emptyFolderHint(scan)}`);
    normal.push(...scan.images);
    for (const [img, m] of scan.masks) normalMasks.set(img, m);
    orphanBeside.push(...scan.orphanMasks);
  }
  if (normal.length === 0) {
    throw new DataError(`No normal images in ${normalDirs.join(', ')}: they must contain ${IMAGE_EXTENSIONS_TEXT} files (folders are not read recursively).${emptyFolderHint(scans[0]!)}`, normalDirs[0]!);
  }

  const defective: TestItem[] = [];
  const abnormalOf = new Map<string, string>(); // image -> its folder
  const besideOf = new Map<string, string>();
  for (const d of abnormalDirs) {
    const scan = await scanImageFolder(d, { maskSuffix: suffix });
    scans.push(scan);
    if (scan.images.length === 0) warnings.push(`Abnormal image folder ${d} contains no images; skipped.${emptyFolderHint(scan)}`);
    const type = defectTypeOf(d);
    for (const f of scan.images) {
      defective.push({ path: f, label: 1, defectType: type });
      abnormalOf.set(f, d);
    }
    for (const [img, m] of scan.masks) besideOf.set(img, m);
    orphanBeside.push(...scan.orphanMasks);
  }

  // Separate mask folder: flat, or one sub-folder per defect type (one level).
  const used = new Set<string>();
  let maskIndex: { top: Awaited<ReturnType<typeof indexMaskFolder>>; sub: Map<string, Awaited<ReturnType<typeof indexMaskFolder>>> } | undefined;
  if (masksDir !== undefined) {
    const top = await indexMaskFolder(masksDir);
    scans.push(top.scan);
    const sub = new Map<string, Awaited<ReturnType<typeof indexMaskFolder>>>();
    for (const s of top.scan.subfolders) {
      const ix = await indexMaskFolder(s);
      scans.push(ix.scan);
      sub.set(path.basename(s), ix);
    }
    maskIndex = { top, sub };
  }
  const fromMaskDir = (img: string, folderNames: string[]): string | undefined => {
    if (!maskIndex) return undefined;
    const stem = stemOf(path.basename(img));
    const folders = [...folderNames.map((n) => maskIndex!.sub.get(n)).filter((x) => x !== undefined), maskIndex.top];
    for (const ix of folders) {
      const m = (suffix !== '' ? preferPng(ix.byStem.get(stem + suffix), img) : undefined) ?? preferPng(ix.byStem.get(stem), img);
      if (m !== undefined) return m;
    }
    return undefined;
  };
  for (const it of defective) {
    const dir = abnormalOf.get(it.path)!;
    const m = fromMaskDir(it.path, [it.defectType, path.basename(dir)]) ?? besideOf.get(it.path);
    if (m !== undefined) {
      it.maskPath = m;
      used.add(m);
    }
  }
  for (const m of normalMasks.values()) used.add(m);

  // Missing masks.
  const withMask = defective.filter((it) => it.maskPath !== undefined).length;
  if (defective.length > 0 && withMask === 0) {
    warnings.push(`No masks found for the ${defective.length} defective image(s): pixel-level metrics will not be available. Put each mask beside its image (<stem>.png next to a non-PNG image, or <stem>${suffix || '_mask'}.<ext>) or pass a mask folder (--masks DIR).`);
  } else {
    for (const it of defective) {
      if (it.maskPath === undefined) {
        const stem = stemOf(path.basename(it.path));
        warnings.push(`No mask for ${it.path} (expected ${stem}${suffix}.png beside it${masksDir ? ` or ${stem}${suffix}.png / ${stem}.png in ${masksDir}` : ''}): pixel-level metrics will not be available.`);
      }
    }
  }
  // Orphan masks.
  for (const m of orphanBeside) {
    const s = stemOf(path.basename(m));
    const base = suffix !== '' && s.toLowerCase().endsWith(suffix.toLowerCase()) ? s.slice(0, s.length - suffix.length) : s;
    warnings.push(`Mask without image: ${m} (no image ${base}.* beside it); it is ignored.`);
  }
  if (maskIndex) {
    // Masks of the separate folder used by no defective image. Those named after a NORMAL image are
    // taken as that image's (normally empty) mask and not reported.
    const datasetImages = new Set([...normal, ...defective.map((d) => d.path)]);
    const normalStems = new Set(normal.map((f) => stemOf(path.basename(f))));
    const all = [maskIndex.top, ...maskIndex.sub.values()].flatMap((ix) => ix.scan.images);
    for (const m of all) {
      if (used.has(m) || datasetImages.has(m)) continue;
      const s = stemOf(path.basename(m));
      const base = suffix !== '' && s.toLowerCase().endsWith(suffix.toLowerCase()) ? s.slice(0, s.length - suffix.length) : s;
      if (normalStems.has(base)) continue;
      warnings.push(`Mask without image: ${m} (no defective image ${base}.* in the abnormal folders); it is ignored.`);
    }
  }

  let normalOut = normal;
  let defectiveOut = defective;
  if (opts.skipBad) {
    const badImages = await findBadFiles([...normal, ...defective.map((d) => d.path)], 'image', true);
    const masks = [...defective.flatMap((d) => (d.maskPath ? [d.maskPath] : [])), ...normalMasks.values()];
    const badMasks = await findBadFiles(masks, 'mask', true);
    for (const f of [...normal, ...defective.map((d) => d.path)]) {
      const e = badImages.get(f);
      if (e) warnings.push(skippedBadWarning('image', e));
    }
    normalOut = normal.filter((f) => !badImages.has(f));
    defectiveOut = defective.filter((d) => !badImages.has(d.path));
    for (const d of defectiveOut) {
      const e = d.maskPath !== undefined ? badMasks.get(d.maskPath) : undefined;
      if (e) {
        warnings.push(skippedBadWarning('mask', e));
        delete d.maskPath;
      }
    }
    for (const [img, m] of [...normalMasks]) if (badMasks.has(m) || badImages.has(img)) normalMasks.delete(img);
    if (normalOut.length === 0) throw new DataError(`Every normal image in ${normalDirs.join(', ')} is unreadable.`, normalDirs[0]!);
  }

  // One file, one entry, before any split: a linked copy of a normal image could otherwise land in train and test.
  const seenFiles = new Map<string, string>();
  normalOut = await dropSameFiles(normalOut, (f) => f, seenFiles, (d, f) => warnings.push(sameFileWarning(d, f)));
  defectiveOut = await dropSameFiles(defectiveOut, (t) => t.path, seenFiles, (d, f) => {
    if (normalOut.includes(f)) throw new DataError(`Defective image ${d} is the same file as the normal image ${f} (a link): one file cannot be both. Remove the link or the copy.`, d);
    warnings.push(sameFileWarning(d, f));
  });
  const root = commonAncestor([...normalDirs, ...abnormalDirs, ...(masksDir ? [masksDir] : [])]);
  return { name: spec.name ?? (path.basename(root) || root), root, normal: normalOut, defective: defectiveOut, normalMasks, scans, warnings };
}

function finish(kind: SplitDataset['kind'], name: string, root: string, parts: { train: string[]; val: string[]; test: TestItem[] }, warnings: string[], seed: number, fractions: SplitFractions): SplitDataset {
  const test = parts.test;
  if (test.length > 0 && (test.every((t) => t.label === 0) || test.every((t) => t.label === 1))) {
    warnings.push(`The test set has only ${test[0]!.label === 0 ? 'normal' : 'defective'} images: image AUROC cannot be computed.`);
  }
  return {
    kind, name, root, train: parts.train, val: parts.val, test, warnings,
    split: {
      seed,
      fractions: { ...fractions },
      files: { train: parts.train.map((p) => rel(root, p)), val: parts.val.map((p) => rel(root, p)), test: test.map((t) => rel(root, t.path)) },
    },
  };
}

/**
 * Reads a folder dataset and splits its normal images (seeded, see {@link splitThree}) into
 * train / val / test; all defective images are test images. Normal test items have label 0 and
 * defect type "good"; defective ones label 1, the folder's defect type and `maskPath` when found.
 * @param spec the folders, split fractions (default 0.7/0.1/0.2) and seed.
 * @param opts `skipBad`: skip zero-byte / unreadable / truncated files with a warning.
 * @throws DataError for missing/unreadable folders or no normal images; RangeError for bad fractions
 *   or too few normal images for the split.
 */
export async function readFolderDataset(spec: FolderSpec, opts: ReadOptions = {}): Promise<SplitDataset> {
  const fractions = spec.split ?? DEFAULT_SPLIT;
  validateFractions(fractions);
  const l = await listFolderDataset(spec, opts);
  const s = splitThree(l.normal, fractions, spec.seed);
  const test: TestItem[] = [...s.test.map((p): TestItem => ({ path: p, label: 0, defectType: 'good' })), ...l.defective];
  return finish('folder', l.name, l.root, { train: s.train, val: s.val, test }, l.warnings, spec.seed, fractions);
}

/**
 * The JSON-serialisable record of a dataset's split (relative paths only, no absolute root), to be
 * saved next to a checkpoint and given back to {@link applySavedSplit}.
 */
export function splitToJson(ds: SplitDataset): SavedSplit {
  return {
    format: 'ntsnet-split',
    version: 1,
    kind: ds.kind,
    name: ds.name,
    seed: ds.split.seed,
    fractions: { ...ds.split.fractions },
    files: { train: [...ds.split.files.train], val: [...ds.split.files.val], test: [...ds.split.files.test] },
  };
}

/**
 * Validates a parsed JSON value as a {@link SavedSplit}.
 * @throws Error saying which field is wrong.
 */
export function parseSavedSplit(value: unknown): SavedSplit {
  const bad = (what: string): never => {
    throw new Error(`Not a saved ntsnet split: ${what}. Use the split.json written by 'ntsnet data check --save-split' or splitToJson().`);
  };
  if (typeof value !== 'object' || value === null) return bad('expected a JSON object');
  const v = value as Record<string, unknown>;
  if (v.format !== 'ntsnet-split') bad('field "format" must be "ntsnet-split"');
  if (v.version !== 1) bad(`unsupported version ${String(v.version)} (expected 1)`);
  if (v.kind !== 'mvtec' && v.kind !== 'folder') bad('field "kind" must be "mvtec" or "folder"');
  if (typeof v.name !== 'string') bad('field "name" must be a string');
  if (typeof v.seed !== 'number' || !Number.isFinite(v.seed)) bad('field "seed" must be a number');
  const f = v.fractions as Record<string, unknown> | undefined;
  if (typeof f !== 'object' || f === null || !['train', 'val', 'test'].every((k) => typeof f[k] === 'number')) bad('field "fractions" must be {train, val, test} numbers');
  const files = v.files as Record<string, unknown> | undefined;
  if (typeof files !== 'object' || files === null) return bad('field "files" is missing');
  for (const k of ['train', 'val', 'test']) {
    const list = files[k];
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) bad(`field "files.${k}" must be an array of relative paths`);
    if ((list as string[]).some((x) => path.isAbsolute(x) || x.split('/').includes('..'))) bad(`field "files.${k}" must hold paths relative to the dataset root, without ".."`);
  }
  const fr = f as unknown as SplitFractions;
  const fl = files as unknown as SavedSplit['files'];
  return {
    format: 'ntsnet-split', version: 1, kind: v.kind as SavedSplit['kind'], name: v.name as string, seed: v.seed as number,
    fractions: { train: fr.train, val: fr.val, test: fr.test },
    files: { train: [...fl.train], val: [...fl.val], test: [...fl.test] },
  };
}

/**
 * Rebuilds a dataset with EXACTLY the file lists of a saved split (same train / val / test members
 * and order), whatever the seed or the current folder contents. The dataset is read again from
 * `input` (an MVTec category folder, or the same {@link FolderSpec}).
 * Rules: a train/val file must be a normal image (for MVTec: in train/good); a test file may be
 * any normal image (folder) or any test/ image (MVTec). Images found now but absent from the saved
 * split are ignored with one warning listing them.
 * @throws DataError when the kind differs, when saved files are missing (listed by name; with
 *   `skipBad`, missing files are skipped with a warning instead), when a file is listed twice, or
 *   when a file is in a role it cannot have (e.g. a defective image in train).
 */
export async function applySavedSplit(input: string | FolderSpec, saved: SavedSplit, opts: ReadOptions = {}): Promise<SplitDataset> {
  const s = parseSavedSplit(saved);
  const kind: SplitDataset['kind'] = typeof input === 'string' ? 'mvtec' : 'folder';
  let root: string;
  let name: string;
  const warnings: string[] = [];
  const trainable = new Set<string>();
  const testable = new Map<string, TestItem>();
  if (typeof input === 'string') {
    const cat = await readMvtecCategory(input, opts);
    root = cat.root;
    name = cat.name;
    warnings.push(...cat.warnings);
    for (const p of cat.train) trainable.add(p);
    for (const t of cat.test) testable.set(t.path, t);
  } else {
    const l = await listFolderDataset(input, opts);
    root = l.root;
    name = l.name;
    warnings.push(...l.warnings);
    for (const p of l.normal) {
      trainable.add(p);
      testable.set(p, { path: p, label: 0, defectType: 'good' });
    }
    for (const t of l.defective) testable.set(t.path, t);
  }
  if (s.kind !== kind) throw new DataError(`The saved split is for a${s.kind === 'mvtec' ? 'n MVTec AD category' : ' folder dataset'}, but ${typeof input === 'string' ? input : 'the given folders'} ${kind === 'mvtec' ? 'is an MVTec AD category' : 'describe a folder dataset'}.`, root);
  const seenRel = new Set<string>();
  const missing: string[] = [];
  const wrongRole: string[] = [];
  const resolveList = <T>(list: string[], role: 'train' | 'val' | 'test', get: (abs: string) => T | undefined): T[] => {
    const out: T[] = [];
    for (const r of list) {
      if (seenRel.has(r)) throw new DataError(`The saved split lists ${r} more than once; it is not a valid split.`, path.join(root, r));
      seenRel.add(r);
      const abs = path.join(root, ...r.split('/'));
      const v = get(abs);
      if (v !== undefined) out.push(v);
      else if (trainable.has(abs) || testable.has(abs)) wrongRole.push(`${r} (in ${role})`);
      else missing.push(r);
    }
    return out;
  };
  const train = resolveList(s.files.train, 'train', (a) => (trainable.has(a) ? a : undefined));
  const val = resolveList(s.files.val, 'val', (a) => (trainable.has(a) ? a : undefined));
  const test = resolveList(s.files.test, 'test', (a) => testable.get(a));
  const list = (xs: string[]): string => `${xs.slice(0, 10).join(', ')}${xs.length > 10 ? `, ... (${xs.length - 10} more)` : ''}`;
  if (wrongRole.length > 0) throw new DataError(`The saved split puts files in a role they cannot have (train/val must be normal${kind === 'mvtec' ? ' train/good' : ''} images): ${list(wrongRole)}.`, root);
  if (missing.length > 0) {
    const msg = `${missing.length} file(s) of the saved split are not in the dataset at ${root}: ${list(missing)}.`;
    if (!opts.skipBad) throw new DataError(`${msg} The split cannot be reproduced exactly; restore the files or make a new split.`, root);
    warnings.push(`${msg} Skipped.`);
  }
  const unlisted = [...new Set([...trainable, ...testable.keys()])].filter((a) => !seenRel.has(rel(root, a))).map((a) => rel(root, a));
  if (unlisted.length > 0) warnings.push(`${unlisted.length} image(s) are not in the saved split and are ignored: ${list(unlisted)}.`);
  return finish(kind, name, root, { train, val, test }, warnings, s.seed, s.fractions);
}

/**
 * Reads an MVTec AD category as a {@link SplitDataset}: val = seeded {@link holdOut} of
 * train/good (exactly the split `ntsnet fit` makes with the same fraction and seed), test = test/.
 * @throws DataError as {@link readMvtecCategory}; RangeError for an invalid fraction.
 */
export async function readMvtecDataset(root: string, opts: ReadOptions & { valFraction: number; seed: number }): Promise<SplitDataset> {
  const cat = await readMvtecCategory(root, opts);
  const { train, val } = holdOut(cat.train, opts.valFraction, opts.seed);
  return finish('mvtec', cat.name, cat.root, { train, val, test: cat.test }, [...cat.warnings], opts.seed, { train: 1 - opts.valFraction, val: opts.valFraction, test: 0 });
}
