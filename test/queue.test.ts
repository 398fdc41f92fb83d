/**
 * The job queue with a real Redis (a redis-server this test starts on a free loopback port; skipped with a message
 * when redis-server is not installed) and two real `ntsnet worker` processes: a fit and a chunked predict are
 * submitted, the worker running the fit is killed with SIGKILL mid-fit; every job must complete exactly once, the
 * outputs must equal the single-machine CLI's, and nothing partial may be left. Also: the same request submitted twice
 * is not run twice, and a job with bad input fails once with its error instead of being retried.
 */
import { strict as assert } from 'node:assert';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { QueueEvents } from 'bullmq';
import { connectRedis } from '../src/queue/jobs.js';
import { JobQueue, type JobInfo } from '../src/queue/submit.js';
import { processAlive } from '../src/util/process.js';
import { makeMvtecCategory, makeTempDir, repoRoot } from './helpers.js';

const run = promisify(execFile);
const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
const REDIS = process.env.NTSNET_REDIS_SERVER ?? 'redis-server';
const redisMissing = spawnSync(REDIS, ['--version']).error ? `${REDIS} not found: job-queue tests skipped (install it with 'apt-get install -y redis-server')` : undefined;

let tmp = '', data = '', ref = '', refPred = '', shared = '', url = '';
let redis: ChildProcess | undefined;
const workers: { proc: ChildProcess; log: string }[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function startWorker(): { proc: ChildProcess; log: string } {
  const w = { proc: spawn(process.execPath, [cli(), 'worker', '--redis', url, '--lock-ms', '3000', '--stalled-interval-ms', '1000'], { stdio: ['ignore', 'ignore', 'pipe'] }), log: '' };
  w.proc.stderr!.on('data', (d: Buffer) => void (w.log += d.toString()));
  workers.push(w);
  return w;
}

const waitFor = async (what: string, cond: () => boolean | Promise<boolean>, ms: number): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** True when `pid` has exited but is not reaped yet (state Z in /proc; its parent, the killed worker, is gone). */
function zombie(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/\(.*\)/, 'x').split(' ')[2] === 'Z';
  } catch {
    return true;
  }
}

/** All files below `dir`, relative, sorted. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** The tensor bytes of a safetensors file (everything after the JSON header, which holds the creation time). */
function tensorBytes(file: string): Buffer {
  const b = readFileSync(file);
  return b.subarray(8 + Number(b.readBigUInt64LE(0)));
}

before(async () => {
  if (redisMissing) return;
  tmp = makeTempDir('queue');
  data = await makeMvtecCategory(path.join(tmp, 'widget'), { width: 72, height: 64, half: 7, train: 8, good: 6, defective: 6 });
  ref = path.join(tmp, 'ref-fit');
  refPred = path.join(tmp, 'ref-predict');
  await run(process.execPath, [cli(), 'fit', '--data', data, '--out', ref, '--preset', 'tiny'], { maxBuffer: 1 << 24 });
  // The queue's workers score with tfjs-node (submit predict's default engine): the CLI reference must too.
  await run(process.execPath, [cli(), 'predict', path.join(data, 'test'), '--checkpoint', ref, '--out', refPred, '--batch-size', '4', '--engine', 'tfjs'], { maxBuffer: 1 << 24 });
  shared = path.join(tmp, 'shared');
  const port = await freePort();
  url = `redis://127.0.0.1:${port}`;
  redis = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp], { stdio: 'ignore' });
  await waitFor('redis-server', async () => {
    try {
      (await connectRedis(url)).disconnect();
      return true;
    } catch {
      return false;
    }
  }, 10_000);
});

after(async () => {
  for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGTERM');
  await Promise.all(workers.map((w) => (w.proc.exitCode === null && w.proc.signalCode === null ? new Promise((r) => w.proc.once('exit', r)) : undefined)));
  redis?.kill('SIGTERM');
});

test('queue: two workers, a fit and a chunked predict, the fit\'s worker SIGKILLed mid-job: every job completes once, outputs equal the CLI\'s, nothing partial', { skip: redisMissing, timeout: 240_000 }, async (t) => {
  const conn = await connectRedis(url);
  const q = new JobQueue(conn);
  const events = new QueueEvents('ntsnet', { connection: { host: '127.0.0.1', port: Number(new URL(url).port) } });
  const completed = new Map<string, number>();
  events.on('completed', ({ jobId }) => void completed.set(jobId, (completed.get(jobId) ?? 0) + 1));
  await events.waitUntilReady();
  try {
    const a = startWorker(), b = startWorker();
    await waitFor('workers ready', () => workers.every((w) => /waiting for jobs/.test(w.log)), 30_000);

    const fitOut = path.join(shared, 'checkpoints', 'widget');
    const predOut = path.join(shared, 'predictions');
    const fitId = (await run(process.execPath, [cli(), 'submit', 'fit', '--data', data, '--out', fitOut, '--preset', 'tiny', '--redis', url])).stdout.trim();
    const sub = await run(process.execPath, [cli(), 'submit', 'predict', path.join(data, 'test'), '--checkpoint', ref, '--out', predOut, '--batch-size', '4', '--chunk-size', '4', '--redis', url]);
    const predId = sub.stdout.trim();
    assert.match(sub.stderr, /12 image\(s\) in 3 chunk job\(s\)/);
    assert.match(fitId, /^fit-[0-9a-f]{20}$/);

    // Kill the worker that runs the fit as soon as its first epoch is done (its checkpoint is then half-way).
    let victim: typeof a | undefined;
    await waitFor('the first fit epoch', () => (victim = [a, b].find((w) => new RegExp(`job ${fitId}: epoch 1/2`).test(w.log))) !== undefined, 60_000);
    const child = Number(new RegExp(`\\[(\\d+)\\] job ${fitId} \\(fit\\) started`).exec(victim!.log)?.[1]);
    assert.ok(!/job fit-\S+ \(fit\) completed/.test(victim!.log), 'killed mid-job');
    victim!.proc.kill('SIGKILL');
    const survivor = victim === a ? b : a;
    t.diagnostic(`SIGKILLed worker pid ${victim!.proc.pid} (its job process ${child}) after fit epoch 1`);

    const ids = [fitId, predId, `${predId}-c0`, `${predId}-c1`, `${predId}-c2`];
    let infos: (JobInfo | undefined)[] = [];
    await waitFor('every job to complete', async () => {
      infos = await Promise.all(ids.map((id) => q.info(id)));
      return infos.every((i) => i?.state === 'completed' || i?.state === 'failed');
    }, 150_000);
    for (const i of infos) assert.equal(i!.state, 'completed', `${i!.id}: ${i!.error ?? ''}`);
    // The killed worker's job process stops at its next epoch boundary at the latest (it never reaches the swap).
    await waitFor('the killed worker\'s job process to exit', () => !processAlive(child) || zombie(child), 120_000);
    await new Promise((r) => setTimeout(r, 300)); // last completion events
    for (const id of ids) assert.equal(completed.get(id), 1, `${id} completed exactly once`);
    const fitInfo = infos[0]!;
    assert.ok(fitInfo.started >= 2, `the fit was taken over after the kill (started ${fitInfo.started} times)`);
    assert.match(survivor.log, new RegExp(`job ${fitId} \\(fit\\) started, attempt \\d+, after \\d+ stall`));
    t.diagnostic(`fit: ${fitInfo.result} (started ${fitInfo.started}x)`);

    // Fit: the same tensors and thresholds as `ntsnet fit`; no staging folder left.
    assert.ok(tensorBytes(path.join(fitOut, 'model.safetensors')).equals(tensorBytes(path.join(ref, 'model.safetensors'))), 'checkpoint tensors equal the CLI fit');
    const cfg = (d: string): { thresholds: unknown; bestEpoch: number; valScores: number[] } => JSON.parse(readFileSync(path.join(d, 'config.json'), 'utf8')) as never;
    assert.deepEqual([cfg(fitOut).thresholds, cfg(fitOut).bestEpoch, cfg(fitOut).valScores], [cfg(ref).thresholds, cfg(ref).bestEpoch, cfg(ref).valScores]);
    assert.deepEqual(readdirSync(path.dirname(fitOut)), ['widget'], 'no staging folder left next to the checkpoint');

    // Predict: the files of `ntsnet predict --out` (without its resume journal), byte for byte; each image once.
    const want = files(refPred).filter((f) => f !== 'predictions.partial.jsonl');
    assert.deepEqual(files(predOut), want, 'same files, no chunk folder or temporary file left');
    for (const f of want.filter((x) => x.endsWith('.png'))) assert.ok(readFileSync(path.join(predOut, f)).equals(readFileSync(path.join(refPred, f))), `${f} identical`);
    const csv = (d: string): string[] => readFileSync(path.join(d, 'predictions.csv'), 'utf8').trim().split('\n').map((l) => l.split(',').filter((_, i) => i !== 6).join(','));
    assert.deepEqual(csv(predOut), csv(refPred), 'predictions.csv equal (time_ms aside)');
    assert.equal(new Set(csv(predOut).slice(1).map((l) => l.split(',')[0])).size, 12, 'each image once');
    const json = (d: string): unknown => {
      const j = JSON.parse(readFileSync(path.join(d, 'predictions.json'), 'utf8')) as { createdAt?: string; images: { timeMs?: number }[] };
      delete j.createdAt;
      for (const i of j.images) delete i.timeMs;
      return j;
    };
    assert.deepEqual(json(predOut), json(refPred));
    const partial = files(shared).filter((f) => /(^|\/)\.tmp-|\.ntsnet-queue-|(^|\/)\.[^/]+\.ntsnet-job-/.test(f));
    assert.deepEqual(partial, [], 'nothing partial (temporary files, chunk or staging folders) under the shared folder');
    assert.ok(existsSync(path.join(fitOut, `.ntsnet-job-${fitId}`)), 'the checkpoint names the job that wrote it');

    // The same request again: not run again.
    const again = await run(process.execPath, [cli(), 'submit', 'predict', path.join(data, 'test'), '--checkpoint', ref, '--out', predOut, '--batch-size', '4', '--chunk-size', '4', '--redis', url]);
    assert.equal(again.stdout.trim(), predId);
    assert.match(again.stderr, /already known \(state: completed\): not submitted again/);
    const againFit = await run(process.execPath, [cli(), 'submit', 'fit', '--data', data, '--out', fitOut, '--preset', 'tiny', '--redis', url]);
    assert.equal(againFit.stdout.trim(), fitId);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(completed.get(predId), 1);
    assert.equal(completed.get(fitId), 1);
    assert.equal((await q.list()).length, ids.length, 'no new job');
    const listing = await run(process.execPath, [cli(), 'jobs', '--redis', url]);
    assert.match(listing.stdout, new RegExp(`${fitId}\\s+fit\\s+completed\\s+2/2 epochs`));
    const watched = await run(process.execPath, [cli(), 'jobs', '--redis', url, '--watch', '--until-done', '--interval', '0.2', '--json']);
    assert.equal((JSON.parse(watched.stdout.trim().split('\n').at(-1)!) as JobInfo[]).filter((j) => j.state === 'completed').length, ids.length);
  } finally {
    await events.close();
    await q.close();
    conn.disconnect();
  }
});

test('queue: submit test --wait writes the results of ntsnet test', { skip: redisMissing, timeout: 90_000 }, async () => {
  if (!workers.some((w) => w.proc.exitCode === null && w.proc.signalCode === null)) startWorker();
  const viaCli = path.join(tmp, 'test-cli'), viaQueue = path.join(shared, 'test-results');
  await run(process.execPath, [cli(), 'test', '--checkpoint', ref, '--data', data, '--out', viaCli], { maxBuffer: 1 << 24 });
  const r = await run(process.execPath, [cli(), 'submit', 'test', '--checkpoint', ref, '--data', data, '--out', viaQueue, '--redis', url, '--wait'], { maxBuffer: 1 << 24 });
  assert.match(r.stderr, /completed/);
  type Res = { results: { category: string; imageAuroc: number | null; pixelAuroc: number | null; images: { file: string; score: number }[] }[] };
  const pick = (d: string): unknown => (JSON.parse(readFileSync(path.join(d, 'results.json'), 'utf8')) as Res).results.map((x) => [x.category, x.imageAuroc, x.pixelAuroc, x.images.map((i) => [i.file, i.score])]);
  assert.deepEqual(pick(viaQueue), pick(viaCli));
  assert.ok(existsSync(path.join(viaQueue, 'metrics.md')));
});

test('queue: a job with bad input fails once with its error and is not retried', { skip: redisMissing, timeout: 90_000 }, async () => {
  if (!workers.some((w) => w.proc.exitCode === null && w.proc.signalCode === null)) startWorker();
  const conn = await connectRedis(url);
  const q = new JobQueue(conn);
  try {
    const missing = path.join(tmp, 'no-such-checkpoint');
    const r = await run(process.execPath, [cli(), 'submit', 'test', '--checkpoint', missing, '--data', data, '--redis', url, '--wait']).catch((e: { code: number; stdout: string; stderr: string }) => e);
    assert.equal((r as { code?: number }).code, 1, '--wait exits 1 for a failed job');
    assert.match(r.stderr, /failed: Checkpoint not found: .*no-such-checkpoint.*Pass the output folder of 'ntsnet fit'/);
    const id = r.stdout.trim();
    await new Promise((res) => setTimeout(res, 2500)); // a retry would have started by now (backoff 2 s)
    const info = (await q.info(id))!;
    assert.equal(info.state, 'failed');
    assert.equal(info.started, 1, 'started once, not retried');
    assert.equal(info.failures, 1);
    assert.ok(!existsSync(missing) || !statSync(missing).isDirectory());
  } finally {
    await q.close();
    conn.disconnect();
  }
});
