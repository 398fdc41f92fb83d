/**
 * Peak memory of `fit` against the dataset size (issue 13, item 8): the peak RSS of a fit on many images must stay
 * within 1 GB of the same fit on few images (same model, batch and image size), because training and validation
 * images are streamed from a disk cache instead of being held in memory as float32.
 *
 *   nice -n 19 node dist/benchmarks/fit-memory.js [--counts 200,10000] [--size 256] [--batch 16] [--batches 10] [--val-fraction 0.01]
 *
 * For each count it writes a generated MVTec-layout dataset of small (48 x 48) noise PNGs to a temporary folder, then
 * runs `fit()` in a fresh child process (1 epoch, basic student, frozen_bn teacher norm, random teacher, every image
 * decoded and cached at `--size` px) and prints the child's peak RSS (getrusage ru_maxrss). Each epoch is cut after
 * `--batches` batches (FitOptions.maxBatchesPerEpoch) so the measurement fits in minutes of CPU: the memory that
 * grows with the dataset (image cache, listing, split, validation maps) is allocated in full either way; the training
 * steps themselves are batch-bounded. Validation and threshold calibration run over all validation images.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
};

async function makeDataset(root: string, n: number): Promise<void> {
  const w = 48, h = 48;
  mkdirSync(path.join(root, 'train', 'good'), { recursive: true });
  mkdirSync(path.join(root, 'test', 'good'), { recursive: true });
  let s = 12345;
  const next = (): number => (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  const one = async (file: string): Promise<void> => {
    const buf = Buffer.alloc(w * h * 3);
    for (let i = 0; i < buf.length; i++) buf[i] = next();
    await sharp(buf, { raw: { width: w, height: h, channels: 3 } }).png({ compressionLevel: 1 }).toFile(file);
  };
  for (let i = 0; i < n; i++) await one(path.join(root, 'train', 'good', `${String(i).padStart(5, '0')}.png`));
  await one(path.join(root, 'test', 'good', '000.png'));
}

async function child(data: string, out: string): Promise<void> {
  const { loadTf } = await import('../src/backend/index.js');
  const { fit } = await import('../src/engine/fit.js');
  const { preset } = await import('../src/engine/config.js');
  const c = preset('tiny');
  c.model.imageSize = Number(arg('size', '256'));
  c.model.studentBlock = 'basic';
  c.model.teacherNorm = 'frozen_bn';
  c.teacher = 'random';
  c.train.epochs = 1;
  c.train.batchSize = Number(arg('batch', '16'));
  c.train.evalBatchSize = c.train.batchSize;
  c.train.valFraction = Number(arg('val-fraction', '0.01'));
  const t0 = Date.now();
  const r = await fit(loadTf(), { data, out, config: c, maxBatchesPerEpoch: Number(arg('batches', '10')), log: () => {}, progress: false });
  const u = process.resourceUsage();
  process.stdout.write(`RESULT ${JSON.stringify({ maxRssKiB: u.maxRSS, seconds: (Date.now() - t0) / 1000, train: r.meta.split.files.train.length, val: r.meta.split.files.val.length })}\n`);
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) return child(arg('child', ''), arg('out', ''));
  const counts = arg('counts', '200,10000').split(',').map(Number);
  const base = mkdtempSync(path.join(tmpdir(), 'ntsnet-fit-memory-'));
  const rows: { images: number; train: number; val: number; peakRssMiB: number; seconds: number }[] = [];
  try {
    for (const n of counts) {
      const data = path.join(base, `d${n}`);
      process.stderr.write(`generating ${n} images...\n`);
      await makeDataset(data, n);
      process.stderr.write(`fit on ${n} images (${arg('size', '256')} px, batch ${arg('batch', '16')}, ${arg('batches', '10')} batches, val fraction ${arg('val-fraction', '0.01')})...\n`);
      const self = fileURLToPath(import.meta.url);
      const passthrough = ['size', 'batch', 'batches', 'val-fraction'].flatMap((k) => (process.argv.includes(`--${k}`) ? [`--${k}`, arg(k, '')] : []));
      const r = spawnSync(process.execPath, [self, '--child', data, '--out', path.join(base, `run${n}`), ...passthrough], { encoding: 'utf8', maxBuffer: 1 << 26 });
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (r.status !== 0 || !line) throw new Error(`fit on ${n} images failed (${r.status}):\n${r.stderr.slice(-4000)}`);
      const res = JSON.parse(line.slice(7)) as { maxRssKiB: number; seconds: number; train: number; val: number };
      rows.push({ images: n, train: res.train, val: res.val, peakRssMiB: Math.round(res.maxRssKiB / 1024), seconds: res.seconds });
      process.stdout.write(`images ${n}: train ${res.train}, val ${res.val}, peak RSS ${(res.maxRssKiB / 1024).toFixed(0)} MiB, fit ${res.seconds.toFixed(1)} s\n`);
      rmSync(data, { recursive: true, force: true });
    }
    const lo = rows[0]!, hi = rows[rows.length - 1]!;
    const diff = hi.peakRssMiB - lo.peakRssMiB;
    process.stdout.write(`peak RSS difference ${hi.images} vs ${lo.images} images: ${diff} MiB (${diff <= 1024 ? 'within' : 'ABOVE'} the 1 GB bound; float32 in memory would need ${((hi.images - lo.images) * Number(arg('size', '256')) ** 2 * 12 / 2 ** 20).toFixed(0)} MiB more)\n`);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
