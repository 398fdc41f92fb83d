/**
 * State and portability ("Real-world inputs", section "State and portability"): results independent of the evaluation
 * batch size and of the image order; checkpoints without absolute paths; the same seed gives the same run; checkpoints
 * whose format or config does not match their tensors are refused with a message saying what differs; an interrupted
 * save never replaces a good checkpoint; output folders are never inside the dataset; a checkpoint gives the same maps
 * on the pure-JS TF.js backend. Tiny generated data (64 px / 32 px, random teacher) and the real CLI.
 */
import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, watch, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadTf } from '../src/backend/index.js';
import { readDataset } from '../src/data/dataset.js';
import { loadImageSet } from '../src/engine/batches.js';
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint, type CheckpointMeta } from '../src/engine/checkpoint.js';
import { evaluate, loadTestMasks } from '../src/engine/evaluate.js';
import { auroc } from '../src/metrics/auroc.js';
import { predictImages } from '../src/engine/predict.js';
import { scoreImageSet } from '../src/engine/score.js';
import { NTSNet } from '../src/model/ntsnet.js';
import { parseSafetensors } from '../src/model/weights/safetensors.js';
import { shuffle } from '../src/util/rng.js';
import { makeMvtecCategory, makeTempDir, repoRoot, writeSquareMask, writeStripedImage } from './helpers.js';

const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
const quietEnv = { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' };

interface Run { code: number | null; signal: string | null; stdout: string; stderr: string }

/** Runs a command; never throws. */
function exec(file: string, args: string[], env: NodeJS.ProcessEnv = quietEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 1 << 26, env }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown; signal?: string | null }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}
const ntsnet = (args: string[]): Promise<Run> => exec(process.execPath, [cli(), ...args]);
function ok(r: Run, what: string): Run {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stderr}`);
  return r;
}

const nm = (i: number): string => String(i).padStart(3, '0');

/** MVTec layout: 6 train, 3 good + 3 defective test images with masks. */
const makeCategory = (root: string): Promise<string> => makeMvtecCategory(root, { train: 6, good: 3, defective: 3 });

/** Folder dataset: good/ (10 normal images) and spot/ (3 defective images with masks beside them). */
async function makeFolderDataset(root: string): Promise<{ normal: string; abnormal: string }> {
  const normal = path.join(root, 'good'), abnormal = path.join(root, 'spot');
  for (let i = 0; i < 10; i++) await writeStripedImage(path.join(normal, `${nm(i)}.png`), 100 + i);
  for (let i = 0; i < 3; i++) {
    const d = { x: 30 + 15 * i, y: 30 };
    await writeStripedImage(path.join(abnormal, `${nm(i)}.png`), 130 + i, { defect: d });
    await writeSquareMask(path.join(abnormal, `${nm(i)}_mask.png`), d);
  }
  return { normal, abnormal };
}

function listTree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).map((p) => p.split(path.sep).join('/')).sort();
}

const tempFiles = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith('.tmp-'));

type Header = Record<string, unknown> & { __metadata__?: Record<string, string> };

function readHeader(file: string): { header: Header; data: Buffer } {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Header, data: buf.subarray(8 + n) };
}

/** Rewrites a safetensors file with an edited header (tensor bytes untouched; header padded to 8 bytes). */
function writeWithHeader(dest: string, header: Header, data: Buffer): void {
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const hb = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  mkdirSync(path.dirname(dest), { recursive: true });
  writeFileSync(dest, Buffer.concat([len, hb, data]));
}

/** Copies `src/model.safetensors` to `dest/model.safetensors` with its embedded ntsnet metadata edited. */
function editMeta(src: string, dest: string, edit: (m: CheckpointMeta) => void): string {
  const { header, data } = readHeader(path.join(src, 'model.safetensors'));
  const meta = JSON.parse(header.__metadata__!.ntsnet!) as CheckpointMeta;
  edit(meta);
  header.__metadata__!.ntsnet = JSON.stringify(meta);
  writeWithHeader(path.join(dest, 'model.safetensors'), header, data);
  return dest;
}

/** Every string anywhere inside a JSON value. */
function allStrings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') {
    out.push(v);
    // Metadata values are JSON documents themselves: look inside them too.
    if (/^[[{]/.test(v)) try { allStrings(JSON.parse(v), out); } catch { /* plain string */ }
  } else if (Array.isArray(v)) for (const x of v) allStrings(x, out);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { out.push(k); allStrings(x, out); }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'same length');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

// One tiny category and one checkpoint trained on it (seed 7), shared by the tests below; made by the first test.
const tmp = makeTempDir('state');
const cat = path.join(tmp, 'widget');
const runA = path.join(tmp, 'runA');
let ready: Promise<void> | undefined;
function setup(): Promise<void> {
  ready ??= (async () => {
    await makeCategory(cat);
    // A CoT student, so that the config-vs-tensor checks below can name both student kinds.
    ok(await ntsnet(['fit', '--data', cat, '--out', runA, '--preset', 'tiny', '--student-block', 'cot', '--seed', '7', '--test']), 'fit A');
  })();
  return ready;
}

test('the same seed gives the same run: identical metrics and byte-identical checkpoint tensors (CPU)', { timeout: 90_000 }, async () => {
  await setup();
  const runB = path.join(tmp, 'runB');
  ok(await ntsnet(['fit', '--data', cat, '--out', runB, '--preset', 'tiny', '--student-block', 'cot', '--seed', '7', '--test']), 'fit B');
  const strip = (d: string): unknown => {
    const j = JSON.parse(readFileSync(path.join(d, 'results.json'), 'utf8')) as { results: Record<string, unknown>[]; history: Record<string, unknown>[] };
    return {
      results: j.results.map(({ seconds: _s, imagesPerSecond: _i, ...r }) => r),
      history: j.history.map(({ seconds: _s, imagesPerSecond: _i, ...h }) => h),
    };
  };
  assert.deepEqual(strip(runB), strip(runA), 'same metrics, per-image scores and losses');
  const a = readHeader(path.join(runA, 'model.safetensors')), b = readHeader(path.join(runB, 'model.safetensors'));
  const ta = parseSafetensors(readFileSync(path.join(runA, 'model.safetensors'))), tb = parseSafetensors(readFileSync(path.join(runB, 'model.safetensors')));
  let maxDiff = 0, differing = 0;
  for (const [name, t] of ta) {
    const u = tb.get(name);
    assert.ok(u, `tensor ${name} in both`);
    const d = maxAbsDiff(t.data, u.data);
    if (d > 0) differing++;
    maxDiff = Math.max(maxDiff, d);
  }
  console.log(`determinism: ${ta.size} tensors, ${differing} differ, max |difference| ${maxDiff}`);
  assert.equal(ta.size, tb.size);
  const { __metadata__: _ma, ...ha } = a.header, { __metadata__: _mb, ...hb } = b.header;
  assert.deepEqual(ha, hb, 'same tensor names, shapes and offsets');
  assert.ok(a.data.equals(b.data), `tensor bytes identical (max |difference| ${maxDiff} over ${differing} tensors)`);
});

test('results do not depend on the evaluation batch size (1, 3, 16) or on the order of the images', { timeout: 90_000 }, async () => {
  await setup();
  const tf = loadTf();
  const { model, meta } = await loadCheckpoint(tf, runA);
  try {
    const ds = await readDataset(cat, { valFraction: meta.config.train.valFraction, seed: meta.config.train.seed });
    const ev = [];
    for (const bs of [1, 3, 16]) ev.push(await evaluate(tf, model, ds, bs));
    for (const e of ev.slice(1)) {
      assert.ok(maxAbsDiff(e.images.map((i) => i.score), ev[0]!.images.map((i) => i.score)) <= 1e-5, 'evaluate scores');
      assert.equal(e.imageAuroc, ev[0]!.imageAuroc);
      assert.ok(Math.abs(e.pixelAuroc! - ev[0]!.pixelAuroc!) <= 1e-6, `pixel AUROC ${e.pixelAuroc} vs ${ev[0]!.pixelAuroc}`);
    }
    // The streamed, binned pixel AUROC against the exact one over all maps held in memory.
    const all = scoreImageSet(tf, model, await loadImageSet(ds.test.map((t) => t.path), model.config.imageSize), 4, true);
    const exact = auroc(all.maps!, (await loadTestMasks(ds, model.config.imageSize))!)!;
    assert.ok(ev[0]!.pixelAurocBound !== undefined && ev[0]!.pixelAurocBound < 1e-3, `bound ${ev[0]!.pixelAurocBound}`);
    assert.ok(Math.abs(ev[0]!.pixelAuroc! - exact) <= ev[0]!.pixelAurocBound! + 1e-12, `streamed ${ev[0]!.pixelAuroc} vs exact ${exact}`);

    // 13 images (12 + one repeated): batches of 3 and 16 both end with a partial batch or a single one.
    const files = [...ds.train, ...ds.val, ...ds.test.map((t) => t.path)];
    files.push(files[2]!);
    const set = await loadImageSet(files, model.config.imageSize);
    const hw = set.size * set.size;
    const ref = scoreImageSet(tf, model, set, 1, true);
    for (const bs of [3, 16]) {
      const r = scoreImageSet(tf, model, set, bs, true);
      const dm = maxAbsDiff(r.maps!, ref.maps!), ds2 = maxAbsDiff(r.scores, ref.scores);
      console.log(`batch ${bs} vs 1: max |map difference| ${dm}, max |score difference| ${ds2}`);
      assert.ok(dm <= 1e-5 && ds2 <= 1e-5, `batch ${bs}: map ${dm}, score ${ds2}`);
    }
    const perm = shuffle([...files.keys()], 99);
    const permuted = scoreImageSet(tf, model, { size: set.size, images: perm.map((i) => set.images[i]!) }, 3, true);
    let dm = 0;
    perm.forEach((src, k) => {
      dm = Math.max(dm, maxAbsDiff(permuted.maps!.subarray(k * hw, (k + 1) * hw), ref.maps!.subarray(src * hw, (src + 1) * hw)));
      assert.ok(Math.abs(permuted.scores[k]! - ref.scores[src]!) <= 1e-5, `score of image ${src} after shuffling`);
    });
    assert.ok(dm <= 1e-5, `shuffled maps: ${dm}`);

    // predictImages: shuffled file list, batch 16 vs natural order, batch 1.
    const byPath = (rs: { path: string; score: number }[]): Map<string, number> => new Map(rs.map((r) => [r.path, r.score]));
    const p1 = byPath(await predictImages(tf, model, meta, files, cat, undefined, 1));
    const shuffled = shuffle(files, 5);
    assert.notDeepEqual(shuffled, files);
    const out = await predictImages(tf, model, meta, shuffled, cat, undefined, 16);
    assert.deepEqual(out.map((r) => r.path), shuffled, 'results in the order of the given files');
    for (const [p, s] of byPath(out)) assert.ok(Math.abs(s - p1.get(p)!) <= 1e-5, `${p}: ${s} vs ${p1.get(p)}`);
  } finally {
    model.dispose();
  }
});

test('a checkpoint holds no absolute paths (MVTec and folder datasets)', { timeout: 90_000 }, async () => {
  await setup();
  const fd = await makeFolderDataset(path.join(tmp, 'folderdata'));
  const runF = path.join(tmp, 'runF');
  ok(await ntsnet(['fit', '--normal', fd.normal, '--abnormal', fd.abnormal, '--out', runF, '--preset', 'tiny', '--image-size', '32', '--epochs', '1', '--test']), 'fit folder dataset');
  for (const dir of [runA, runF]) {
    const { header } = readHeader(path.join(dir, 'model.safetensors'));
    const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as unknown;
    const results = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) as unknown;
    for (const [what, value] of [['model.safetensors header', header], ['config.json', config], ['results.json', results]] as const) {
      const strings = allStrings(value);
      assert.ok(strings.length > 20, `${what}: strings found`);
      for (const s of strings) {
        assert.ok(!s.includes(tmp), `${dir}/${what} contains the temp dir: ${s}`);
        assert.ok(!s.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(s) && !s.startsWith('\\\\'), `${dir}/${what} holds an absolute path: ${s}`);
      }
    }
    assert.ok(!readFileSync(path.join(dir, 'model.safetensors')).subarray(0, 1 << 20).includes(tmp), 'raw bytes of the header');
  }
  const meta = await readCheckpointMeta(runF);
  assert.equal(meta.split.kind, 'folder');
  assert.ok(meta.split.files.train.every((f) => f.startsWith('good/')), JSON.stringify(meta.split.files.train));
});

test('checkpoints of another format, or whose config does not match their tensors, are refused saying what differs', { timeout: 90_000 }, async () => {
  await setup();
  const tf = loadTf();
  const dir = (n: string): string => path.join(tmp, 'bad', n);
  const refused = async (loc: string, re: RegExp): Promise<string> => {
    let msg = '';
    await assert.rejects(loadCheckpoint(tf, loc), (e: Error) => { msg = e.message; assert.match(e.message, re); return true; });
    return msg;
  };
  // The acceptance example: the embedded config says 'basic' while the tensors are CoT.
  const basic = await refused(editMeta(runA, dir('basic'), (m) => { m.config.model.studentBlock = 'basic'; }),
    /does not match its own config: config says studentBlock=basic but the tensors are those of studentBlock=cot\./);
  console.log(`refusal message: ${basic.split('\n')[0]}`);
  await refused(editMeta(runA, dir('depth'), (m) => { m.config.model.studentDepth = 34; }), /config says studentDepth=34 but the tensors are those of studentDepth=18/);
  await refused(editMeta(runA, dir('tdepth'), (m) => { m.config.model.teacherDepth = 34; }), /config says teacherDepth=34 but the tensors are those of teacherDepth=18/);
  // Fewer layers than stored: the layer3 tensors are unexpected (they used to be ignored silently).
  await refused(editMeta(runA, dir('layers'), (m) => { m.config.model.layers = [1, 2]; }), /config says layers=1,2 \(deepest layer2\) but the tensors are those of layers up to layer3[\s\S]*unexpected (teacher|student)\.layer3\./);
  await refused(editMeta(runA, dir('cot'), (m) => { m.config.model.cot.groups = 2; }), /config says cot\.groups=2 but the tensors are those of cot\.groups=4/);
  await refused(editMeta(runA, dir('two'), (m) => { m.config.model.studentBlock = 'basic'; m.config.model.layers = [1]; }),
    /config says studentBlock=basic, layers=1 \(deepest layer1\) but the tensors are those of studentBlock=cot, layers up to layer3/);
  // Format and metadata problems.
  await refused(editMeta(runA, dir('format'), (m) => { m.format = 2; }), /has checkpoint format 2; this ntsnet \([\d.]+\) reads format 1/);
  await refused(editMeta(runA, dir('invalid'), (m) => { m.config.model.fusion = 'max' as 'sum'; }), /the config stored in the checkpoint is invalid[\s\S]*fusion must be/);
  const { header, data } = readHeader(path.join(runA, 'model.safetensors'));
  const { __metadata__: _m, ...noMeta } = header;
  writeWithHeader(path.join(dir('nometa'), 'model.safetensors'), noMeta, data);
  await refused(dir('nometa'), /is not an ntsnet checkpoint \(no 'ntsnet' metadata\)/);
  const whole = readFileSync(path.join(runA, 'model.safetensors'));
  mkdirSync(dir('truncated'), { recursive: true });
  writeFileSync(path.join(dir('truncated'), 'model.safetensors'), whole.subarray(0, whole.length >> 1));
  await refused(dir('truncated'), /is truncated \(\d+ bytes of \d+\): probably an interrupted copy/);

  // Tensors of another structure under an unchanged config (a basic / 2-layer model saved with runA's metadata).
  const meta = await readCheckpointMeta(runA);
  for (const [name, change, re] of [
    ['basic-tensors', { studentBlock: 'basic' }, /config says studentBlock=cot but the tensors are those of studentBlock=basic/],
    ['layer2-tensors', { layers: [1, 2] }, /config says layers=1,2,3 \(deepest layer3\) but the tensors are those of layers up to layer2/],
  ] as const) {
    const net = NTSNet.create(tf, { ...meta.config.model, ...change } as typeof meta.config.model, 'random', 1);
    try {
      await saveCheckpoint(dir(name), net, meta);
    } finally {
      net.dispose();
    }
    await refused(dir(name), re);
  }
  // The CLI shows the same message and fails.
  const r = await ntsnet(['test', '--checkpoint', dir('basic'), '--data', cat, '--out', path.join(tmp, 'bad-out')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ntsnet: error: .*config says studentBlock=basic but the tensors are those of studentBlock=cot/);
  // The original still loads.
  (await loadCheckpoint(tf, runA)).model.dispose();
});

test('an interrupted save never replaces a good checkpoint (write fails mid-file; process killed mid-save)', { timeout: 90_000 }, async () => {
  await setup();
  const tf = loadTf();
  const good = readFileSync(path.join(runA, 'model.safetensors'));
  const goodConfig = readFileSync(path.join(runA, 'config.json'));

  // 1. The write fails half-way (file size limit: EFBIG, like a full disk) while fit saves its first checkpoint.
  const runU = path.join(tmp, 'runU');
  cpSync(runA, runU, { recursive: true });
  const blocks = Math.floor(good.length / 2 / 1024);
  const u = await exec('/bin/bash', ['-c', `ulimit -f ${blocks} && exec "$0" "$@"`, process.execPath, cli(), 'fit', '--data', cat, '--out', runU, '--preset', 'tiny', '--epochs', '1', '--seed', '9', '--force']);
  assert.notEqual(u.code, 0, 'fit fails when the checkpoint cannot be written');
  if (u.signal === null) assert.match(u.stderr, /Could not write .*model\.safetensors: EFBIG/);
  assert.ok(readFileSync(path.join(runU, 'model.safetensors')).equals(good), 'the good model.safetensors is untouched');
  assert.ok(readFileSync(path.join(runU, 'config.json')).equals(goodConfig), 'config.json untouched');
  assert.deepEqual(tempFiles(runU), [], 'the half-written temporary file was removed');
  (await loadCheckpoint(tf, runU)).model.dispose();

  // 2. SIGKILL while fit is writing its first checkpoint over the good one (as soon as its temporary file has data).
  const runK = path.join(tmp, 'runK');
  cpSync(runA, runK, { recursive: true });
  const child = spawn(process.execPath, [cli(), 'fit', '--data', cat, '--out', runK, '--preset', 'tiny', '--epochs', '1', '--seed', '9', '--force'], { env: quietEnv, stdio: 'ignore' });
  let killedAt: string | undefined;
  const watcher = watch(runK, (_ev, name) => {
    if (killedAt || typeof name !== 'string' || !name.startsWith('.tmp-model.safetensors-')) return;
    const size = statSync(path.join(runK, name), { throwIfNoEntry: false })?.size;
    if (size === 0) return; // created, nothing written yet: wait for the next write event
    killedAt = `${name} (${size ?? 'already renamed'} bytes written)`;
    child.kill('SIGKILL');
  });
  const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
  watcher.close();
  assert.equal(signal, 'SIGKILL', 'the child was killed during its save');
  const after = readFileSync(path.join(runK, 'model.safetensors'));
  const left = tempFiles(runK);
  console.log(`killed at ${killedAt}; model.safetensors ${after.equals(good) ? 'is the previous good file' : 'is the new complete file'}; temporary files left: ${left.length ? left.map((f) => `${f} (${readFileSync(path.join(runK, f)).length} of ${good.length} bytes)`).join(', ') : 'none'}`);
  const { model, meta } = await loadCheckpoint(tf, runK); // the file in place is complete, whichever it is
  try {
    if (!after.equals(good)) assert.equal(after.length, good.length);
    // A later save in that folder removes the dead process's temporary file, but not one of a live process.
    const live = `.tmp-model.safetensors-${process.ppid}-abcdef`, dead = '.tmp-config.json-2147483646-0123ab'; // above any pid_max
    writeFileSync(path.join(runK, live), 'x');
    writeFileSync(path.join(runK, dead), 'x');
    await saveCheckpoint(runK, model, meta);
    assert.deepEqual(tempFiles(runK), [live]);
    (await loadCheckpoint(tf, runK)).model.dispose();
  } finally {
    model.dispose();
  }
});

test('output folders are never inside the dataset (predict, test, fit with a folder dataset; symbolic links)', { timeout: 90_000 }, async () => {
  await setup();
  const before = listTree(cat);
  const link = path.join(tmp, 'widget-link');
  if (!existsSync(link)) symlinkSync(cat, link);
  const cases: [string, string[]][] = [
    ['predict into the input folder', ['predict', path.join(cat, 'test'), '--checkpoint', runA, '--out', path.join(cat, 'test', 'overlays')]],
    ['predict into the input folder itself', ['predict', path.join(cat, 'test', 'spot', '000.png'), '--checkpoint', runA, '--out', path.join(cat, 'test', 'spot')]],
    ['predict into the category that holds the input folder', ['predict', path.join(cat, 'test', 'spot'), '--checkpoint', runA, '--out', path.join(cat, 'overlays')]],
    ['predict through a symbolic link', ['predict', path.join(cat, 'test'), '--checkpoint', runA, '--out', path.join(link, 'test', 'x')]],
    ['test --out inside --data', ['test', '--checkpoint', runA, '--data', cat, '--out', path.join(cat, 'results')]],
    ['test --out through a symbolic link', ['test', '--checkpoint', runA, '--data', cat, '--out', path.join(link, 'results')]],
    ['fit --out inside --normal', ['fit', '--normal', path.join(cat, 'train', 'good'), '--out', path.join(cat, 'train', 'good', 'run'), '--preset', 'tiny']],
  ];
  for (const [what, args] of cases) {
    const r = await ntsnet(args);
    assert.equal(r.code, 1, `${what}: refused (exit ${r.code})\n${r.stderr}`);
    assert.match(r.stderr, /ntsnet: error: Output folder .* is inside the dataset folder .*ntsnet never writes into datasets/, what);
  }
  assert.deepEqual(listTree(cat), before, 'nothing was written into the dataset');
  // An output folder beside the dataset is fine.
  const okOut = path.join(tmp, 'overlays-ok');
  ok(await ntsnet(['predict', path.join(cat, 'test', 'spot'), '--checkpoint', runA, '--out', okOut]), 'predict beside the dataset');
  const written = readdirSync(okOut);
  for (const f of ['000_overlay.png', '001_overlay.png', '002_overlay.png']) assert.ok(written.includes(f), `${f} in ${written.join(', ')}`);
});

test('a checkpoint gives the same maps on the pure-JS TF.js cpu backend (32 px, within 1e-4)', { timeout: 90_000 }, async () => {
  await setup();
  const tf = loadTf();
  const run32 = path.join(tmp, 'run32');
  if (!existsSync(path.join(run32, 'model.safetensors')))
    ok(await ntsnet(['fit', '--data', cat, '--out', run32, '--preset', 'tiny', '--image-size', '32', '--epochs', '1', '--seed', '3']), 'fit 32 px');
  const files = [path.join(cat, 'test/good/000.png'), path.join(cat, 'test/spot/000.png'), path.join(cat, 'test/spot/002.png')];
  const { model } = await loadCheckpoint(tf, run32);
  let native;
  try {
    native = scoreImageSet(tf, model, await loadImageSet(files, 32), 2, true);
  } finally {
    model.dispose();
  }
  // The child loads @tensorflow/tfjs (pure JS, 'cpu' backend) and never tfjs-node; the library takes tf as a parameter.
  const script = path.join(tmp, 'purejs.mjs');
  writeFileSync(script, `
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [repo, ckpt, out, ...files] = process.argv.slice(2);
const require = createRequire(repo + '/package.json');
const tf = require('@tensorflow/tfjs');
await tf.setBackend('cpu');
await tf.ready();
const lib = (p) => import(pathToFileURL(repo + '/dist/src/' + p).href);
const { loadCheckpoint } = await lib('engine/checkpoint.js');
const { loadImageSet } = await lib('engine/batches.js');
const { scoreImageSet } = await lib('engine/score.js');
const { model } = await loadCheckpoint(tf, ckpt);
const r = scoreImageSet(tf, model, await loadImageSet(files, model.config.imageSize), 2, true);
writeFileSync(out, Buffer.from(r.maps.buffer, r.maps.byteOffset, r.maps.byteLength));
const native = Object.keys(require.cache).some((k) => k.includes('tfjs-node'));
console.log('RESULT ' + JSON.stringify({ backend: tf.getBackend(), native, scores: Array.from(r.scores) }));
`);
  const mapsFile = path.join(tmp, 'purejs-maps.bin');
  const r = ok(await exec(process.execPath, [script, repoRoot(), run32, mapsFile, ...files], { ...quietEnv, NTSNET_ALLOW_SLOW_BACKEND: '1' }), 'pure-JS child');
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, r.stdout);
  const res = JSON.parse(line.slice(7)) as { backend: string; native: boolean; scores: number[] };
  assert.equal(res.backend, 'cpu');
  assert.equal(res.native, false, 'tfjs-node was not loaded in the child');
  const buf = readFileSync(mapsFile);
  const js = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const dm = maxAbsDiff(js, native.maps!), ds = maxAbsDiff(res.scores, native.scores);
  console.log(`pure-JS cpu vs tfjs-node: max |map difference| ${dm}, max |score difference| ${ds} (maps up to ${Math.max(...native.scores).toFixed(3)})`);
  assert.ok(dm <= 1e-4 && ds <= 1e-4, `maps ${dm}, scores ${ds}`);
});
