/**
 * Load benchmark of `ntsnet serve` on loopback (autocannon), measured back to back with the same engine's offline
 * throughput, so that the ratios mean something on a machine shared with other work.
 *
 *   npx tsc -p tsconfig.json && node dist/benchmarks/serve-load.js [--checkpoint DIR] [--images DIR] [--size 256]
 *     [--duration 20] [--amount 10000] [--amount-size 256] [--max-batch 8] [--max-wait-ms 5] [--connections 16]
 *     [--engine onnxruntime|tfjs] [--repeats 3] [--rounds 3] [--out FILE.json]   (onnxruntime: the service's default engine)
 *
 * Steps (all on 127.0.0.1):
 * 1. offline: `inspectImages` (what `ntsnet predict [--engine onnxruntime]` runs, decoding included, no output files) over the images,
 *    median of --repeats (3) passes, at
 *    batch sizes 1, 2, 4, 8, 16: images/s; the best batch size is the reference, batch 1 gives the single-image time;
 * 2. `ntsnet serve` in its own process; single-image latency (1 connection, one request at a time);
 * 3. saturation with micro-batching on (--max-batch, --max-wait-ms), in --rounds (3) rounds alternating with offline
 *    passes at the best batch size (median ratio), and off (--max-batch 1): requests/s, p50, p99;
 * 4. half of the saturated rate (batching on): p99, against 3 x the single-image latency, with requests evenly
 *    spaced (open loop; what the target is judged on) and with autocannon's overallRate (once-a-second bursts);
 * Every phase starts on an idle service (nothing in flight, per /metrics).
 * 5. --amount requests (default 10,000) against the batching-on service at --amount-size px: RSS and
 *    tf.memory().numTensors before and after (from /healthz).
 * Without --checkpoint a throwaway checkpoint is trained (`--preset tiny --image-size SIZE --epochs 1`, random
 * teacher: speed does not depend on the weights); without --images 32 synthetic SIZE x SIZE PNGs are written.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { loadTf } from '../src/backend/index.js';
import { loadCheckpoint } from '../src/engine/checkpoint.js';
import { inspectImages } from '../src/engine/inspect.js';
import { openOnnxScorer } from '../src/engine/onnxModel.js';

const run = promisify(execFile);
const { values: a } = parseArgs({
  options: {
    checkpoint: { type: 'string' }, images: { type: 'string' }, size: { type: 'string', default: '256' },
    duration: { type: 'string', default: '20' }, amount: { type: 'string', default: '10000' }, 'amount-size': { type: 'string' },
    'max-batch': { type: 'string', default: '8' }, 'max-wait-ms': { type: 'string', default: '5' }, connections: { type: 'string', default: '16' },
    engine: { type: 'string', default: 'onnxruntime' }, repeats: { type: 'string', default: '3' }, rounds: { type: 'string', default: '3' }, out: { type: 'string' }, batches: { type: 'string', default: '1,2,4,8,16' },
  },
});
const SIZE = Number(a.size), DURATION = Number(a.duration), AMOUNT = Number(a.amount), AMOUNT_SIZE = Number(a['amount-size'] ?? a.size);
const REPEATS = Number(a.repeats), ROUNDS = Number(a.rounds);
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const MAX_BATCH = Number(a['max-batch']), MAX_WAIT = Number(a['max-wait-ms']), CONNECTIONS = Number(a.connections);
const cli = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'src', 'cli', 'main.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'ntsnet-serve-load-'));
const say = (l: string): void => void process.stderr.write(`${l}\n`);

/** Synthetic striped images with a defect on every fourth (the same generator as the tests, at `size` px). */
async function writeImages(dir: string, size: number, n: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (let k = 0; k < n; k++) {
    const buf = Buffer.alloc(size * size * 3);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const v = 100 + 60 * Math.sin((x + k) / 4) + ((x * 7 + y * 13 + k) % 11), i = (y * size + x) * 3;
        const d = k % 4 === 3 && Math.abs(x - size / 2) < size / 12 && Math.abs(y - size / 3) < size / 12;
        buf[i] = d ? 255 : v; buf[i + 1] = d ? 20 : v * 0.8; buf[i + 2] = d ? 240 : 90;
      }
    await sharp(buf, { raw: { width: size, height: size, channels: 3 } }).png().toFile(path.join(dir, `${String(k).padStart(3, '0')}.png`));
  }
}

async function trainThrowaway(size: number): Promise<string> {
  const data = path.join(tmp, `data-${size}`);
  await writeImages(path.join(data, 'train', 'good'), size, 8);
  await writeImages(path.join(data, 'test', 'good'), size, 2);
  const out = path.join(tmp, `ckpt-${size}`);
  say(`training a throwaway ${size} px checkpoint (tiny preset, 1 epoch, random teacher) ...`);
  await run(process.execPath, [cli, 'fit', '--data', data, '--out', out, '--preset', 'tiny', '--image-size', String(size), '--epochs', '1', '--val-fraction', '0.25'], { maxBuffer: 1 << 26 });
  return out;
}

/** Starts `ntsnet serve` and resolves with its URL. */
async function serve(ckpt: string, maxBatch: number, maxWait: number): Promise<{ url: string; proc: ChildProcess; stop: () => Promise<void> }> {
  const proc = spawn(process.execPath, [cli, 'serve', '--checkpoint', ckpt, '--port', '0', '--engine', a.engine!, '--max-batch', String(maxBatch), '--max-wait-ms', String(maxWait), '--max-queue', '1024'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (c) => reject(new Error(`serve exited (${c}): ${err}`)));
  });
  return { url, proc, stop: () => new Promise<void>((r) => { proc.once('exit', () => r()); proc.kill('SIGTERM'); }) };
}

/** One request of the paced run, as timed by the client and by the service (latencyMs of the response). */
interface Tail { request: number; sentAtMs: number; ms: number; serverMs: number; decodeMs: number; queueMs: number; inferenceMs: number; batchSize: number }
interface Load { rps: number; p50: number; p99: number; mean: number; requests: number; errors: number; non2xx: number; timeouts: number; seconds: number; tail?: Tail[] }

async function load(url: string, model: string, body: Buffer, o: { connections: number; duration?: number; amount?: number; overallRate?: number }): Promise<Load> {
  await settle(url);
  const r = await autocannon({
    url: `${url}/v1/models/${model}/predict`, method: 'POST', headers: { 'content-type': 'image/png' }, body,
    connections: o.connections, ...(o.amount ? { amount: o.amount } : { duration: o.duration ?? DURATION }), ...(o.overallRate ? { overallRate: o.overallRate } : {}),
    timeout: 60,
  });
  return {
    rps: r.requests.total / r.duration, p50: r.latency.p50, p99: r.latency.p99, mean: r.latency.mean, requests: r.requests.total,
    errors: r.errors, non2xx: r.non2xx, timeouts: r.timeouts, seconds: r.duration,
  };
}

/**
 * Open-loop load at a steady rate (one request every 1/rate s, as a camera on a line sends them), each request on its
 * own regardless of the others. autocannon's `overallRate` releases each second's requests together (a burst every
 * second), which measures queueing of bursts rather than the service at that rate; both are reported.
 */
async function paced(url: string, model: string, body: Buffer, rate: number, seconds: number): Promise<Load> {
  await settle(url);
  const n = Math.max(1, Math.round(rate * seconds));
  const lat: number[] = [];
  const rows: Tail[] = [];
  let errors = 0, non2xx = 0;
  const t0 = performance.now();
  const one = async (i: number): Promise<void> => {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const ts = performance.now();
    try {
      const res = await fetch(`${url}/v1/models/${model}/predict`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(body) });
      const j = (await res.json()) as { batchSize?: number; latencyMs?: { total: number; decode: number; queue: number; inference: number } };
      if (!res.ok) non2xx++;
      const ms = performance.now() - ts;
      lat.push(ms);
      if (j.latencyMs) rows.push({ request: i, sentAtMs: ts - t0, ms, serverMs: j.latencyMs.total, decodeMs: j.latencyMs.decode, queueMs: j.latencyMs.queue, inferenceMs: j.latencyMs.inference, batchSize: j.batchSize ?? 0 });
    } catch {
      errors++;
    }
  };
  await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
  const dur = (performance.now() - t0) / 1000;
  lat.sort((x, y) => x - y);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  // The slowest 2 %, with the service's own breakdown: where the tail's time went (decode, queue, the pass itself).
  const tail = rows.sort((x, y) => y.ms - x.ms).slice(0, Math.max(3, Math.ceil(rows.length / 50)));
  return { rps: lat.length / dur, p50: q(0.5), p99: q(0.99), mean: lat.reduce((x, y) => x + y, 0) / Math.max(1, lat.length), requests: lat.length, errors, non2xx, timeouts: 0, seconds: dur, tail };
}

/**
 * Waits until the service has answered everything admitted: autocannon stops at the end of a phase without waiting
 * for its in-flight requests, and their backlog would otherwise be counted in the next phase's first latencies.
 */
async function settle(url: string): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < 120_000) {
    const m = await (await fetch(`${url}/metrics`)).text();
    const busy = [...m.matchAll(/^ntsnet_(?:requests_in_flight|queue_depth)\{[^}]*\} (\d+)$/gm)].some((x) => Number(x[1]) > 0);
    if (!busy) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} still has requests in flight after 120 s`);
}

async function health(url: string): Promise<{ tensors: number; rssBytes: number }> {
  return (await (await fetch(`${url}/healthz`)).json()) as { tensors: number; rssBytes: number };
}

const fmt = (l: Load): string => `${l.rps.toFixed(2)} req/s, p50 ${l.p50.toFixed(0)} ms, p99 ${l.p99.toFixed(0)} ms (${l.requests} requests, ${l.errors} errors, ${l.non2xx} non-2xx, ${l.timeouts} timeouts)`;

try {
  const ckpt = a.checkpoint ? path.resolve(a.checkpoint) : await trainThrowaway(SIZE);
  const imgDir = a.images ? path.resolve(a.images) : path.join(tmp, 'images');
  if (!a.images) await writeImages(imgDir, SIZE, 32);
  const images = readdirSync(imgDir).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => path.join(imgDir, f));
  const body = readFileSync(images[0]!);
  const model = path.basename(ckpt);
  const started = new Date().toISOString(), loadavgAtStart = loadavg();
  say(`ntsnet serve load benchmark: ${SIZE} px, ${cpus().length} CPU(s) ${cpus()[0]?.model ?? ''}, load average ${loadavgAtStart.map((x) => x.toFixed(2)).join(' ')}`);

  // 1. Offline: what `ntsnet predict` does (decode + score), no output files.
  const tf = loadTf();
  const { model: net, meta } = await loadCheckpoint(tf, ckpt);
  // The same engine as the service: onnxruntime through the scorer `ntsnet predict --engine onnxruntime` uses.
  const onnx = a.engine === 'onnxruntime' ? await openOnnxScorer(net, ckpt, { log: say, meta }) : undefined;
  const engineOpts = onnx ? { scorer: onnx.scorer, engine: 'onnxruntime-node' } : {};
  // The median of REPEATS passes over the images: one pass is a few seconds, and the best of noisy single passes
  // would set the reference by its luckiest run.
  const measureOffline = async (b: number): Promise<{ batchSize: number; imagesPerSecond: number; runs: number[] }> => {
    await inspectImages(tf, net, meta, { input: imgDir, checkpoint: ckpt, batchSize: b, progress: false, ...engineOpts }); // warm-up
    const runs: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const t0 = performance.now();
      await inspectImages(tf, net, meta, { input: imgDir, checkpoint: ckpt, batchSize: b, progress: false, ...engineOpts });
      runs.push((images.length * 1000) / (performance.now() - t0));
    }
    return { batchSize: b, imagesPerSecond: median(runs), runs };
  };
  const offline: { batchSize: number; imagesPerSecond: number; runs: number[] }[] = [];
  for (const b of a.batches!.split(',').map(Number)) {
    offline.push(await measureOffline(b));
    say(`offline predict, batch ${b}: ${offline.at(-1)!.imagesPerSecond.toFixed(2)} images/s (median of ${offline.at(-1)!.runs.map((x) => x.toFixed(2)).join(', ')})`);
  }
  const best = offline.reduce((x, y) => (y.imagesPerSecond > x.imagesPerSecond ? y : x));

  // 2-4. The service.
  const on = await serve(ckpt, MAX_BATCH, MAX_WAIT);
  await load(on.url, model, body, { connections: CONNECTIONS, duration: 3 }); // warm-up
  const single = await load(on.url, model, body, { connections: 1, duration: Math.max(5, DURATION / 2) });
  say(`single image (1 connection, one at a time): ${fmt(single)}`);
  // Throughput ratio in ROUNDS alternating rounds (offline at its best batch, then the service at saturation; the
  // service process idles during the offline pass): on a machine whose speed drifts, each ratio compares neighbours
  // in time, and the median ratio is the figure.
  const rounds: { offline: number; service: number; ratio: number; load: Load }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const off = r === 0 ? best : await measureOffline(best.batchSize);
    const sat = await load(on.url, model, body, { connections: CONNECTIONS });
    rounds.push({ offline: off.imagesPerSecond, service: sat.rps, ratio: sat.rps / off.imagesPerSecond, load: sat });
    say(`round ${r + 1}: offline batch ${best.batchSize} ${off.imagesPerSecond.toFixed(2)} images/s; saturation, micro-batching on (max batch ${MAX_BATCH}, max wait ${MAX_WAIT} ms, ${CONNECTIONS} connections): ${fmt(sat)}; ratio ${(100 * sat.rps / off.imagesPerSecond).toFixed(1)} %`);
  }
  await onnx?.det.dispose();
  net.dispose();
  const medianRound = [...rounds].sort((x, y) => x.ratio - y.ratio)[Math.floor(rounds.length / 2)]!;
  const satOn = medianRound.load;
  const half = await load(on.url, model, body, { connections: CONNECTIONS, overallRate: Math.max(1, Math.round(satOn.rps / 2)) });
  say(`half load (${Math.round(satOn.rps / 2)} req/s offered by autocannon, released once per second), batching on: ${fmt(half)}`);
  const halfPaced = await paced(on.url, model, body, satOn.rps / 2, DURATION);
  say(`half load (${(satOn.rps / 2).toFixed(2)} req/s, evenly spaced, open loop), batching on: ${fmt(halfPaced)}`);
  for (const r of halfPaced.tail ?? []) say(`  slow: request ${r.request} at ${(r.sentAtMs / 1000).toFixed(1)} s: ${r.ms.toFixed(0)} ms (service ${r.serverMs.toFixed(0)}: decode ${r.decodeMs.toFixed(0)}, queue ${r.queueMs.toFixed(0)}, pass ${r.inferenceMs.toFixed(0)} at batch ${r.batchSize})`);
  const metrics = await (await fetch(`${on.url}/metrics`)).text();
  const bc = Number(/ntsnet_batch_size_count\{[^}]*\} (\d+)/.exec(metrics)?.[1]), bs = Number(/ntsnet_batch_size_sum\{[^}]*\} (\d+)/.exec(metrics)?.[1]);
  await on.stop();
  const off = await serve(ckpt, 1, 0);
  await load(off.url, model, body, { connections: CONNECTIONS, duration: 3 });
  const satOff = await load(off.url, model, body, { connections: CONNECTIONS });
  say(`saturation, micro-batching off (max batch 1, ${CONNECTIONS} connections): ${fmt(satOff)}`);
  await off.stop();

  // 5. Memory and tensors over --amount requests.
  let ckptMem = ckpt, bodyMem = body;
  if (AMOUNT_SIZE !== SIZE) {
    ckptMem = await trainThrowaway(AMOUNT_SIZE);
    await writeImages(path.join(tmp, `images-${AMOUNT_SIZE}`), AMOUNT_SIZE, 1);
    bodyMem = readFileSync(path.join(tmp, `images-${AMOUNT_SIZE}`, '000.png'));
  }
  const mem = await serve(ckptMem, MAX_BATCH, MAX_WAIT);
  await load(mem.url, path.basename(ckptMem), bodyMem, { connections: CONNECTIONS, amount: 200 });
  await settle(mem.url);
  const h0 = await health(mem.url);
  const bulk = await load(mem.url, path.basename(ckptMem), bodyMem, { connections: CONNECTIONS, amount: AMOUNT });
  await settle(mem.url);
  const h1 = await health(mem.url);
  say(`${AMOUNT} requests at ${AMOUNT_SIZE} px: ${fmt(bulk)}; RSS ${(h0.rssBytes / 2 ** 20).toFixed(1)} -> ${(h1.rssBytes / 2 ** 20).toFixed(1)} MiB, tensors ${h0.tensors} -> ${h1.tensors}`);
  await mem.stop();

  const result = {
    started, finished: new Date().toISOString(), cpus: cpus().length, cpu: cpus()[0]?.model, loadavgAtStart, loadavgAtEnd: loadavg(),
    imageSize: SIZE, engine: a.engine, maxBatch: MAX_BATCH, maxWaitMs: MAX_WAIT, connections: CONNECTIONS, durationSeconds: DURATION,
    offline, bestOffline: best, single, rounds: rounds.map(({ offline: o, service, ratio }) => ({ offlineImagesPerSecond: o, serviceRequestsPerSecond: service, ratio })), saturationBatchingOn: satOn, saturationBatchingOff: satOff, halfLoad: half, halfLoadPaced: halfPaced, meanBatchSizeOn: bs / bc,
    memory: { requests: AMOUNT, imageSize: AMOUNT_SIZE, load: bulk, rssStartBytes: h0.rssBytes, rssEndBytes: h1.rssBytes, rssChange: h1.rssBytes / h0.rssBytes - 1, tensorsStart: h0.tensors, tensorsEnd: h1.tensors },
    ratios: {
      serviceVsOffline: medianRound.ratio, serviceVsOfflineRounds: rounds.map((r) => r.ratio), target1: '>= 0.90 (median of the rounds)',
      p99HalfLoadVsSingle: halfPaced.p99 / single.p50, p99HalfLoadBurstsVsSingle: half.p99 / single.p50, target2: '<= 3 (evenly spaced requests)',
    },
  };
  say(`service at saturation / offline predict at its best batch (${best.batchSize}): ${(100 * result.ratios.serviceVsOffline).toFixed(1)} % median of ${rounds.map((r) => (100 * r.ratio).toFixed(1)).join(', ')} (target >= 90 %)`);
  say(`p99 at half load / single-image latency: ${result.ratios.p99HalfLoadVsSingle.toFixed(2)} evenly spaced (target <= 3); ${result.ratios.p99HalfLoadBurstsVsSingle.toFixed(2)} with autocannon's once-a-second bursts`);
  say(`memory: RSS ${(100 * result.memory.rssChange).toFixed(1)} % over ${AMOUNT} requests (target within 10 %), tensors ${h0.tensors} -> ${h1.tensors}`);
  const text = `${JSON.stringify(result, null, 2)}\n`;
  if (a.out) writeFileSync(a.out, text);
  process.stdout.write(text);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
