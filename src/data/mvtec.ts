/**
 * Reader for one category of the MVTec AD dataset layout:
 *
 *     <root>/train/good/*.png                     normal training images
 *     <root>/test/good/*.png                      normal test images (label 0)
 *     <root>/test/<defect>/*.png                  defective test images (label 1)
 *     <root>/ground_truth/<defect>/<stem>_mask.png pixel masks of the defective test images
 *
 * Only the folder layout is checked here; images are decoded later (see image.ts).
 */
import { promises as fsp } from 'node:fs';
import type { Dirent } from 'node:fs';
import * as path from 'node:path';
import { DataError, findBadFiles, skippedBadWarning } from './image.js';
import { dropSameFiles, sameFileWarning } from './dedupe.js';

/** File extensions recognised as images (compared case-insensitively). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.gif'];
/** The extensions as text for messages: ".png, .jpg, ...". */
export const IMAGE_EXTENSIONS_TEXT = IMAGE_EXTENSIONS.join(', ');

/** One test image. */
export interface TestItem {
  /** Absolute path of the image. */
  path: string;
  /** 0 = normal ("good"), 1 = anomalous (any other defect type). */
  label: 0 | 1;
  /** Name of the test sub-folder, e.g. "good", "broken_large". */
  defectType: string;
  /**
   * Absolute path of the ground-truth mask, `ground_truth/<defectType>/<stem>_mask.<ext>`.
   * Always undefined for good images (their mask is all zeros) and for defective images whose
   * mask file does not exist (e.g. no ground_truth folder at all).
   */
  maskPath?: string;
}

/** The contents of one MVTec-style category folder. */
export interface MvtecCategory {
  /** Category name: the folder's base name, e.g. "bottle". */
  name: string;
  /** Absolute path of the category folder. */
  root: string;
  /** Absolute paths of train/good images, natural sort order. */
  train: string[];
  /** Test images: "good" first, then the other defect types in natural order; files in natural order within each. */
  test: TestItem[];
  /**
   * Non-fatal layout problems, one human-readable line each (e.g. a defective image without a
   * mask while ground_truth/ exists, stray files in test/). Empty when everything is in order.
   */
  warnings: string[];
}

/** Options of the dataset readers. */
export interface ReadOptions {
  /**
   * Check every listed image and mask (zero-byte, unreadable header, truncated; see
   * `probeImageFile`) and SKIP the bad ones with a warning naming each file (a bad mask only
   * removes that item's `maskPath`). Default false: files are not opened while listing, and the
   * loaders throw a DataError naming the first bad file when it is decoded.
   */
  skipBad?: boolean;
}

/** True when `name` has one of {@link IMAGE_EXTENSIONS} (case-insensitive) and is not a hidden file. */
export function isImageFile(name: string): boolean {
  if (name.startsWith('.')) return false;
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

/**
 * Natural-order comparison: digit runs compare by numeric value ("2.png" < "10.png"), other
 * text by code unit (locale independent, so the order is the same on every machine). Ties on the
 * numeric value (e.g. "01" vs "1") fall back to plain string order.
 */
export function naturalCompare(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g;
  const ta = a.match(re) ?? [];
  const tb = b.match(re) ?? [];
  const n = Math.min(ta.length, tb.length);
  for (let i = 0; i < n; i++) {
    const x = ta[i]!;
    const y = tb[i]!;
    if (x === y) continue;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const sx = x.replace(/^0+(?=\d)/, '');
      const sy = y.replace(/^0+(?=\d)/, '');
      if (sx.length !== sy.length) return sx.length - sy.length;
      if (sx !== sy) return sx < sy ? -1 : 1;
      continue; // same value, different zero padding: decided by the final tie-break
    }
    return x < y ? -1 : 1;
  }
  if (ta.length !== tb.length) return ta.length - tb.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Resolves a directory entry's kind, following symbolic links (a dangling link is 'other'). */
export async function entryKind(dir: string, e: Dirent): Promise<'file' | 'dir' | 'other'> {
  if (e.isFile()) return 'file';
  if (e.isDirectory()) return 'dir';
  if (e.isSymbolicLink()) {
    try {
      const st = await fsp.stat(path.join(dir, e.name));
      return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
    } catch {
      return 'other'; // dangling link
    }
  }
  return 'other';
}

async function readDirEntries(dir: string): Promise<Dirent[]> {
  try {
    return await fsp.readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new DataError(`Cannot read folder ${dir}: ${(e as Error).message}. Check that it exists and is readable.`, dir, { cause: e });
  }
}

/**
 * Lists the image files of one folder (not recursive): hidden files, non-image files
 * (.DS_Store, Thumbs.db, *.txt, ...) and sub-folders are skipped.
 * @returns absolute paths in natural order.
 * @throws DataError when the folder cannot be read.
 */
export async function listImages(dir: string): Promise<string[]> {
  const abs = path.resolve(dir);
  const out: string[] = [];
  for (const e of await readDirEntries(abs)) {
    if (!isImageFile(e.name)) continue;
    if ((await entryKind(abs, e)) === 'file') out.push(e.name);
  }
  out.sort(naturalCompare);
  return out.map((n) => path.join(abs, n));
}

/** Finds `<stem>_mask.<image ext>` in `dir` (case-insensitive extension; `.png` preferred). */
function findMask(maskNames: Map<string, string[]>, stem: string): string | undefined {
  const candidates = maskNames.get(`${stem}_mask`);
  if (!candidates || candidates.length === 0) return undefined;
  return candidates.find((n) => path.extname(n).toLowerCase() === '.png') ?? candidates[0];
}

/**
 * Reads the file lists of one MVTec AD category folder (see the module comment for the layout).
 * Hidden files and non-images are ignored. A missing `ground_truth/` folder (or sub-folder) is
 * allowed: the affected defective items get `maskPath: undefined` and pixel-level metrics are
 * then not available (see {@link hasMasks}).
 * Masks in `ground_truth/<defect>/` that belong to no test image are reported as warnings
 * ("Mask without image: ..."), as are defective images without a mask when `ground_truth/` exists.
 * @param root the category folder, e.g. `.../mvtec_ad/bottle`.
 * @param opts `skipBad`: skip zero-byte/unreadable/truncated files with a warning (see {@link ReadOptions}).
 * @throws DataError when `root` does not exist or is not a folder; when `train/good` or `test/`
 *   is missing ("is not an MVTec AD category folder: expected train/good and test/"); when
 *   `train/good` holds no images; when `test/` holds no images; when a folder cannot be read.
 */
export async function readMvtecCategory(root: string, opts: ReadOptions = {}): Promise<MvtecCategory> {
  const absRoot = path.resolve(root);
  let st;
  try {
    st = await fsp.stat(absRoot);
  } catch {
    throw new DataError(`Dataset folder ${absRoot} does not exist. Pass the path of one MVTec AD category folder (e.g. .../mvtec_ad/bottle).`, absRoot);
  }
  if (!st.isDirectory()) throw new DataError(`${absRoot} is not a folder. Pass the path of one MVTec AD category folder (e.g. .../mvtec_ad/bottle).`, absRoot);

  const trainDir = path.join(absRoot, 'train', 'good');
  const testDir = path.join(absRoot, 'test');
  const [hasTrain, hasTest] = await Promise.all([isDir(trainDir), isDir(testDir)]);
  if (!hasTrain || !hasTest) {
    const missing = [!hasTrain ? 'train/good' : '', !hasTest ? 'test/' : ''].filter(Boolean).join(' and ');
    let hint = '';
    const cats: string[] = [];
    for (const e of await readDirEntries(absRoot)) {
      if (!e.name.startsWith('.') && (await isDir(path.join(absRoot, e.name, 'train', 'good')))) cats.push(e.name);
    }
    if (cats.length > 0) {
      cats.sort(naturalCompare);
      hint = ` It looks like a dataset root holding categories (${cats.slice(0, 5).join(', ')}${cats.length > 5 ? ', ...' : ''}); pass one of them, e.g. ${path.join(absRoot, cats[0]!)}.`;
    }
    throw new DataError(`${absRoot} is not an MVTec AD category folder: expected train/good and test/ (missing: ${missing}).${hint}`, absRoot);
  }

  const warnings: string[] = [];
  let train = await listImages(trainDir);
  if (opts.skipBad) train = await dropBad(train, 'image', warnings);
  if (train.length === 0) {
    throw new DataError(`No training images in ${trainDir}: it must contain the normal images (${IMAGE_EXTENSIONS_TEXT}).`, trainDir);
  }

  // Defect types = sub-folders of test/.
  const types: string[] = [];
  for (const e of await readDirEntries(testDir)) {
    if (e.name.startsWith('.')) continue;
    const kind = await entryKind(testDir, e);
    if (kind === 'dir') types.push(e.name);
    else if (kind === 'file' && isImageFile(e.name)) warnings.push(`Ignored ${path.join(testDir, e.name)}: test images must be inside test/<defect type>/ (use test/good/ for normal ones).`);
  }
  types.sort((a, b) => (a === 'good' ? -1 : b === 'good' ? 1 : naturalCompare(a, b)));

  const gtRoot = path.join(absRoot, 'ground_truth');
  const hasGt = await isDir(gtRoot);
  const test: TestItem[] = [];
  for (const type of types) {
    const listed = await listImages(path.join(testDir, type));
    const files = opts.skipBad ? await dropBad(listed, 'image', warnings) : listed;
    const skippedStems = new Set(listed.filter((f) => !files.includes(f)).map((f) => path.basename(f, path.extname(f))));
    if (files.length === 0) {
      warnings.push(`Test folder ${path.join(testDir, type)} contains no images; skipped.`);
      continue;
    }
    const label: 0 | 1 = type === 'good' ? 0 : 1;
    if (label === 0) {
      for (const f of files) test.push({ path: f, label, defectType: type });
      continue;
    }
    // Index the mask folder once: "<stem>_mask" -> file names with an image extension.
    const maskDir = path.join(gtRoot, type);
    const maskNames = new Map<string, string[]>();
    const maskDirExists = hasGt && (await isDir(maskDir));
    if (maskDirExists) {
      for (const e of await readDirEntries(maskDir)) {
        if (!isImageFile(e.name) || (await entryKind(maskDir, e)) !== 'file') continue;
        const key = e.name.slice(0, e.name.length - path.extname(e.name).length);
        const list = maskNames.get(key) ?? [];
        list.push(e.name);
        maskNames.set(key, list);
      }
    } else if (hasGt) {
      warnings.push(`No mask folder ${maskDir}: pixel-level metrics will not be available.`);
    }
    const used = new Set<string>();
    const items: TestItem[] = [];
    for (const f of files) {
      const stem = path.basename(f, path.extname(f));
      const maskName = findMask(maskNames, stem);
      const item: TestItem = { path: f, label, defectType: type };
      if (maskName !== undefined) {
        item.maskPath = path.join(maskDir, maskName);
        used.add(`${stem}_mask`);
      } else if (maskDirExists) warnings.push(`No mask for ${f} (expected ${path.join(maskDir, `${stem}_mask.png`)}): pixel-level metrics will not be available.`);
      items.push(item);
    }
    // Masks that belong to no test image (reported by name; they are not used).
    // (The masks of images skipped as unreadable are not orphans: their image exists.)
    const orphans = [...maskNames.entries()].filter(([k]) => !used.has(k) && !skippedStems.has(k.replace(/_mask$/, ''))).flatMap(([, names]) => names).sort(naturalCompare);
    for (const n of orphans) {
      const stem = n.slice(0, n.length - path.extname(n).length).replace(/_mask$/, '');
      warnings.push(`Mask without image: ${path.join(maskDir, n)} (no ${path.join(testDir, type, `${stem}.*`)}); it is ignored.`);
    }
    if (opts.skipBad) {
      const bad = await findBadFiles(items.flatMap((it) => (it.maskPath ? [it.maskPath] : [])), 'mask', true);
      for (const it of items) {
        const err = it.maskPath !== undefined ? bad.get(it.maskPath) : undefined;
        if (err) {
          warnings.push(skippedBadWarning('mask', err));
          delete it.maskPath;
        }
      }
    }
    test.push(...items);
  }
  if (hasGt) {
    for (const e of await readDirEntries(gtRoot)) {
      if (e.name.startsWith('.') || types.includes(e.name) || (await entryKind(gtRoot, e)) !== 'dir') continue;
      warnings.push(`Mask folder ${path.join(gtRoot, e.name)} has no matching test folder ${path.join(testDir, e.name)}; its masks are ignored.`);
    }
  }
  if (test.length === 0) {
    throw new DataError(`No test images under ${testDir}: expected test/good/ and test/<defect type>/ folders with images.`, testDir);
  }
  // One file, one entry: a link must not count an image twice, nor put a training image into the test split.
  const seen = new Map<string, string>();
  const trainOnce = await dropSameFiles(train, (f) => f, seen, (d, f) => warnings.push(sameFileWarning(d, f)));
  const testOnce = await dropSameFiles(test, (t) => t.path, seen, (d, f) =>
    warnings.push(`Test image ${d} is the same file as ${f} (a link): ${trainOnce.includes(f) ? 'a training image; left out of the test split, where it would inflate the metrics' : 'read once'}.`));
  return { name: path.basename(absRoot), root: absRoot, train: trainOnce, test: testOnce, warnings };
}

/** Removes the files that fail `probeImageFile`, adding one warning per skipped file (in file order). */
async function dropBad(files: string[], kind: 'image' | 'mask', warnings: string[]): Promise<string[]> {
  const bad = await findBadFiles(files, kind, true); // full decode: --skip-bad must also catch data corrupt past a valid header
  if (bad.size === 0) return files;
  for (const f of files) {
    const e = bad.get(f);
    if (e) warnings.push(skippedBadWarning(kind, e));
  }
  return files.filter((f) => !bad.has(f));
}

/**
 * True when pixel-level evaluation is possible: there is at least one anomalous item and every
 * anomalous item (label 1) has a `maskPath`. Normal items need no mask (all zeros).
 */
export function hasMasks(items: readonly TestItem[]): boolean {
  let anomalous = 0;
  for (const it of items) {
    if (it.label !== 1) continue;
    anomalous++;
    if (it.maskPath === undefined) return false;
  }
  return anomalous > 0;
}
