/**
 * `ntsnet serve`: a tiny checkpoint (64 px, random teacher) served over real HTTP on 127.0.0.1. Predictions must equal
 * `ntsnet predict`'s, micro-batched concurrent requests must equal batch-1 results, bad requests must get their
 * documented status and a JSON error while the service keeps serving, tensors must not leak, SIGTERM must finish the
 * in-flight request, and the page at / must work in headless Chromium (skipped with a message when it is absent).
 */
import { strict as assert } from 'node:assert';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { loadTf } from '../src/backend/index.js';
import { startServer, type RunningServer } from '../src/serve/index.js';
import { chromiumMissing, launchChromium, makeMvtecCategory, makeTempDir, repoRoot } from './helpers.js';

const run = promisify(execFile);
const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

let tmp = '', data = '', ckpt = '';
const images: string[] = [];
/** Scores of `ntsnet predict` (CLI), by absolute path. */
const cliScores = new Map<string, number>();
let fast: RunningServer | undefined, guarded: RunningServer | undefined;
const KEY = 'test-key-123';

interface Prediction {
  score: number; normalizedScore: number; decision: string; threshold: number; engine: string; batchSize: number;
  model: { name: string; sha256: string }; teacher: { source: string }; latencyMs: { total: number };
  map?: { format: string; base64: string; width: number; height: number };
}
interface ErrorBody { statusCode: number; code: string; message: string; error: string }

before(async () => {
  tmp = makeTempDir('serve');
  data = await makeMvtecCategory(path.join(tmp, 'widget'), { width: 72, height: 64, half: 7, train: 8, good: 4, defective: 4 });
  ckpt = path.join(tmp, 'widget-tiny');
  await run(process.execPath, [cli(), 'fit', '--data', data, '--out', ckpt, '--preset', 'tiny'], { maxBuffer: 1 << 24 });
  for (const d of ['good', 'spot']) for (const f of readdirSync(path.join(data, 'test', d)).sort()) images.push(path.join(data, 'test', d, f));
  const p = await run(process.execPath, [cli(), 'predict', path.join(data, 'test'), '--checkpoint', ckpt], { maxBuffer: 1 << 24, cwd: tmp });
  for (const line of p.stdout.trim().split('\n').slice(1)) {
    const [rel, score] = line.split('\t');
    cliScores.set(path.resolve(tmp, rel!), Number(score));
  }
  assert.equal(cliScores.size, images.length);
  const tf = loadTf();
  fast = await startServer(tf, { checkpoints: [ckpt], port: 0, maxBatch: 8, maxWaitMs: 30, engine: 'tfjs' });
  // tfjs-node, so that the tensor count checked below is the model's (in its inference thread), not onnxruntime's 0.
  guarded = await startServer(tf, { checkpoints: [ckpt], port: 0, maxBatch: 8, maxWaitMs: 400, maxQueue: 2, bodyLimit: 2 ** 20, maxPixels: 4_000_000, apiKey: KEY, engine: 'tfjs' });
});

after(async () => {
  await fast?.close();
  await guarded?.close();
});

const post = (s: RunningServer, body: Uint8Array, type = 'image/png', query = '', headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${s.url}/v1/models/widget-tiny/predict${query}`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': type, ...headers } });

test('serve: one image per request gives the score of ntsnet predict; concurrent requests are micro-batched with the same scores and decisions', { timeout: 120_000 }, async (t) => {
  const s = fast!;
  const models = (await (await fetch(`${s.url}/v1/models`)).json()) as { models: { name: string; engine: string; imageSize: number; thresholds: { image: number } }[] };
  assert.deepEqual(models.models.map((m) => [m.name, m.engine, m.imageSize]), [['widget-tiny', 'tfjs-node', 64]]);
  const cfg = JSON.parse(readFileSync(path.join(ckpt, 'config.json'), 'utf8')) as { thresholds: { image: number } };
  assert.equal(models.models[0]!.thresholds.image, cfg.thresholds.image);

  // One at a time (batch 1).
  const single: Prediction[] = [];
  for (const f of images) {
    const r = await post(s, readFileSync(f));
    assert.equal(r.status, 200);
    single.push((await r.json()) as Prediction);
  }
  single.forEach((p, i) => {
    assert.equal(p.batchSize, 1);
    assert.equal(p.engine, 'tfjs-node');
    assert.equal(p.model.name, 'widget-tiny');
    assert.equal(p.teacher.source, 'random');
    assert.ok(Math.abs(p.score - cliScores.get(images[i]!)!) < 1e-6, `${images[i]}: served ${p.score} vs predict ${cliScores.get(images[i]!)}`);
    assert.equal(p.decision, p.score > cfg.thresholds.image ? 'anomalous' : 'normal');
    assert.equal(p.normalizedScore, p.score / cfg.thresholds.image);
  });
  // All at once, as multipart for half of them: grouped into forward passes of > 1 image, the same scores to within one
  // float32 rounding step (TensorFlow's CPU convolutions are bit-identical across batch sizes on some CPUs and builds,
  // not all: 9.4e-8 relative seen on AMD EPYC with the TF 2.21 wheel build) and the same decisions.
  const together = await Promise.all(images.map(async (f, i) => {
    let r: Response;
    if (i % 2) {
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(readFileSync(f))], { type: 'image/png' }), path.basename(f));
      r = await fetch(`${s.url}/v1/models/widget-tiny/predict`, { method: 'POST', body: form });
    } else r = await post(s, readFileSync(f));
    assert.equal(r.status, 200);
    return (await r.json()) as Prediction;
  }));
  const maxBatch = Math.max(...together.map((p) => p.batchSize));
  t.diagnostic(`${images.length} concurrent requests: forward passes of up to ${maxBatch} images`);
  assert.ok(maxBatch > 1, 'concurrent requests were batched');
  together.forEach((p, i) => {
    assert.ok(Math.abs(p.score - single[i]!.score) <= 1e-6 * Math.abs(single[i]!.score), `${images[i]}: batched ${p.score} vs batch-1 ${single[i]!.score}`);
    assert.equal(p.decision, single[i]!.decision);
  });

  // Maps: 16-bit PNG at model resolution, overlay at the image's size.
  const m16 = (await (await post(s, readFileSync(images[5]!), 'image/png', '?map=png16')).json()) as Prediction;
  const meta16 = await sharp(Buffer.from(m16.map!.base64, 'base64')).metadata();
  assert.deepEqual([m16.map!.format, meta16.width, meta16.height, meta16.depth], ['png16', 64, 64, 'ushort']);
  const ov = (await (await post(s, readFileSync(images[5]!), 'image/png', '?map=overlay')).json()) as Prediction;
  const metaOv = await sharp(Buffer.from(ov.map!.base64, 'base64')).metadata();
  assert.deepEqual([ov.map!.format, metaOv.width, metaOv.height], ['overlay', 72, 64]);

  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  const count = Number(/ntsnet_batch_size_count\{model="widget-tiny"\} (\d+)/.exec(metrics)?.[1]);
  const sum = Number(/ntsnet_batch_size_sum\{model="widget-tiny"\} (\d+)/.exec(metrics)?.[1]);
  assert.ok(sum > count, `batch-size histogram shows batching (sum ${sum}, count ${count})`);
  assert.match(metrics, /ntsnet_http_request_duration_seconds_bucket\{le="[\d.]+",route="\/v1\/models\/:name\/predict"\}/);
  assert.match(metrics, /ntsnet_queue_depth\{model="widget-tiny"\} 0/);
  assert.match(metrics, /ntsnet_process_resident_memory_bytes \d+/);
});

/** A PNG whose header says 50,000 x 50,000 pixels (with a tiny, wrong IDAT). */
function hugePngHeader(): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (b: Buffer): number => { let c = 0xffffffff; for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type: string, body: Buffer): Buffer => {
    const len = Buffer.alloc(4); len.writeUInt32BE(body.length);
    const tb = Buffer.concat([Buffer.from(type, 'latin1'), body]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(tb));
    return Buffer.concat([len, tb, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(50_000, 0); ihdr.writeUInt32BE(50_000, 4); ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0))]);
}

test('serve: the default engine is onnxruntime-node on the exported model.onnx, with predict --engine onnxruntime scores and batch-independent decisions', { timeout: 120_000 }, async (t) => {
  const s = await startServer(loadTf(), { checkpoints: [ckpt], port: 0, maxBatch: 8, maxWaitMs: 30 });
  try {
    const models = (await (await fetch(`${s.url}/v1/models`)).json()) as { models: { engine: string }[] };
    assert.equal(models.models[0]!.engine, 'onnxruntime-node');
    assert.ok(existsSync(path.join(ckpt, 'model.onnx')), 'model.onnx exported next to the weights');
    const p = await run(process.execPath, [cli(), 'predict', path.join(data, 'test'), '--checkpoint', ckpt, '--engine', 'onnxruntime', '--batch-size', '1'], { maxBuffer: 1 << 24, cwd: tmp });
    const ort = new Map(p.stdout.trim().split('\n').slice(1).map((l) => [path.resolve(tmp, l.split('\t')[0]!), Number(l.split('\t')[1])]));
    const single: Prediction[] = [];
    for (const f of images) single.push((await (await post(s, readFileSync(f))).json()) as Prediction);
    single.forEach((q, i) => {
      assert.equal(q.engine, 'onnxruntime-node');
      assert.equal(q.batchSize, 1);
      assert.ok(Math.abs(q.score - ort.get(images[i]!)!) <= 1e-6 * Math.abs(q.score), `${images[i]}: served ${q.score} vs predict --engine onnxruntime ${ort.get(images[i]!)}`);
    });
    const together = await Promise.all(images.map(async (f) => (await (await post(s, readFileSync(f))).json()) as Prediction));
    const maxBatch = Math.max(...together.map((q) => q.batchSize));
    assert.ok(maxBatch > 1, 'concurrent requests were batched');
    let worst = 0;
    together.forEach((q, i) => {
      worst = Math.max(worst, Math.abs(q.score - single[i]!.score) / Math.abs(single[i]!.score));
      assert.equal(q.decision, single[i]!.decision);
    });
    t.diagnostic(`onnxruntime: passes of up to ${maxBatch} images, largest relative score difference to batch 1: ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-6, `batched scores within float32 rounding of batch 1 (got ${worst})`);
  } finally {
    await s.close();
  }
});

test('serve: bad requests get their status and a JSON error naming the fix; the service keeps serving and leaks no tensors', { timeout: 120_000 }, async (t) => {
  const s = guarded!;
  const auth = { authorization: `Bearer ${KEY}` };
  const good = readFileSync(images[0]!);
  const health = async (): Promise<number> => ((await (await fetch(`${s.url}/healthz`)).json()) as { tensors: number }).tensors;
  const ok = await post(s, good, 'image/png', '', auth);
  assert.equal(ok.status, 200);
  const tensors0 = await health();
  assert.ok(tensors0 > 0, 'the served model\'s tensors are counted (inference thread included)');

  const cases: Array<[string, () => Promise<Response>, number, string]> = [
    ['truncated PNG', () => post(s, good.subarray(0, Math.floor(good.length * 0.6)), 'image/png', '', auth), 400, 'undecodable_image'],
    ['not an image', () => post(s, Buffer.from('definitely not an image'), 'image/jpeg', '', auth), 400, 'undecodable_image'],
    ['empty body', () => post(s, Buffer.alloc(0), 'image/png', '', auth), 400, 'empty_body'],
    ['50,000 x 50,000 PNG header', () => post(s, hugePngHeader(), 'image/png', '', auth), 413, 'image_too_large'],
    ['body over the limit', () => post(s, Buffer.concat([good, Buffer.alloc(2 ** 20)]), 'image/png', '', auth), 413, 'body_too_large'],
    ['text/plain body', () => post(s, Buffer.from('hello'), 'text/plain', '', auth), 415, 'unsupported_media_type'],
    ['unknown content type', () => post(s, good, 'application/x-unknown', '', auth), 415, 'unsupported_media_type'],
    ['unknown model', () => fetch(`${s.url}/v1/models/nope/predict`, { method: 'POST', body: new Uint8Array(good), headers: { 'content-type': 'image/png', ...auth } }), 404, 'unknown_model'],
    ['no API key', () => post(s, good), 401, 'missing_api_key'],
    ['wrong API key', () => post(s, good, 'image/png', '', { 'x-api-key': 'wrong' }), 401, 'invalid_api_key'],
    ['bad query parameter', () => post(s, good, 'image/png', '?map=gif', auth), 400, 'invalid_request'],
    ['unknown route', () => fetch(`${s.url}/v2/nothing`), 404, 'not_found'],
  ];
  const table: string[] = [];
  for (const [what, send, status, code] of cases) {
    const r = await send();
    const body = (await r.json()) as ErrorBody;
    table.push(`${what} -> ${r.status} ${body.code}`);
    assert.equal(r.status, status, `${what}: ${JSON.stringify(body)}`);
    assert.equal(body.statusCode, status);
    assert.equal(body.code, code, `${what}: ${body.message}`);
    assert.ok(body.message.length > 20, `${what}: message says what to do`);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  }
  assert.match(((await (await post(s, hugePngHeader(), 'image/png', '', auth)).json()) as ErrorBody).message, /50000 x 50000|50,000|--max-pixels/);
  // Queue full: --max-queue 2 and a 400 ms batching window, 6 requests at once: 2 admitted, 4 refused at once.
  const burst = await Promise.all(Array.from({ length: 6 }, () => post(s, good, 'image/png', '', auth)));
  const statuses = burst.map((r) => r.status).sort();
  table.push(`queue full (6 at once, --max-queue 2) -> ${statuses.join(',')}`);
  assert.deepEqual(statuses, [200, 200, 503, 503, 503, 503]);
  for (const r of burst.filter((x) => x.status === 503)) {
    assert.equal(r.headers.get('retry-after'), '1');
    assert.equal(((await r.json()) as ErrorBody).code, 'queue_full');
  }
  t.diagnostic(table.join('; '));
  // Still serving, with the same result; no tensor left behind by any of the above.
  const again = await post(s, good, 'image/png', '', auth);
  assert.equal(again.status, 200);
  for (let i = 0; i < 10; i++) assert.equal((await post(s, good, 'image/png', '?map=overlay', auth)).status, 200);
  assert.equal(await health(), tensors0, 'tf.memory().numTensors unchanged across requests');
  const m = await (await fetch(`${s.url}/metrics`)).text();
  assert.equal(Number(/^ntsnet_tf_tensors (\d+)$/m.exec(m)?.[1]), tensors0);
  assert.match(m, /ntsnet_errors_total\{code="queue_full"\} 4/);
  assert.equal((await fetch(`${s.url}/healthz`)).status, 200, '/healthz needs no key');
  assert.equal((await fetch(`${s.url}/v1/models`)).status, 401);
});

test('serve: a request that cannot reach the model within --timeout-ms gets 504 and a JSON error', { timeout: 60_000 }, async () => {
  const slow = await startServer(loadTf(), { checkpoints: [ckpt], port: 0, maxBatch: 8, maxWaitMs: 1500, timeoutMs: 300 });
  try {
    const t0 = Date.now();
    const r = await post(slow, readFileSync(images[0]!));
    const body = (await r.json()) as ErrorBody;
    assert.equal(r.status, 504, JSON.stringify(body));
    assert.equal(body.code, 'timeout');
    assert.match(body.message, /--timeout-ms 300/);
    assert.ok(Date.now() - t0 < 1400, 'answered at the timeout, not after the batching window');
    assert.equal((await (await fetch(`${slow.url}/healthz`)).json() as { status: string }).status, 'ok');
  } finally {
    await slow.close();
  }
});

test('serve: a request whose client disconnects while it waits leaves the queue unscored and frees its admission slot only then', { timeout: 60_000 }, async () => {
  const slow = await startServer(loadTf(), { checkpoints: [ckpt], port: 0, maxBatch: 8, maxWaitMs: 1500 });
  try {
    const metric = async (re: RegExp): Promise<number> => Number(re.exec(await (await fetch(`${slow.url}/metrics`)).text())?.[1] ?? 0);
    const ctl = new AbortController();
    const gone = post(slow, readFileSync(images[0]!)).catch(() => 'aborted');
    const req = fetch(`${slow.url}/v1/models/widget-tiny/predict`, { method: 'POST', body: new Uint8Array(readFileSync(images[1]!)), headers: { 'content-type': 'image/png' }, signal: ctl.signal });
    await new Promise((r) => setTimeout(r, 400)); // both wait for the 1500 ms batching window
    assert.equal(await metric(/^ntsnet_requests_in_flight\{model="widget-tiny"\} (\d+)$/m), 2);
    ctl.abort();
    await assert.rejects(req);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await metric(/^ntsnet_requests_in_flight\{model="widget-tiny"\} (\d+)$/m), 1, 'the disconnected request left the queue');
    assert.equal(await metric(/^ntsnet_queue_depth\{model="widget-tiny"\} (\d+)$/m), 1);
    const kept = await gone;
    assert.notEqual(kept, 'aborted');
    assert.equal((kept as Response).status, 200);
    assert.equal(((await (kept as Response).json()) as Prediction).batchSize, 1, 'the batch held only the request still connected');
    assert.equal(await metric(/^ntsnet_errors_total\{code="client_closed_request"\} (\d+)$/m), 1);
    assert.equal(await metric(/^ntsnet_batch_size_sum\{model="widget-tiny"\} (\d+)$/m), 1, 'one image was scored');
    assert.equal(await metric(/^ntsnet_requests_in_flight\{model="widget-tiny"\} (\d+)$/m), 0);
  } finally {
    await slow.close();
  }
});

test('serve: a stalled upload gives its queue slot back after --timeout-ms with a 408 JSON error; malformed multipart and JSON bodies get 400 / 415', { timeout: 60_000 }, async () => {
  const s = await startServer(loadTf(), { checkpoints: [ckpt], port: 0, maxBatch: 8, maxWaitMs: 5, maxQueue: 1, timeoutMs: 1000, engine: 'tfjs' });
  try {
    const { port } = new URL(s.url);
    const sock = connect(Number(port), '127.0.0.1');
    let answer = '';
    sock.on('data', (d: Buffer) => void (answer += d.toString()));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write('POST /v1/models/widget-tiny/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n\x89PNG');
    await new Promise((r) => setTimeout(r, 300));
    const blocked = await post(s, readFileSync(images[0]!));
    assert.equal(blocked.status, 503, 'the stalled upload holds the only slot');
    await closed;
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.match(answer, /"code":"upload_timeout"/);
    assert.match(answer, /--timeout-ms/);
    const ok = await post(s, readFileSync(images[0]!));
    assert.equal(ok.status, 200, 'the slot was given back');
    const badMultipart = await fetch(`${s.url}/v1/models/widget-tiny/predict`, { method: 'POST', body: '--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc', headers: { 'content-type': 'multipart/form-data; boundary=zzz' } });
    assert.equal(badMultipart.status, 400);
    assert.equal(((await badMultipart.json()) as ErrorBody).code, 'bad_multipart');
    const noBoundary = await fetch(`${s.url}/v1/models/widget-tiny/predict`, { method: 'POST', body: 'abc', headers: { 'content-type': 'multipart/form-data' } });
    assert.equal(noBoundary.status, 400);
    const json = await post(s, readFileSync(images[0]!), 'application/json');
    assert.equal(json.status, 415);
    assert.equal(((await json.json()) as ErrorBody).code, 'unsupported_media_type');
  } finally {
    await s.close();
  }
});

test('serve: /openapi.json documents the routes, the image body and the error statuses', { timeout: 30_000 }, async () => {
  const doc = (await (await fetch(`${fast!.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> }>> };
  assert.match(doc.openapi, /^3\./);
  for (const p of ['/v1/models', '/v1/models/{name}/predict', '/healthz', '/readyz', '/metrics']) assert.ok(doc.paths[p], `${p} documented`);
  const post = doc.paths['/v1/models/{name}/predict']!.post!;
  assert.ok(post.requestBody!.content['image/png'] && post.requestBody!.content['multipart/form-data']);
  for (const c of ['200', '400', '401', '404', '413', '415', '503', '504']) assert.ok(post.responses[c], `status ${c} documented`);
});

test('serve: SIGTERM lets the in-flight request finish, then the process exits 0', { timeout: 90_000 }, async () => {
  const child: ChildProcess = spawn(process.execPath, [cli(), 'serve', '--checkpoint', ckpt, '--port', '0', '--max-wait-ms', '1500'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited early (${code}): ${err}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
  const inflight = fetch(`${url}/v1/models/widget-tiny/predict`, { method: 'POST', body: new Uint8Array(readFileSync(images[4]!)), headers: { 'content-type': 'image/png' } });
  await new Promise((r) => setTimeout(r, 400)); // the request now waits in the 1.5 s batching window
  child.kill('SIGTERM');
  // Draining (--drain-ms, default 2000): still listening, /readyz and new requests answer 503 for the load balancer.
  await new Promise((r) => setTimeout(r, 300));
  const ready = await fetch(`${url}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal(((await ready.json()) as ErrorBody).code, 'shutting_down');
  const late = await fetch(`${url}/v1/models/widget-tiny/predict`, { method: 'POST', body: new Uint8Array(readFileSync(images[4]!)), headers: { 'content-type': 'image/png' } });
  assert.equal(late.status, 503);
  assert.equal(((await late.json()) as ErrorBody).code, 'shutting_down');
  const r = await inflight;
  assert.equal(r.status, 200);
  const p = (await r.json()) as Prediction;
  assert.ok(Math.abs(p.score - cliScores.get(images[4]!)!) < 1e-6, `score ${p.score} vs predict ${cliScores.get(images[4]!)}`);
  assert.equal(await exited, 0);
  assert.match(err, /SIGTERM: draining for 2000 ms/);
  await assert.rejects(fetch(`${url}/healthz`), 'no longer listening');
});

test('serve: the page at / scores a dropped image in headless Chromium', { timeout: 120_000 }, async (t) => {
  const missing = chromiumMissing();
  if (missing) {
    t.skip(missing);
    return;
  }
  const s = fast!;
  const file = images[6]!; // a defective image
  const expected = (await (await post(s, readFileSync(file))).json()) as Prediction;
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
    await page.goto(`${s.url}/`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30_000 });
    assert.equal(await page.inputValue('#model'), 'widget-tiny');
    // Drop the file onto the drop zone (a real DataTransfer with a File, as a drag from the desktop delivers it).
    const dt = await page.evaluateHandle(({ b64, name }) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const d = new DataTransfer();
      d.items.add(new File([bytes], name, { type: 'image/png' }));
      return d;
    }, { b64: readFileSync(file).toString('base64'), name: path.basename(file) });
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
    await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 });
    assert.equal(await page.textContent('#decision'), expected.decision);
    assert.equal(await page.textContent('#score'), expected.score.toFixed(5));
    const size = await page.evaluate(() => { const i = document.getElementById('overlay') as HTMLImageElement; return [i.naturalWidth, i.naturalHeight]; });
    assert.deepEqual(size, [72, 64], 'overlay shown at the image size');
    t.diagnostic(`page: ${await page.textContent('#status')}`);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});
