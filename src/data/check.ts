/**
 * `ntsnet data check`: inspects a dataset without training. Reads every image header (sharp
 * metadata), decodes every mask, and reports counts per split and defect type, image sizes and
 * channel modes, mask value statistics, ignored files and every problem found.
 *
 * Errors (exit code 1): unreadable / zero-byte / truncated images or masks (warnings with
 * `skipBad`), a mask whose aspect ratio differs from its image's, fewer than 2 training images.
 * Warnings: everything the readers warn about (defective image without mask, mask without image,
 * empty folders, only one class in test, ...), images smaller than {@link MIN_IMAGE_SIDE} px
 * (upscaled), masks of a different size but the same aspect ratio (scaled), empty masks of
 * defective images, non-empty masks of normal images.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DataError, JPEG_MASK_THRESHOLD, MIN_IMAGE_SIDE, decodeMaskValues, maskAlignment, probeImageFile, SKIPPED_BAD, type ImageProbe } from './image.js';
import { detectLayout, readDataset } from './dataset.js';
import { listFolderDataset, readMvtecDataset, scanImageFolder, splitToJson, type FolderSpec, type IgnoredFile, type SavedSplit, type SplitDataset, type SplitFractions } from './folder.js';
import { naturalCompare } from './mvtec.js';
import { mapLimit } from '../util/concurrency.js';

/** Options of {@link checkDataset}. */
export interface CheckOptions {
  /** MVTec: fraction of train/good held out for validation (default 0.1, as `ntsnet fit`). */
  valFraction?: number;
  /** MVTec: hold-out seed (default 42, as `ntsnet fit`). A FolderSpec carries its own seed. */
  seed?: number;
  /** Report bad files as warnings and leave them out of the counts (what the readers' `skipBad` does). */
  skipBad?: boolean;
  /** Decode every image fully (slower) instead of reading headers plus the cheap end-of-file test. */
  decode?: boolean;
  /** Progress lines (e.g. to stderr). */
  onProgress?: (line: string) => void;
}

/** One problem found by the check. */
export interface CheckProblem {
  severity: 'error' | 'warning';
  message: string;
  /** What kind of problem (e.g. `small-image`, `empty-mask`): the report groups problems of one kind. */
  kind?: string;
}

/** Smallest number of training images `fit` accepts (BatchNorm needs batch statistics over more than one image). */
export const MIN_TRAINING_IMAGES = 2;

/** The error for too few training images, shared by `data check` and `fit`; undefined when there are enough. */
export function tooFewTrainingImages(n: number): string | undefined {
  return n < MIN_TRAINING_IMAGES ? `Only ${n} training image(s): training needs at least ${MIN_TRAINING_IMAGES} (BatchNorm). Add normal images, or lower the validation/test fractions (--val-fraction 0, --split).` : undefined;
}

/** Short names of the problem kinds, for the grouped report. */
const KIND_TITLES: Readonly<Record<string, string>> = {
  'bad-image': 'unreadable, empty or truncated images', 'bad-mask': 'unreadable, empty or truncated masks',
  'normal-mask-not-empty': 'non-empty masks of normal images', 'empty-mask': 'empty masks of defective images',
  'mask-scaled': 'masks of another size (same aspect ratio, scaled)', 'mask-mismatch': 'masks whose aspect ratio differs from their image',
  'small-image': `images smaller than 32 px`, dataset: 'dataset notes',
};

/** Image-size summary (sizes after EXIF orientation). */
export interface SizeStats {
  minWidth: number;
  maxWidth: number;
  minHeight: number;
  maxHeight: number;
  /** Every distinct size with its count, most frequent first (ties: smaller width, then height). */
  distinct: { width: number; height: number; count: number }[];
}

/** How many images share one storage mode. */
export interface ModeCount {
  format: string;
  channels: number;
  space: string;
  bitDepth: number;
  hasAlpha: boolean;
  isPalette: boolean;
  count: number;
}

/**
 * Mask value statistics on the raw values (max over channels, native bit depth; 8-bit levels).
 * Each mask is in exactly one of binary0255 / binary01 / binaryOther / soft / zero.
 */
export interface MaskStats {
  /** Masks decoded. */
  count: number;
  /** Values exactly {0, 255} (255 present). */
  binary0255: number;
  /** Values exactly {0, 1} (1 present). */
  binary01: number;
  /** Exactly one non-zero value other than 1 and 255 (e.g. 0/200). */
  binaryOther: number;
  /** Two or more distinct non-zero values (soft / anti-aliased edges or grey levels). */
  soft: number;
  /** Every value 0. */
  zero: number;
  /** Empty AFTER binarisation (no anomalous pixel): the all-zero masks plus JPEG masks with nothing >= 128. */
  empty: number;
  /** Lossy JPEG masks (binarised at >= 128). */
  jpeg: number;
  /** The distinct single non-zero values seen in binaryOther masks (8-bit levels). */
  otherValues: number[];
}

/** The result of {@link checkDataset}. */
export interface CheckReport {
  kind: 'mvtec' | 'folder';
  name: string;
  root: string;
  seed: number;
  fractions: SplitFractions;
  counts: {
    /** MVTec: images in train/good before the hold-out; folder: all normal images. */
    normalPool: number;
    train: number;
    val: number;
    testNormal: number;
    testDefective: number;
  };
  /** Test images per defect type ("good" first), with the number having a mask. */
  defectTypes: { name: string; images: number; masks: number }[];
  images: { count: number; sizes: SizeStats | null; modes: ModeCount[] };
  /** Statistics of the masks of defective images. */
  masks: MaskStats;
  /** Masks found beside normal images (folder datasets, e.g. Magnetic Tile's MT_Free): count and how many are not empty. */
  normalMasks: { count: number; nonEmpty: number };
  /** Files not used (hidden, non-image, broken links), with the reason. */
  ignored: IgnoredFile[];
  problems: CheckProblem[];
  errors: number;
  warnings: number;
  /** The split, ready to save (see splitToJson). */
  split: SavedSplit;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Raw facts about one decoded mask. */
interface MaskFacts {
  width: number;
  height: number;
  jpeg: boolean;
  /** Distinct non-zero values (8-bit levels for 8-bit files; capped at 3 entries). */
  nonZero: number[];
  /** Anomalous pixels after the loaders' binarisation rule. */
  ones: number;
}

async function maskFacts(file: string): Promise<MaskFacts> {
  await probeImageFile(file, { kind: 'mask' }); // zero-byte / truncated files get the same message as images
  const m = await decodeMaskValues(file);
  const seen = new Set<number>();
  let ones = 0;
  for (let i = 0; i < m.values.length; i++) {
    const v = m.values[i]!;
    if (v >= m.threshold) ones++;
    if (v > 0 && seen.size < 3) seen.add(v);
  }
  // Report 8-bit levels (16-bit values / 257, rounded).
  const to8 = (x: number): number => (m.maxValue === 255 ? x : Math.round(x / 257));
  return { width: m.width, height: m.height, jpeg: m.lossy, nonZero: [...seen].sort((a, b) => a - b).map(to8), ones };
}

function sizeStats(probes: readonly ImageProbe[]): SizeStats | null {
  if (probes.length === 0) return null;
  const counts = new Map<string, { width: number; height: number; count: number }>();
  for (const p of probes) {
    const k = `${p.width}x${p.height}`;
    const c = counts.get(k) ?? { width: p.width, height: p.height, count: 0 };
    c.count++;
    counts.set(k, c);
  }
  return {
    minWidth: Math.min(...probes.map((p) => p.width)),
    maxWidth: Math.max(...probes.map((p) => p.width)),
    minHeight: Math.min(...probes.map((p) => p.height)),
    maxHeight: Math.max(...probes.map((p) => p.height)),
    distinct: [...counts.values()].sort((a, b) => b.count - a.count || a.width - b.width || a.height - b.height),
  };
}

function modeCounts(probes: readonly ImageProbe[]): ModeCount[] {
  const m = new Map<string, ModeCount>();
  for (const p of probes) {
    const k = [p.format, p.channels, p.space, p.bitDepth, p.hasAlpha, p.isPalette].join('|');
    const c = m.get(k) ?? { format: p.format, channels: p.channels, space: p.space, bitDepth: p.bitDepth, hasAlpha: p.hasAlpha, isPalette: p.isPalette, count: 0 };
    c.count++;
    m.set(k, c);
  }
  return [...m.values()].sort((a, b) => b.count - a.count || naturalCompare(a.format, b.format));
}

/** Ignored files of an MVTec category: train/good, test/, test/<type>, ground_truth/, ground_truth/<type>. */
async function mvtecIgnored(root: string): Promise<IgnoredFile[]> {
  const out: IgnoredFile[] = [];
  const visit = async (dir: string, descend: boolean): Promise<void> => {
    let scan;
    try {
      scan = await scanImageFolder(dir, { besideMasks: false });
    } catch {
      return; // missing folder (e.g. no ground_truth): not about ignored files
    }
    out.push(...scan.ignored);
    if (descend) for (const s of scan.subfolders) await visit(s, false);
  };
  await visit(path.join(root, 'train', 'good'), false);
  await visit(path.join(root, 'test'), true);
  await visit(path.join(root, 'ground_truth'), true);
  return out;
}

/**
 * Checks a dataset without training (see the module comment for what is an error and what is a
 * warning). Bad files never throw here: they become problems.
 * @param input an MVTec AD category folder, or a {@link FolderSpec}.
 * @throws DataError when the dataset cannot be listed at all (missing folder, wrong layout, no
 *   normal images), exactly as the readers.
 */
export async function checkDataset(input: string | FolderSpec, opts: CheckOptions = {}): Promise<CheckReport> {
  const valFraction = opts.valFraction ?? 0.1;
  const seed = opts.seed ?? 42;
  const progress = opts.onProgress ?? (() => {});
  const problems: CheckProblem[] = [];
  const badSeverity: CheckProblem['severity'] = opts.skipBad ? 'warning' : 'error';

  // 1. Listing (no file is opened yet).
  let ds: SplitDataset;
  let ignored: IgnoredFile[];
  let normalMasks = new Map<string, string>();
  if (typeof input === 'string') {
    const layout = await detectLayout(input);
    if (layout.kind !== 'mvtec') ds = await readDataset(input, { valFraction, seed }); // throws the explanation
    else ds = await readMvtecDataset(layout.root, { valFraction, seed });
    ignored = await mvtecIgnored(ds.root);
  } else {
    const listing = await listFolderDataset(input);
    ds = await readDataset(input, { valFraction, seed });
    ignored = listing.scans.flatMap((s) => s.ignored);
    normalMasks = listing.normalMasks;
  }
  // Natural path order, so that problems are listed folder by folder, file by file.
  const allImages = [...ds.train, ...ds.val, ...ds.test.map((t) => t.path)].sort(naturalCompare);

  // 2. Image headers.
  progress(`reading ${allImages.length} image headers...`);
  const probeOf = new Map<string, ImageProbe>();
  const badImages = new Set<string>();
  const imageProblems = await mapLimit(allImages, 4, async (f) => {
    try {
      probeOf.set(f, await probeImageFile(f, { kind: 'image', decode: opts.decode ?? false }));
      return undefined;
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      badImages.add(f);
      return e.message;
    }
  });
  for (const m of imageProblems) if (m !== undefined) problems.push({ severity: badSeverity, message: m, kind: 'bad-image' });

  // 3. Masks (decoded for the statistics).
  const defective = ds.test.filter((t) => t.label === 1);
  const maskJobs: { mask: string; image: string; normal: boolean }[] = [
    ...defective.flatMap((t) => (t.maskPath ? [{ mask: t.maskPath, image: t.path, normal: false }] : [])),
    ...[...normalMasks].map(([image, mask]) => ({ mask, image, normal: true })),
  ];
  progress(`decoding ${maskJobs.length} masks...`);
  const badMasks = new Set<string>();
  const facts = await mapLimit(maskJobs, 4, async (j) => {
    try {
      return await maskFacts(j.mask);
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      badMasks.add(j.mask);
      return e;
    }
  });
  const stats: MaskStats = { count: 0, binary0255: 0, binary01: 0, binaryOther: 0, soft: 0, zero: 0, empty: 0, jpeg: 0, otherValues: [] };
  const normalStats = { count: 0, nonEmpty: 0 };
  for (let i = 0; i < maskJobs.length; i++) {
    const j = maskJobs[i]!;
    const f = facts[i]!;
    if (f instanceof DataError) {
      problems.push({ severity: badSeverity, message: f.message, kind: 'bad-mask' });
      continue;
    }
    if (j.normal) {
      normalStats.count++;
      if (f.ones > 0) {
        normalStats.nonEmpty++;
        problems.push({ severity: 'warning', kind: 'normal-mask-not-empty', message: `Mask ${j.mask} of NORMAL image ${j.image} is not empty (${f.ones} anomalous pixels): is the image really defect-free? (Masks of normal images are not used.)` });
      }
    } else {
      stats.count++;
      if (f.jpeg) stats.jpeg++;
      if (f.nonZero.length === 0) stats.zero++;
      else if (f.nonZero.length > 1) stats.soft++;
      else if (f.nonZero[0] === 255) stats.binary0255++;
      else if (f.nonZero[0] === 1) stats.binary01++;
      else {
        stats.binaryOther++;
        if (!stats.otherValues.includes(f.nonZero[0]!)) stats.otherValues.push(f.nonZero[0]!);
      }
      if (f.ones === 0) {
        stats.empty++;
        problems.push({ severity: 'warning', kind: 'empty-mask', message: `Mask ${j.mask} of defective image ${j.image} is empty (no anomalous pixel${f.jpeg ? ` at >= ${JPEG_MASK_THRESHOLD}` : ''}): the image still counts for image AUROC but adds no anomalous pixel to pixel AUROC.` });
      }
    }
    const img = probeOf.get(j.image);
    if (img !== undefined) {
      const a = maskAlignment(f, img);
      if (a === 'scaled') {
        problems.push({ severity: 'warning', kind: 'mask-scaled', message: `Mask ${j.mask} is ${f.width}x${f.height} px but its image ${j.image} is ${img.width}x${img.height} px (same aspect ratio): the mask is scaled to the image (nearest neighbour).` });
      } else if (a === 'mismatch') {
        problems.push({
          severity: j.normal ? 'warning' : 'error', kind: 'mask-mismatch',
          message: `Mask ${j.mask} is ${f.width}x${f.height} px but its image ${j.image} is ${img.width}x${img.height} px: the aspect ratios differ, so the mask cannot be aligned${j.normal ? '' : ' and evaluation refuses it'}. Check that it belongs to this image, then fix or remove it.`,
        });
      }
    }
  }
  stats.otherValues.sort((a, b) => a - b);
  stats.otherValues = stats.otherValues.slice(0, 20);

  // 4. Small images.
  for (const f of allImages) {
    const p = probeOf.get(f);
    if (p && (p.width < MIN_IMAGE_SIDE || p.height < MIN_IMAGE_SIDE)) {
      problems.push({ severity: 'warning', kind: 'small-image', message: `Image ${f} is ${p.width}x${p.height} px, smaller than the network minimum of ${MIN_IMAGE_SIDE} px: it is upscaled to the model input size and holds little detail.` });
    }
  }

  // 5. With skipBad, the split the readers would make without the bad files.
  if (opts.skipBad && (badImages.size > 0 || badMasks.size > 0)) {
    ds = typeof input === 'string' ? await readMvtecDataset(ds.root, { valFraction, seed, skipBad: true }) : await readDataset(input, { valFraction, seed, skipBad: true });
  }
  for (const w of ds.warnings) if (!w.startsWith(SKIPPED_BAD)) problems.push({ severity: 'warning', message: w });
  const nDefective = ds.test.filter((t) => t.label === 1).length;
  if (ds.kind === 'mvtec' && nDefective > 0 && !(await isDir(path.join(ds.root, 'ground_truth')))) {
    problems.push({ severity: 'warning', message: `No ground_truth/ folder in ${ds.root}: the ${nDefective} defective test images have no masks, so pixel-level metrics will not be available.` });
  }
  const few = tooFewTrainingImages(ds.train.length);
  if (few) problems.push({ severity: 'error', message: few, kind: 'too-few-training-images' });

  // 6. Counts.
  const types: { name: string; images: number; masks: number }[] = [];
  for (const t of ds.test) {
    let row = types.find((r) => r.name === t.defectType);
    if (!row) types.push((row = { name: t.defectType, images: 0, masks: 0 }));
    row.images++;
    if (t.maskPath !== undefined) row.masks++;
  }
  const good = ds.test.filter((t) => t.label === 0).length;
  const usedProbes = [...ds.train, ...ds.val, ...ds.test.map((t) => t.path)].flatMap((f) => {
    const p = probeOf.get(f);
    return p ? [p] : [];
  });
  const errors = problems.filter((p) => p.severity === 'error').length;
  return {
    kind: ds.kind,
    name: ds.name,
    root: ds.root,
    seed: ds.split.seed,
    fractions: ds.split.fractions,
    counts: { normalPool: ds.kind === 'mvtec' ? ds.train.length + ds.val.length : ds.train.length + ds.val.length + good, train: ds.train.length, val: ds.val.length, testNormal: good, testDefective: ds.test.length - good },
    defectTypes: types,
    images: { count: usedProbes.length, sizes: sizeStats(usedProbes), modes: modeCounts(usedProbes) },
    masks: stats,
    normalMasks: normalStats,
    ignored,
    problems,
    errors,
    warnings: problems.length - errors,
    split: splitToJson(ds),
  };
}

const fmtFraction = (x: number): string => String(Number(x.toFixed(4)));

/** Human-readable name of a storage mode, e.g. "jpeg, 1 channel (b-w), 8-bit". */
export function describeMode(m: Omit<ModeCount, 'count'>): string {
  const extras = [m.isPalette ? 'palette' : '', m.hasAlpha ? 'alpha' : ''].filter(Boolean).join(', ');
  return `${m.format}, ${m.channels} channel${m.channels === 1 ? '' : 's'} (${m.space}${extras ? `, ${extras}` : ''}), ${m.bitDepth}-bit`;
}

/**
 * Problem lines, grouped: a kind with more than `perKind` problems of one severity gets one line with its count and
 * the first `perKind` problems, then "... and N more (--verbose lists all)"; smaller kinds are listed in full.
 * `perKind` Infinity lists every problem.
 */
export function formatProblems(problems: readonly CheckProblem[], perKind: number): string[] {
  const groups = new Map<string, CheckProblem[]>();
  for (const p of problems) {
    const key = `${p.severity}\u0000${p.kind ?? p.message}`;
    const g = groups.get(key);
    if (g) g.push(p);
    else groups.set(key, [p]);
  }
  const L: string[] = [];
  for (const list of groups.values()) {
    const { severity, kind } = list[0]!;
    if (list.length <= perKind) { for (const p of list) L.push(`  ${severity}: ${p.message}`); continue; }
    L.push(`  ${severity} x ${list.length}: ${KIND_TITLES[kind ?? ''] ?? kind}, e.g.:`);
    for (const p of list.slice(0, perKind)) L.push(`    ${severity}: ${p.message}`);
    L.push(`    ... and ${list.length - perKind} more ${severity}(s) of this kind (--verbose lists all; --json FILE writes all)`);
  }
  return L;
}

/**
 * Formats a {@link CheckReport} as the text `ntsnet data check` prints: summary sections, then
 * the problems (grouped by kind, see {@link formatProblems}), then the ignored files and a final OK / FAILED line.
 * @param opts.maxIgnored ignored files listed by name (the rest are counted), default 50.
 * @param opts.perKind problems of one kind listed before the rest are counted, default 3 (Infinity: all).
 */
export function formatCheckReport(r: CheckReport, opts: { maxIgnored?: number; perKind?: number } = {}): string {
  const L: string[] = [];
  const c = r.counts;
  L.push(`Dataset: ${r.name} (${r.kind === 'mvtec' ? 'MVTec AD category' : 'folder dataset'}) at ${r.root}`);
  if (r.kind === 'mvtec') {
    L.push(`Split (seed ${r.seed}, validation fraction ${fmtFraction(r.fractions.val)} of train/good):`);
    L.push(`  train/good  ${c.normalPool} -> train ${c.train} + val ${c.val}`);
  } else {
    L.push(`Split of the ${c.normalPool} normal images (seed ${r.seed}, train/val/test ${fmtFraction(r.fractions.train)}/${fmtFraction(r.fractions.val)}/${fmtFraction(r.fractions.test)}):`);
    L.push(`  train ${c.train}, val ${c.val}, test ${c.testNormal}`);
  }
  L.push(`  test  ${c.testNormal + c.testDefective} = ${c.testNormal} normal + ${c.testDefective} defective`);
  L.push('Test images per defect type:');
  const w = Math.max(4, ...r.defectTypes.map((t) => t.name.length));
  for (const t of r.defectTypes) {
    L.push(`  ${t.name.padEnd(w)}  ${String(t.images).padStart(5)} images${t.name === 'good' ? '' : `, ${t.masks} with mask`}`);
  }
  L.push(`Images: ${r.images.count} readable`);
  const s = r.images.sizes;
  if (s) {
    const sizes = s.distinct.length <= 8
      ? s.distinct.map((d) => `${d.width}x${d.height} (${d.count})`).join(', ')
      : `${s.distinct.length} distinct; most common ${s.distinct.slice(0, 3).map((d) => `${d.width}x${d.height} (${d.count})`).join(', ')}`;
    L.push(`  width ${s.minWidth}..${s.maxWidth} px, height ${s.minHeight}..${s.maxHeight} px; sizes: ${sizes}`);
  }
  for (const m of r.images.modes) L.push(`  ${describeMode(m)}: ${m.count}`);
  const ms = r.masks;
  L.push(`Masks of defective images: ${ms.count} decoded${ms.jpeg ? ` (${ms.jpeg} JPEG, binarised at >= ${JPEG_MASK_THRESHOLD})` : ''}`);
  L.push(`  binary 0/255: ${ms.binary0255}, binary 0/1: ${ms.binary01}, two-valued other: ${ms.binaryOther}${ms.otherValues.length ? ` (values ${ms.otherValues.join(', ')})` : ''}, soft edges: ${ms.soft}, all zero: ${ms.zero}; empty after binarisation: ${ms.empty}`);
  if (r.normalMasks.count > 0) L.push(`  masks beside normal images: ${r.normalMasks.count} (${r.normalMasks.nonEmpty === 0 ? 'all empty' : `${r.normalMasks.nonEmpty} NOT empty`}; not used)`);
  L.push(`Problems: ${r.errors} error(s), ${r.warnings} warning(s)`);
  L.push(...formatProblems(r.problems, opts.perKind ?? 3));
  const maxIgnored = opts.maxIgnored ?? 50;
  L.push(`Ignored files: ${r.ignored.length}`);
  for (const f of r.ignored.slice(0, maxIgnored)) L.push(`  ${f.path} (${f.reason})`);
  if (r.ignored.length > maxIgnored) L.push(`  ... and ${r.ignored.length - maxIgnored} more`);
  L.push(r.errors === 0 ? `Result: OK (${r.warnings} warning(s))` : `Result: FAILED (${r.errors} error(s), ${r.warnings} warning(s))`);
  return L.join('\n');
}
