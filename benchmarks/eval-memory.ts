/**
 * Peak memory of `test` and `predict` against the test-set size (issue 13, item 8): both must be bounded by the
 * batch, not by the number of images. For each count it writes a generated MVTec-layout category (small 48 x 48
 * noise PNGs; half of the test images defective, each with a square mask) to a temporary folder, trains one tiny
 * checkpoint once (random teacher, basic student, `--size` px, 1 epoch), then runs the real CLI verbs
 *   ntsnet test --checkpoint C --data D       and       ntsnet predict D/test --checkpoint C --out O
 * each under /usr/bin/time and prints their peak RSS (maximum resident set size).
 *
 *   nice -n 19 node dist/benchmarks/eval-memory.js [--counts 200,10000] [--size 256] [--batch 16]
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
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const W = 48;

async function makeCategory(root: string, test: number): Promise<void> {
  for (const d of ['train/good', 'test/good', 'test/spot', 'ground_truth/spot']) mkdirSync(path.join(root, d), { recursive: true });
  let s = 12345;
  const next = (): number => (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  const image = async (file: string, spot: boolean): Promise<void> => {
    const buf = Buffer.alloc(W * W * 3);
    for (let i = 0; i < buf.length; i++) buf[i] = next() >> 1;
    if (spot) for (let y = 10; y < 20; y++) for (let x = 10; x < 20; x++) buf.fill(250, (y * W + x) * 3, (y * W + x) * 3 + 3);
    await sharp(buf, { raw: { width: W, height: W, channels: 3 } }).png({ compressionLevel: 1 }).toFile(file);
  };
  const mask = Buffer.alloc(W * W);
  for (let y = 10; y < 20; y++) mask.fill(255, y * W + 10, y * W + 20);
  const maskPng = await sharp(mask, { raw: { width: W, height: W, channels: 1 } }).png().toBuffer();
  for (let i = 0; i < 40; i++) await image(path.join(root, 'train', 'good', `${String(i).padStart(3, '0')}.png`), false);
  for (let i = 0; i < test; i++) {
    const name = String(i).padStart(5, '0');
    if (i % 2) {
      await image(path.join(root, 'test', 'spot', `${name}.png`), true);
      await sharp(maskPng).toFile(path.join(root, 'ground_truth', 'spot', `${name}_mask.png`));
    } else await image(path.join(root, 'test', 'good', `${name}.png`), false);
  }
}

/** Runs the CLI under /usr/bin/time; returns peak RSS in MiB and wall seconds. */
function timed(args: string[]): { peakRssMiB: number; seconds: number } {
  const t0 = Date.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'MAXRSS_KIB %M', process.execPath, cli, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const m = /MAXRSS_KIB (\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`ntsnet ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-4000)}`);
  return { peakRssMiB: Math.round(Number(m[1]) / 1024), seconds: (Date.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  const counts = arg('counts', '200,10000').split(',').map(Number);
  const size = arg('size', '256'), batch = arg('batch', '16');
  const base = mkdtempSync(path.join(tmpdir(), 'ntsnet-eval-memory-'));
  const rows: { images: number; test: number; predict: number }[] = [];
  try {
    const ckpt = path.join(base, 'ckpt');
    process.stderr.write('training one tiny checkpoint...\n');
    await makeCategory(path.join(base, 'train-only'), 4);
    timed(['fit', '--data', path.join(base, 'train-only'), '--out', ckpt, '--preset', 'tiny', '--teacher', 'random', '--student-block', 'basic',
      '--teacher-norm', 'frozen_bn', '--image-size', size, '--epochs', '1', '--batch-size', '8']);
    for (const n of counts) {
      const data = path.join(base, `d${n}`);
      process.stderr.write(`generating ${n} test images...\n`);
      await makeCategory(data, n);
      const t = timed(['test', '--checkpoint', ckpt, '--data', data, '--out', path.join(base, `test${n}`), '--batch-size', batch]);
      const p = timed(['predict', path.join(data, 'test'), '--checkpoint', ckpt, '--out', path.join(base, `pred${n}`), '--batch-size', batch]);
      rows.push({ images: n, test: t.peakRssMiB, predict: p.peakRssMiB });
      process.stdout.write(`test images ${n} at ${size} px, batch ${batch}: test peak RSS ${t.peakRssMiB} MiB (${t.seconds.toFixed(0)} s), predict peak RSS ${p.peakRssMiB} MiB (${p.seconds.toFixed(0)} s)\n`);
      rmSync(data, { recursive: true, force: true });
    }
    const lo = rows[0]!, hi = rows[rows.length - 1]!;
    const inMemory = ((hi.images - lo.images) * Number(size) ** 2 * 16) / 2 ** 20; // float32 RGB image + float32 map
    for (const verb of ['test', 'predict'] as const) {
      const d = hi[verb] - lo[verb];
      process.stdout.write(`${verb}: peak RSS ${hi.images} vs ${lo.images} images: ${d >= 0 ? '+' : ''}${d} MiB (${d <= 1024 ? 'within' : 'ABOVE'} 1 GB; holding images + maps as float32 would need ${inMemory.toFixed(0)} MiB more)\n`);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
