import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import {
  applySavedSplit,
  checkDataset,
  commonAncestor,
  DataError,
  defectTypeOf,
  folderSpecFromFlags,
  formatCheckReport,
  holdOut,
  parseSavedSplit,
  parseSplitFractions,
  readDataset,
  readFolderDataset,
  readMvtecCategory,
  scanImageFolder,
  splitThree,
  splitToJson,
} from '../src/data/index.js';
import type { FolderSpec, SavedSplit, TestItem } from '../src/data/index.js';
import { fixturePath, makeTempDir, repoRoot, sharedDataPath } from './helpers.js';

const run = promisify(execFile);
const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

/** Writes a small grey image (`w x h`, value v) in the format given by the extension (.bmp: a real bitmap written by Pillow, test/fixtures/formats). */
async function img(file: string, v = 120, w = 40, h = 36): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  if (file.endsWith('.bmp')) return copyFileSync(fixturePath(path.join('formats', 'grey8.bmp')), file);
  const s = sharp(Buffer.alloc(w * h, v), { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w');
  await (file.endsWith('.jpg') ? s.jpeg() : s.png()).toFile(file);
}

/** Writes a single-channel PNG mask (`w x h`) with `box` pixels (x0, y0, x1, y1 exclusive) set to `value`. */
async function mask(file: string, box: [number, number, number, number] | null, value = 255, w = 40, h = 36): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  const b = Buffer.alloc(w * h);
  if (box) for (let y = box[1]; y < box[3]; y++) for (let x = box[0]; x < box[2]; x++) b[y * w + x] = value;
  await sharp(b, { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').png().toFile(file);
}

const names = (n: number, prefix: string): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/**
 * A Magnetic-Tile-like dataset: MT_Free/Imgs with 20 normal jpg + empty png masks, MT_Crack/Imgs
 * with 3 jpg + png masks, MT_Fray/Imgs with 2 jpg of which only f0 has a mask.
 */
async function makeMagneticTile(root: string): Promise<void> {
  for (const n of names(20, 'n')) {
    await img(path.join(root, 'MT_Free', 'Imgs', `${n}.jpg`));
    await mask(path.join(root, 'MT_Free', 'Imgs', `${n}.png`), null);
  }
  for (const n of names(3, 'c')) {
    await img(path.join(root, 'MT_Crack', 'Imgs', `${n}.jpg`), 200);
    await mask(path.join(root, 'MT_Crack', 'Imgs', `${n}.png`), [2, 2, 10, 10]);
  }
  await img(path.join(root, 'MT_Fray', 'Imgs', 'f0.jpg'), 30);
  await mask(path.join(root, 'MT_Fray', 'Imgs', 'f0.png'), [0, 0, 5, 5]);
  await img(path.join(root, 'MT_Fray', 'Imgs', 'f1.jpg'), 30);
}

const mtSpec = (root: string, seed = 7): FolderSpec => ({
  normal: [path.join(root, 'MT_Free', 'Imgs')],
  abnormal: [path.join(root, 'MT_Crack', 'Imgs'), path.join(root, 'MT_Fray', 'Imgs')],
  seed,
});

test('scanImageFolder: .png beside another image extension and *_mask files are masks; junk is ignored', async () => {
  const dir = path.join(makeTempDir('scan'), 'Imgs');
  await img(path.join(dir, 'a.jpg'));
  await mask(path.join(dir, 'a.png'), null);
  await img(path.join(dir, 'b.png')); // png alone: an image
  await img(path.join(dir, 'c.bmp'));
  await mask(path.join(dir, 'c_mask.png'), null);
  await mask(path.join(dir, 'e_MASK.png'), null); // suffix is case-insensitive; no image "e": orphan
  writeFileSync(path.join(dir, '.DS_Store'), 'x');
  writeFileSync(path.join(dir, 'Thumbs.db'), 'x');
  writeFileSync(path.join(dir, 'notes.txt'), 'x');
  mkdirSync(path.join(dir, 'sub'));
  mkdirSync(path.join(dir, '.cache'));
  const s = await scanImageFolder(dir);
  const p = (n: string): string => path.join(dir, n);
  assert.deepEqual(s.images, [p('a.jpg'), p('b.png'), p('c.bmp')]);
  assert.deepEqual([...s.masks.entries()].sort(), [[p('a.jpg'), p('a.png')], [p('c.bmp'), p('c_mask.png')]]);
  assert.deepEqual(s.orphanMasks, [p('e_MASK.png')]);
  assert.deepEqual(s.subfolders, [p('sub')]);
  // Natural order is locale independent (code units: upper case first).
  assert.deepEqual(s.ignored, [
    { path: p('.DS_Store'), reason: 'hidden file' },
    { path: p('.cache'), reason: 'hidden folder' },
    { path: p('Thumbs.db'), reason: 'not an image file (by extension)' },
    { path: p('notes.txt'), reason: 'not an image file (by extension)' },
  ]);
  // besideMasks: false keeps every image file; a custom suffix changes rule 1.
  assert.equal((await scanImageFolder(dir, { besideMasks: false })).images.length, 6);
  assert.deepEqual((await scanImageFolder(dir, { maskSuffix: '' })).orphanMasks, []);
});

test('defectTypeOf skips generic folder names; commonAncestor', () => {
  assert.equal(defectTypeOf('/data/magnetic_tile/MT_Blowhole/Imgs'), 'MT_Blowhole');
  assert.equal(defectTypeOf('/data/set/crack'), 'crack');
  assert.equal(defectTypeOf('/data/scratch/Images/IMG'), 'scratch');
  assert.equal(defectTypeOf('/srv/.hidden/images'), 'srv');
  assert.equal(defectTypeOf('/srv/crack/data'), 'crack');
  assert.equal(commonAncestor(['/a/b/c', '/a/b/d/e', '/a/b']), '/a/b');
  assert.equal(commonAncestor(['/a/bc', '/a/b']), '/a');
  assert.equal(commonAncestor(['/x', '/y']), '/');
});

test('splitThree: exact sizes, seeded, order kept, errors on too few items', () => {
  const items = names(952, 'i');
  const s = splitThree(items, { train: 0.7, val: 0.1, test: 0.2 }, 42);
  assert.deepEqual([s.train.length, s.val.length, s.test.length], [667, 95, 190]);
  assert.deepEqual([...s.train, ...s.val, ...s.test].sort(), [...items].sort());
  assert.deepEqual(s.test, items.filter((x) => s.test.includes(x)), 'input order kept');
  assert.deepEqual(splitThree(items, { train: 0.7, val: 0.1, test: 0.2 }, 42), s);
  assert.notDeepEqual(splitThree(items, { train: 0.7, val: 0.1, test: 0.2 }, 43).test, s.test);
  assert.deepEqual(splitThree(['a', 'b', 'c'], { train: 0.98, val: 0.01, test: 0.01 }, 1).train.length, 1, 'val and test get at least one each');
  assert.deepEqual(splitThree(['a', 'b'], { train: 1, val: 0, test: 0 }, 1), { train: ['a', 'b'], val: [], test: [] });
  assert.throws(() => splitThree(['a', 'b'], { train: 0.5, val: 0.25, test: 0.25 }, 1), /cannot split 2 normal image\(s\) into train\/val\/test with fractions 0.5,0.25,0.25: at least 3 needed/);
  assert.throws(() => splitThree(items, { train: 0.7, val: 0.1, test: 0.1 }, 1), /must sum to 1, got 0.7\+0.1\+0.1 = 0.9/);
  assert.throws(() => splitThree(items, { train: 0, val: 0.5, test: 0.5 }, 1), /train must be > 0/);
  assert.throws(() => splitThree(items, { train: 1.2, val: -0.2, test: 0 }, 1), /split fraction train must be in \[0, 1\], got 1.2/);
});

test('readFolderDataset: Magnetic Tile layout, masks beside the images, seeded split of the normal images', async () => {
  const root = path.join(makeTempDir('mt'), 'magnetic_tile');
  await makeMagneticTile(root);
  const ds = await readFolderDataset(mtSpec(root));
  const free = names(20, 'n').map((n) => path.join(root, 'MT_Free', 'Imgs', `${n}.jpg`));
  const expectedSplit = splitThree(free, { train: 0.7, val: 0.1, test: 0.2 }, 7);
  assert.equal(ds.kind, 'folder');
  assert.equal(ds.name, 'magnetic_tile');
  assert.equal(ds.root, root);
  assert.deepEqual([ds.train.length, ds.val.length], [14, 2]);
  assert.deepEqual(ds.train, expectedSplit.train);
  assert.deepEqual(ds.val, expectedSplit.val);
  const crack = (n: string): TestItem => ({ path: path.join(root, 'MT_Crack', 'Imgs', `${n}.jpg`), label: 1, defectType: 'MT_Crack', maskPath: path.join(root, 'MT_Crack', 'Imgs', `${n}.png`) });
  assert.deepEqual(ds.test, [
    ...expectedSplit.test.map((p): TestItem => ({ path: p, label: 0, defectType: 'good' })),
    crack('c0'), crack('c1'), crack('c2'),
    { path: path.join(root, 'MT_Fray', 'Imgs', 'f0.jpg'), label: 1, defectType: 'MT_Fray', maskPath: path.join(root, 'MT_Fray', 'Imgs', 'f0.png') },
    { path: path.join(root, 'MT_Fray', 'Imgs', 'f1.jpg'), label: 1, defectType: 'MT_Fray' },
  ]);
  assert.deepEqual(ds.warnings, [
    `No mask for ${path.join(root, 'MT_Fray', 'Imgs', 'f1.jpg')} (expected f1_mask.png beside it): pixel-level metrics will not be available.`,
  ]);
  assert.equal(ds.split.seed, 7);
  assert.deepEqual(ds.split.fractions, { train: 0.7, val: 0.1, test: 0.2 });
  assert.deepEqual(ds.split.files.train, expectedSplit.train.map((p) => path.relative(root, p).split(path.sep).join('/')));
  assert.equal(ds.split.files.test[ds.split.files.test.length - 1], 'MT_Fray/Imgs/f1.jpg');
  // Deterministic; another seed changes the membership.
  assert.deepEqual(await readFolderDataset(mtSpec(root)), ds);
  const other = await readFolderDataset(mtSpec(root, 8));
  assert.notDeepEqual(other.split.files.train, ds.split.files.train);
});

test('splitToJson / applySavedSplit reproduce the split exactly; missing, extra and misplaced files are reported', async () => {
  const root = path.join(makeTempDir('split'), 'tiles');
  await makeMagneticTile(root);
  const ds = await readFolderDataset(mtSpec(root, 3));
  const saved: SavedSplit = JSON.parse(JSON.stringify(splitToJson(ds))) as SavedSplit;
  assert.equal(saved.format, 'ntsnet-split');
  assert.ok([...saved.files.train, ...saved.files.val, ...saved.files.test].every((f) => !path.isAbsolute(f)));
  // A different seed in the spec does not matter: the saved lists win.
  const again = await applySavedSplit(mtSpec(root, 999), parseSavedSplit(saved));
  assert.deepEqual(again.train, ds.train);
  assert.deepEqual(again.val, ds.val);
  assert.deepEqual(again.test, ds.test);
  assert.equal(again.split.seed, 3);
  // A new image not in the saved split: ignored with a warning.
  await img(path.join(root, 'MT_Free', 'Imgs', 'new.jpg'));
  const withNew = await applySavedSplit(mtSpec(root), saved);
  assert.deepEqual(withNew.train, ds.train);
  assert.ok(withNew.warnings.includes('1 image(s) are not in the saved split and are ignored: MT_Free/Imgs/new.jpg.'), withNew.warnings.join('\n'));
  // A file of the saved split removed: error naming it (a warning with skipBad).
  const gone = saved.files.train[0]!;
  rmSync(path.join(root, gone));
  await assert.rejects(applySavedSplit(mtSpec(root), saved), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.message, `1 file(s) of the saved split are not in the dataset at ${root}: ${gone}. The split cannot be reproduced exactly; restore the files or make a new split.`);
    return true;
  });
  const skipped = await applySavedSplit(mtSpec(root), saved, { skipBad: true });
  assert.equal(skipped.train.length, ds.train.length - 1);
  // A defective image put in train is refused.
  const bad = structuredClone(saved);
  bad.files.train.push('MT_Crack/Imgs/c0.jpg');
  bad.files.test = bad.files.test.filter((f) => f !== 'MT_Crack/Imgs/c0.jpg');
  bad.files.train = bad.files.train.filter((f) => f !== gone);
  await assert.rejects(applySavedSplit(mtSpec(root), bad), /puts files in a role they cannot have \(train\/val must be normal images\): MT_Crack\/Imgs\/c0\.jpg \(in train\)/);
  assert.throws(() => parseSavedSplit({ ...saved, version: 2 }), /Not a saved ntsnet split: unsupported version 2/);
  assert.throws(() => parseSavedSplit({ ...saved, files: { ...saved.files, val: ['/abs/x.png'] } }), /files.val" must hold paths relative to the dataset root/);
  await assert.rejects(applySavedSplit(root, saved), /is not an MVTec AD category folder/);
});

test('separate mask folder: per-type sub-folders with suffix, flat folder, custom suffix; orphans named', async () => {
  const base = makeTempDir('masks');
  // MVTec-like: ground_truth/<type>/<stem>_mask.png.
  for (const n of ['0', '1', '2', '3']) await img(path.join(base, 'good', `${n}.png`));
  for (const n of ['000', '001']) {
    await img(path.join(base, 'defects', 'scratch', `${n}.png`));
    await mask(path.join(base, 'gt', 'scratch', `${n}_mask.png`), [1, 1, 3, 3]);
  }
  await mask(path.join(base, 'gt', 'scratch', '009_mask.png'), [1, 1, 3, 3]); // no image 009
  const ds = await readFolderDataset({ normal: [path.join(base, 'good')], abnormal: [path.join(base, 'defects', 'scratch')], masks: path.join(base, 'gt'), split: { train: 0.5, val: 0.25, test: 0.25 }, seed: 1 });
  assert.deepEqual(ds.test.filter((t) => t.label === 1).map((t) => t.maskPath), ['000', '001'].map((n) => path.join(base, 'gt', 'scratch', `${n}_mask.png`)));
  assert.equal(ds.root, base);
  assert.deepEqual(ds.warnings, [`Mask without image: ${path.join(base, 'gt', 'scratch', '009_mask.png')} (no defective image 009.* in the abnormal folders); it is ignored.`]);
  // Flat folder with the same stems, custom suffix "-gt".
  for (const n of ['000', '001']) await mask(path.join(base, 'flat', `${n}-gt.png`), [0, 0, 2, 2]);
  const flat = await readFolderDataset({ normal: [path.join(base, 'good')], abnormal: [path.join(base, 'defects', 'scratch')], masks: path.join(base, 'flat'), maskSuffix: '-gt', split: { train: 0.5, val: 0.25, test: 0.25 }, seed: 1 });
  assert.deepEqual(flat.test.filter((t) => t.label === 1).map((t) => t.maskPath), ['000', '001'].map((n) => path.join(base, 'flat', `${n}-gt.png`)));
  assert.deepEqual(flat.warnings, []);
  // No masks anywhere: a single warning.
  const none = await readFolderDataset({ normal: [path.join(base, 'good')], abnormal: [path.join(base, 'defects', 'scratch')], split: { train: 0.5, val: 0.25, test: 0.25 }, seed: 1 });
  assert.deepEqual(none.warnings, [
    'No masks found for the 2 defective image(s): pixel-level metrics will not be available. Put each mask beside its image (<stem>.png next to a non-PNG image, or <stem>_mask.<ext>) or pass a mask folder (--masks DIR).',
  ]);
});

test('folder dataset errors: missing folder, folder both normal and abnormal, no normal images, empty abnormal folder', async () => {
  const base = makeTempDir('ferr');
  for (const n of ['a', 'b', 'c', 'd', 'e']) await img(path.join(base, 'ok', `${n}.png`));
  mkdirSync(path.join(base, 'empty', 'Imgs'), { recursive: true });
  await assert.rejects(readFolderDataset({ normal: [path.join(base, 'nope')], abnormal: [], seed: 1 }), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.message, `Normal image folder ${path.join(base, 'nope')} does not exist. Check the path.`);
    return true;
  });
  await assert.rejects(readFolderDataset({ normal: [path.join(base, 'ok')], abnormal: [path.join(base, 'ok')], seed: 1 }), /ok is given both as a normal and as an abnormal folder/);
  await assert.rejects(readFolderDataset({ normal: [path.join(base, 'empty')], abnormal: [], seed: 1 }), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /^No normal images in .*empty: .*It has sub-folder\(s\) Imgs; folders are not read recursively, so pass the sub-folder that holds the images/);
    return true;
  });
  const ds = await readFolderDataset({ normal: [path.join(base, 'ok')], abnormal: [path.join(base, 'empty', 'Imgs')], split: { train: 0.6, val: 0.2, test: 0.2 }, seed: 1 });
  assert.deepEqual(ds.warnings, [
    `Abnormal image folder ${path.join(base, 'empty', 'Imgs')} contains no images; skipped.`,
    'The test set has only normal images: image AUROC cannot be computed.',
  ]);
  await assert.rejects(readFolderDataset({ normal: [], abnormal: [], seed: 1 }), /at least one normal image folder is required/);
});

test('readDataset: MVTec path -> seeded hold-out like fit; Magnetic-Tile-like path -> error suggesting the flags', async () => {
  const base = makeTempDir('detect');
  const cat = path.join(base, 'widget');
  for (const n of names(10, '')) await img(path.join(cat, 'train', 'good', `${n}.png`));
  await img(path.join(cat, 'test', 'good', '0.png'));
  await img(path.join(cat, 'test', 'dent', '0.png'));
  await mask(path.join(cat, 'ground_truth', 'dent', '0_mask.png'), [0, 0, 3, 3]);
  const ds = await readDataset(cat, { valFraction: 0.2, seed: 5 });
  const c = await readMvtecCategory(cat);
  const h = holdOut(c.train, 0.2, 5);
  assert.equal(ds.kind, 'mvtec');
  assert.deepEqual([ds.train, ds.val, ds.test], [h.train, h.val, c.test]);
  assert.deepEqual(ds.split.fractions, { train: 0.8, val: 0.2, test: 0 });
  const saved = splitToJson(ds);
  assert.deepEqual((await applySavedSplit(cat, saved)).train, h.train);

  const mt = path.join(base, 'magnetic tile');
  await makeMagneticTile(mt);
  await assert.rejects(readDataset(mt, { valFraction: 0.1, seed: 1 }), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.ok(
      e.message.includes(`Describe it with flags instead of a path: --normal '${path.join(mt, 'MT_Free', 'Imgs')}' --abnormal '${path.join(mt, 'MT_Crack', 'Imgs')}' '${path.join(mt, 'MT_Fray', 'Imgs')}' (masks beside`),
      e.message,
    );
    assert.match(e.message, /not an MVTec AD category folder \(no train\/good and test\/\), but it looks like a folder dataset: normal images in MT_Free\/Imgs; defective images in MT_Crack\/Imgs, MT_Fray\/Imgs\./);
    return true;
  });
  await assert.rejects(readDataset(path.join(base, 'widget', 'train'), { valFraction: 0.1, seed: 1 }), /is not an MVTec AD category folder: expected train\/good and test\//);
});

test('folderSpecFromFlags and parseSplitFractions', () => {
  assert.deepEqual(folderSpecFromFlags({ normal: ['n'], abnormal: ['a', 'b'], masks: 'm', split: '0.6, 0.2, 0.2', seed: 3 }), {
    normal: ['n'], abnormal: ['a', 'b'], masks: 'm', split: { train: 0.6, val: 0.2, test: 0.2 }, seed: 3,
  });
  assert.deepEqual(folderSpecFromFlags({ normal: ['n'], seed: 0 }), { normal: ['n'], abnormal: [], split: { train: 0.7, val: 0.1, test: 0.2 }, seed: 0 });
  assert.deepEqual(parseSplitFractions('70,10,20'), { train: 0.7, val: 0.1, test: 0.2 });
  assert.throws(() => parseSplitFractions('0.7,0.3'), /--split must be three comma-separated numbers train,val,test such as 0.7,0.1,0.2; got "0.7,0.3"/);
  assert.throws(() => parseSplitFractions('0.5,0.1,0.1'), /must sum to 1/);
  assert.throws(() => folderSpecFromFlags({ normal: [], seed: 1 }), /--normal DIR... is required/);
  assert.throws(() => folderSpecFromFlags({ normal: ['n'], seed: 1.5 }), /--seed must be an integer, got 1.5/);
});

test('checkDataset on a folder dataset: counts, sizes, modes, mask stats, problems; CLI exit codes', async () => {
  const root = path.join(makeTempDir('check'), 'tiles');
  await makeMagneticTile(root);
  const r = await checkDataset(mtSpec(root));
  assert.equal(r.kind, 'folder');
  assert.deepEqual(r.counts, { normalPool: 20, train: 14, val: 2, testNormal: 4, testDefective: 5 });
  assert.deepEqual(r.defectTypes, [
    { name: 'good', images: 4, masks: 0 },
    { name: 'MT_Crack', images: 3, masks: 3 },
    { name: 'MT_Fray', images: 2, masks: 1 },
  ]);
  assert.equal(r.images.count, 25);
  assert.deepEqual(r.images.sizes, { minWidth: 40, maxWidth: 40, minHeight: 36, maxHeight: 36, distinct: [{ width: 40, height: 36, count: 25 }] });
  assert.deepEqual(r.images.modes, [{ format: 'jpeg', channels: 1, space: 'b-w', bitDepth: 8, hasAlpha: false, isPalette: false, count: 25 }]);
  assert.deepEqual(r.masks, { count: 4, binary0255: 4, binary01: 0, binaryOther: 0, soft: 0, zero: 0, empty: 0, jpeg: 0, otherValues: [] });
  assert.deepEqual(r.normalMasks, { count: 20, nonEmpty: 0 });
  assert.deepEqual(r.problems, [{ severity: 'warning', message: `No mask for ${path.join(root, 'MT_Fray', 'Imgs', 'f1.jpg')} (expected f1_mask.png beside it): pixel-level metrics will not be available.` }]);
  assert.deepEqual([r.errors, r.warnings], [0, 1]);
  const text = formatCheckReport(r);
  assert.match(text, /^Dataset: tiles \(folder dataset\) at /);
  assert.match(text, /\n  train 14, val 2, test 4\n  test  9 = 4 normal \+ 5 defective\n/);
  assert.match(text, /\n  MT_Crack      3 images, 3 with mask\n/);
  assert.match(text, /\n  jpeg, 1 channel \(b-w\), 8-bit: 25\n/);
  assert.match(text, /\n  masks beside normal images: 20 \(all empty; not used\)\n/);
  assert.match(text, /\nResult: OK \(1 warning\(s\)\)$/);

  // CLI: exit 0 without errors, and the split can be saved.
  const splitFile = path.join(root, '..', 'split.json');
  const ok = await run(process.execPath, [cli(), 'data', 'check', '--normal', path.join(root, 'MT_Free', 'Imgs'), '--abnormal', path.join(root, 'MT_Crack', 'Imgs'), path.join(root, 'MT_Fray', 'Imgs'), '--seed', '7', '--save-split', splitFile]);
  assert.match(ok.stdout, /Result: OK \(1 warning\(s\)\)/);
  assert.deepEqual(JSON.parse(readFileSync(splitFile, 'utf8')), r.split);
  // A truncated image makes it exit 1; --skip-bad turns the error into a warning (exit 0).
  const victim = path.join(root, 'MT_Crack', 'Imgs', 'c1.jpg');
  const bytes = readFileSync(victim);
  writeFileSync(victim, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const args = [cli(), 'data', 'check', '--normal', path.join(root, 'MT_Free', 'Imgs'), '--abnormal', path.join(root, 'MT_Crack', 'Imgs'), '--seed', '7'];
  await assert.rejects(run(process.execPath, args), (e: unknown) => {
    const err = e as { code: number; stdout: string };
    assert.equal(err.code, 1);
    assert.ok(err.stdout.includes(`  error: Image file ${victim} is truncated or corrupt (`), err.stdout);
    assert.match(err.stdout, /premature end of JPEG image\), probably an interrupted copy or download\. Copy it again, re-export it, or remove it\.\n/);
    assert.match(err.stdout, /Result: FAILED \(1 error\(s\), 0 warning\(s\)\)/);
    return true;
  });
  const skip = await run(process.execPath, [...args, '--skip-bad']);
  assert.match(skip.stdout, /test  6 = 4 normal \+ 2 defective/);
  assert.match(skip.stdout, /Result: OK \(1 warning\(s\)\)/);
  // Usage errors.
  await assert.rejects(run(process.execPath, [cli(), 'data', 'check']), /nothing to check/);
});

test('real data: data check on MVTec AD bottle and on Magnetic Tile', { timeout: 60_000 }, async (t) => {
  const bottle = sharedDataPath('mvtec_ad', 'bottle');
  const mt = sharedDataPath('magnetic_tile');
  if (bottle === undefined || mt === undefined) {
    t.skip('shared data (mvtec_ad/bottle, magnetic_tile) not found; skipping');
    return;
  }
  const b = await checkDataset(bottle);
  assert.deepEqual(b.counts, { normalPool: 209, train: 188, val: 21, testNormal: 20, testDefective: 63 });
  assert.deepEqual(b.defectTypes.map((d) => [d.name, d.images, d.masks]), [['good', 20, 0], ['broken_large', 20, 20], ['broken_small', 22, 22], ['contamination', 21, 21]]);
  assert.deepEqual(b.masks, { count: 63, binary0255: 63, binary01: 0, binaryOther: 0, soft: 0, zero: 0, empty: 0, jpeg: 0, otherValues: [] });
  assert.deepEqual(b.images.sizes?.distinct, [{ width: 900, height: 900, count: 292 }]);
  assert.deepEqual([b.errors, b.warnings, b.ignored.length], [0, 0, 0]);

  const types = ['Blowhole', 'Break', 'Crack', 'Fray', 'Uneven'];
  const m = await checkDataset({ normal: [path.join(mt, 'MT_Free', 'Imgs')], abnormal: types.map((x) => path.join(mt, `MT_${x}`, 'Imgs')), seed: 42 });
  assert.deepEqual(m.counts, { normalPool: 952, train: 667, val: 95, testNormal: 190, testDefective: 392 });
  assert.deepEqual(m.defectTypes.map((d) => [d.name, d.images, d.masks]), [['good', 190, 0], ['MT_Blowhole', 115, 115], ['MT_Break', 85, 85], ['MT_Crack', 57, 57], ['MT_Fray', 32, 32], ['MT_Uneven', 103, 103]]);
  assert.deepEqual(m.masks, { count: 392, binary0255: 0, binary01: 0, binaryOther: 0, soft: 388, zero: 4, empty: 4, jpeg: 0, otherValues: [] });
  assert.deepEqual(m.normalMasks, { count: 952, nonEmpty: 0 });
  assert.deepEqual([m.errors, m.warnings], [0, 4]);
  assert.ok(m.problems.every((p) => /MT_Uneven\/Imgs\/exp\d+_num_\d+\.png of defective image .* is empty/.test(p.message)));
  assert.deepEqual(m.images.modes.map((x) => [x.format, x.channels, x.bitDepth, x.count]), [['jpeg', 1, 8, 1344]]);
});
