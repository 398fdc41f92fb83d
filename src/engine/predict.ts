import { readFile, readdir, readlink, realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import { loadImageRgb8 } from '../data/image.js';
import { commonAncestor } from '../data/folder.js';
import { IMAGE_EXTENSIONS_TEXT, isImageFile, naturalCompare } from '../data/mvtec.js';
import type { NTSNet } from '../model/ntsnet.js';
import { writeOverlayPng } from '../report/overlay.js';
import { loadImageSet } from './batches.js';
import type { CheckpointMeta } from './checkpoint.js';
import { assertOutsideDataset } from './paths.js';
import { scoreImageSet } from './score.js';

/** Score of one predicted image. */
export interface PredictedImage {
  path: string;
  score: number;
  overlay?: string;
}

/**
 * Expands an image file or a folder (recursive; hidden entries and non-images skipped) into image paths.
 * Folders are walked by real path: each file is listed once even when symbolic links reach it several ways, and a
 * link back to a folder being walked (`self -> .`, `up -> ..`) is a loop: it is not followed, and a note saying so
 * is pushed to `warnings` (as is each file or folder reached a second time through another link).
 * @throws Error naming the path when it does not exist or holds no images.
 */
export async function collectImages(input: string, warnings: string[] = []): Promise<string[]> {
  let st;
  try {
    st = await stat(input);
  } catch {
    const target = await readlink(input).catch(() => undefined);
    if (target !== undefined) throw new Error(`${input} is a broken symbolic link (to ${target}, which does not exist). Fix the link or pass the image itself.`);
    throw new Error(`${input} does not exist. Pass an image file or a folder of images.`);
  }
  if (st.isFile()) {
    if (!isImageFile(path.basename(input))) throw new Error(`${input} is not a supported image (${IMAGE_EXTENSIONS_TEXT}).`);
    return [path.resolve(input)];
  }
  const out: string[] = [];
  const seenFiles = new Map<string, string>(); // real path -> the path it was listed under
  const seenDirs = new Map<string, string>();
  // A link to the folder being read or to any folder above it would read that folder again, forever.
  const within = (inner: string, outer: string): boolean => inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : outer + path.sep);
  const walk = async (dir: string, real: string): Promise<void> => {
    seenDirs.set(real, dir);
    const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.')).sort((a, b) => naturalCompare(a.name, b.name));
    for (const e of entries) {
      const p = path.join(dir, e.name);
      const s = await stat(p).catch(() => undefined);
      if (!s && e.isSymbolicLink()) {
        warnings.push(`${p} is a broken symbolic link (to ${await readlink(p).catch(() => '?')}); skipped.`);
        continue;
      }
      if (!s?.isDirectory() && !(s?.isFile() && isImageFile(e.name))) continue;
      const r = await realpath(p).catch(() => p);
      if (s.isDirectory()) {
        if (within(real, r)) warnings.push(`symbolic link loop: ${p} leads back to ${r}, a folder that is being read (it contains ${p}); not followed.`);
        else if (seenDirs.has(r)) warnings.push(`${p} is the same folder as ${seenDirs.get(r)} (symbolic link); its images are listed once.`);
        else await walk(p, r);
      } else if (seenFiles.has(r)) {
        warnings.push(`${p} is the same file as ${seenFiles.get(r)} (symbolic link); scored once.`);
      } else {
        seenFiles.set(r, p);
        out.push(p);
      }
    }
  };
  const root = path.resolve(input);
  await walk(root, await realpath(root));
  if (out.length === 0) throw new Error(`${input} contains no images (${IMAGE_EXTENSIONS_TEXT}).`);
  return out;
}

/** Images to inspect, with the folder their output paths are made relative to. */
export interface InspectionInputs {
  /** Absolute image paths: folder order (natural sort, recursive) or list-file order (duplicates dropped). */
  files: string[];
  /** Absolute folder the relative output structure starts from: the folder, the image's folder, or the deepest common folder of a list. */
  root: string;
  /** Absolute folders the output must stay out of (the input folder, or every folder holding a listed image). */
  guardDirs: string[];
  kind: 'image' | 'folder' | 'list';
  /** Non-fatal notes (e.g. duplicate list entries). */
  warnings: string[];
}

/**
 * Reads a list file (.txt): one image path per line; blank lines and lines starting with '#' are ignored;
 * relative paths resolve against the list file's folder; duplicates are dropped (first kept, with a warning).
 * @throws Error naming the list file and line for a missing file, a folder, or a non-image entry, or when empty.
 */
export async function readImageList(listFile: string): Promise<{ files: string[]; warnings: string[] }> {
  const base = path.dirname(path.resolve(listFile));
  const text = await readFile(listFile, 'utf8');
  const files: string[] = [], warnings: string[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith('#')) continue;
    const where = `${listFile}:${i + 1}`;
    const p = path.resolve(base, line);
    const st = await stat(p).catch(() => undefined);
    if (!st) throw new Error(`${where}: ${line} does not exist (relative paths resolve against ${base}).`);
    if (!st.isFile()) throw new Error(`${where}: ${line} is not a file; list image files, one per line.`);
    if (!isImageFile(path.basename(p))) throw new Error(`${where}: ${line} is not a supported image (${IMAGE_EXTENSIONS_TEXT}).`);
    const real = await realpath(p).catch(() => p);
    if (seen.has(real)) {
      warnings.push(`${where}: duplicate entry ${line} ignored${real !== p && !seen.has(p) ? ` (the same file as an earlier entry, through a symbolic link)` : ''}.`);
      continue;
    }
    seen.add(real);
    files.push(p);
  }
  if (!files.length) throw new Error(`${listFile} lists no images (one path per line; '#' starts a comment).`);
  return { files, warnings };
}

/**
 * Expands the input of `ntsnet predict`: an image file, a folder (recursive, see {@link collectImages}) or a list
 * file (`.txt`, see {@link readImageList}).
 * @throws Error naming the path when it does not exist, is not an image / list, or holds no images.
 */
export async function collectInspectionInputs(input: string): Promise<InspectionInputs> {
  const st = await stat(input).catch(() => undefined);
  if (!st) throw new Error(`${input} does not exist. Pass an image file, a folder of images or a .txt list of image paths.`);
  if (st.isFile() && path.extname(input).toLowerCase() === '.txt') {
    const { files, warnings } = await readImageList(input);
    const dirs = [...new Set(files.map((f) => path.dirname(f)))];
    return { files, root: commonAncestor(dirs), guardDirs: dirs, kind: 'list', warnings };
  }
  const warnings: string[] = [];
  const files = await collectImages(input, warnings);
  const root = st.isDirectory() ? path.resolve(input) : path.dirname(path.resolve(input));
  // A single image's parent folder is not treated as a dataset (that would refuse `predict photo.png --out inspect`);
  // the MVTec category around it, if any, still is (assertPredictOutput).
  const guard = st.isDirectory() ? root : ((await enclosingMvtecCategory(root)) ?? path.join(root, path.basename(files[0]!)));
  return { files, root, guardDirs: [guard], kind: st.isDirectory() ? 'folder' : 'image', warnings };
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/** The nearest folder at or above `dir` that is an MVTec AD category (has train/good and test/), if any. */
export async function enclosingMvtecCategory(dir: string): Promise<string | undefined> {
  let d = path.resolve(dir);
  for (;;) {
    if ((await isDir(path.join(d, 'train', 'good'))) && (await isDir(path.join(d, 'test')))) return d;
    const parent = path.dirname(d);
    if (parent === d) return undefined;
    d = parent;
  }
}

/**
 * Refuses an overlay folder inside (or equal to) the folder of the input images, or inside the MVTec AD category
 * folder that holds them (e.g. `predict bottle/test/crack --out bottle/overlays`): ntsnet never writes into datasets.
 * @throws Error naming both folders.
 */
export async function assertPredictOutput(outDir: string, root: string): Promise<void> {
  await assertOutsideDataset(outDir, root);
  const category = await enclosingMvtecCategory(root);
  if (category) await assertOutsideDataset(outDir, category);
}

/**
 * Heat-map colour scale, the same for every image: 0 .. 2 x the checkpoint's pixel threshold (the threshold is the
 * middle of the colour map); for older checkpoints without thresholds 0 .. 1.5 x the largest validation score;
 * undefined (each image's own maximum) without either.
 */
export function heatmapRange(meta: CheckpointMeta): { vmin: number; vmax: number } | undefined {
  if (meta.thresholds) return { vmin: 0, vmax: 2 * meta.thresholds.pixel }; // same scale as `ntsnet predict --out` (docs/inspection.md)
  return meta.valScores.length ? { vmin: 0, vmax: 1.5 * Math.max(...meta.valScores) } : undefined;
}

/**
 * Scores images and writes one heat-map overlay PNG per image (`<name>_overlay.png`, relative folder structure kept)
 * into `outDir`, in chunks so memory stays bounded. Results are in the order of `files` and do not depend on that
 * order or on `batchSize`.
 * @throws Error when `outDir` is inside `root` or inside the MVTec AD category holding it (see {@link assertPredictOutput}).
 */
export async function predictImages(tf: Tf, model: NTSNet, meta: CheckpointMeta, files: string[], root: string, outDir: string | undefined, batchSize: number, onImage?: (r: PredictedImage) => void): Promise<PredictedImage[]> {
  if (outDir !== undefined) await assertPredictOutput(outDir, root);
  const size = model.config.imageSize;
  const range = heatmapRange(meta);
  const out: PredictedImage[] = [];
  const chunk = Math.max(batchSize, 32);
  for (let i = 0; i < files.length; i += chunk) {
    const part = files.slice(i, i + chunk);
    const set = await loadImageSet(part, size);
    const { scores, maps } = scoreImageSet(tf, model, set, batchSize, outDir !== undefined);
    for (let j = 0; j < part.length; j++) {
      const r: PredictedImage = { path: part[j]!, score: scores[j]! };
      if (outDir) {
        const map = maps!.subarray(j * size * size, (j + 1) * size * size);
        const rel = path.relative(root, part[j]!) || path.basename(part[j]!);
        const dest = path.join(outDir, `${rel.slice(0, rel.length - path.extname(rel).length)}_overlay.png`);
        const rgb = await loadImageRgb8(part[j]!);
        let vmax = range?.vmax ?? 0;
        if (!range) for (const v of map) vmax = Math.max(vmax, v);
        await writeOverlayPng(dest, rgb, map, { mapWidth: size, mapHeight: size, vmin: range?.vmin ?? 0, vmax });
        r.overlay = dest;
      }
      out.push(r);
      onImage?.(r);
    }
  }
  return out;
}
