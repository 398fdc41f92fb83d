import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  RESNET18_SAFETENSORS_FILE,
  RESNET18_URL,
  convertToSafetensors,
  downloadVerified,
  isImagenetSha256,
  parsePth,
  readPth,
  readSafetensors,
  readWeightsFile,
  resnet18TrunkShapes,
  resolveResnet18Weights,
  serializeSafetensors,
  sha256File,
  stripCommonPrefixes,
  type RawStateDict,
} from '../src/model/weights/index.js';

// Fixtures are written by scripts/tools/make_pth_fixture.py (torch.save, torch 2.x).
const FIX = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const TINY = join(FIX, 'tiny.pth');
const PYPI = '/tmp/wheels/w/x/my_package/weights.pth';
const IMAGENET_SHA = 'f37072fd' + 'ab'.repeat(28);

let tmp: string;
before(async () => { tmp = await mkdtemp(join(tmpdir(), 'ntsnet-weights-')); });
after(async () => { await rm(tmp, { recursive: true, force: true }); });
const dirOf = async (name: string): Promise<string> => mkdtemp(join(tmp, `${name}-`));

function assertSameState(got: RawStateDict, want: RawStateDict): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [k, w] of want) {
    const g = got.get(k)!;
    assert.deepEqual(g.shape, w.shape, `shape of ${k}`);
    assert.deepEqual(Array.from(g.data), Array.from(w.data), `values of ${k}`);
  }
}

/** A synthetic ResNet18 trunk (up to layer3) state dict with deterministic values. */
function fakeResnet18(prefix = ''): RawStateDict {
  const s: RawStateDict = new Map();
  let i = 0;
  for (const [k, shape] of resnet18TrunkShapes()) {
    const n = shape.reduce((a, b) => a * b, 1);
    s.set(prefix + k, { shape, data: new Float32Array(n).fill((i++ % 7) * 0.25) });
  }
  s.set(prefix + 'fc.weight', { shape: [1000, 512], data: new Float32Array(1000 * 512) });
  return s;
}

describe('readPth', () => {
  test('tiny.pth matches the values torch wrote (views, shared storages, dtypes)', async () => {
    const got = await readPth(TINY);
    const want = await readSafetensors(join(FIX, 'tiny_expected.safetensors'));
    assertSameState(got, want);
    assert.deepEqual(got.get('bn.num_batches_tracked'), { shape: [], data: Float32Array.from([1234]) });
    assert.deepEqual(Array.from(got.get('int.index')!.data), [-3, 0, 7]);
    assert.deepEqual(Array.from(got.get('bool.mask')!.data), [1, 0, 1]);
    assert.deepEqual(got.get('view.transposed')!.shape, [5, 3]);
    assert.deepEqual(Array.from(got.get('shared.a')!.data), [-2, -1.5, -1, -0.5, 0, 0.5]);
  });

  test('reads a {state_dict: ...} checkpoint and skips non-tensor entries', async () => {
    const got = await readPth(join(FIX, 'weights_wrapped.pth'));
    assert.deepEqual([...got.keys()], ['module.a.weight', 'module.b.bias']);
    assert.deepEqual(got.get('module.a.weight')!.shape, [2, 2]);
  });

  test('refuses legacy (pre-1.6) checkpoints with the fix', async () => {
    const path = join(FIX, 'weights_legacy.pth');
    await assert.rejects(readPth(path), (e: Error) => e.message.includes(path) && /legacy/.test(e.message) && /torch>=1\.6/.test(e.message) && /safetensors/.test(e.message));
  });

  test('truncated, garbage and missing files: errors name the file', async () => {
    const buf = await readFile(TINY);
    const cut = join(tmp, 'truncated.pth');
    await writeFile(cut, buf.subarray(0, Math.floor(buf.length / 2)));
    await assert.rejects(readPth(cut), (e: Error) => e.message.startsWith(cut) && /truncated|corrupt/.test(e.message));
    const junk = join(tmp, 'junk.pth');
    await writeFile(junk, Buffer.from('this is not a checkpoint at all'));
    await assert.rejects(readPth(junk), (e: Error) => e.message.includes(junk) && /not a zip/.test(e.message));
    await assert.rejects(readPth(join(tmp, 'nope.pth')), (e: Error) => e.message.includes(join(tmp, 'nope.pth')));
  });

  test('unknown pickle globals and opcodes are named in the error', async () => {
    const buf = Buffer.from(await readFile(TINY));
    const g = buf.indexOf('ccollections\nOrderedDict');
    const badGlobal = Buffer.from(buf);
    badGlobal.write('ccollectionX', g, 'latin1');
    assert.throws(() => parsePth(badGlobal, 'g.pth'), /^Error: g\.pth: .*'collectionX\.OrderedDict'/);
    const badOp = Buffer.from(buf);
    badOp[g] = 0xff;
    assert.throws(() => parsePth(badOp, 'o.pth'), /^Error: o\.pth: .*opcode 0xff/);
  });
});

describe('prefixes and validation', () => {
  test('strips module./backbone./model. only when all keys share them', () => {
    const t = { shape: [1], data: new Float32Array(1) };
    const keys = (s: RawStateDict): string[] => [...stripCommonPrefixes(s).keys()];
    assert.deepEqual(keys(new Map([['module.backbone.a', t], ['module.backbone.b', t]])), ['a', 'b']);
    assert.deepEqual(keys(new Map([['model.a', t], ['model.b', t]])), ['a', 'b']);
    assert.deepEqual(keys(new Map([['backbone.a', t], ['head.b', t]])), ['backbone.a', 'head.b']);
  });

  test('a prefixed trunk resolves; imagenet follows the sha256 prefix', async () => {
    const dir = await dirOf('prefix');
    const plain = join(dir, 'plain.safetensors');
    await writeFile(plain, serializeSafetensors(fakeResnet18('backbone.')));
    const r = await resolveResnet18Weights({ path: plain, onProgress: () => {} });
    assert.equal(r.imagenet, false);
    assert.equal(r.source, plain);
    assert.equal(r.sha256, await sha256File(plain));
    assert.ok(r.state.has('layer3.1.bn2.running_var') && r.state.has('fc.weight'));

    const tagged = join(dir, 'tagged.safetensors');
    await writeFile(tagged, serializeSafetensors(fakeResnet18(), { source_sha256: IMAGENET_SHA }));
    assert.equal((await resolveResnet18Weights({ path: tagged })).imagenet, true);

    assert.equal(isImagenetSha256(IMAGENET_SHA), true);
    assert.equal(isImagenetSha256(IMAGENET_SHA.toUpperCase()), true);
    assert.equal(isImagenetSha256('f37072fd'), false);
    assert.equal(isImagenetSha256('5603fd9a' + 'ab'.repeat(28)), false);
    assert.equal(isImagenetSha256(undefined), false);
  });

  test('missing or misshapen keys: error names the file, the keys and the fix', async () => {
    const s = fakeResnet18();
    s.delete('layer3.1.bn2.running_var');
    s.set('conv1.weight', { shape: [64, 1, 7, 7], data: new Float32Array(64 * 49) });
    const path = join(await dirOf('bad'), 'bad.safetensors');
    await writeFile(path, serializeSafetensors(s));
    await assert.rejects(resolveResnet18Weights({ path }), (e: Error) =>
      e.message.includes(path) && e.message.includes('layer3.1.bn2.running_var') &&
      e.message.includes('conv1.weight [64,1,7,7] (expected [64,3,7,7])') && /Fix:/.test(e.message));
  });
});

describe('resolveResnet18Weights lookup', () => {
  test('finds the converted file in the cache folder', async () => {
    const dir = await dirOf('cache');
    const src = join(dir, 'src.safetensors');
    await writeFile(src, serializeSafetensors(fakeResnet18('module.')));
    await convertToSafetensors(src, join(dir, RESNET18_SAFETENSORS_FILE));
    const r = await resolveResnet18Weights({ cacheDir: dir, download: false });
    assert.equal(r.source, join(dir, RESNET18_SAFETENSORS_FILE));
    assert.equal(r.imagenet, false);
  });

  test('nothing found with download off: error lists where it looked, the URL and the fix', async () => {
    const dir = await dirOf('empty');
    await assert.rejects(resolveResnet18Weights({ cacheDir: dir, download: false }), (e: Error) =>
      e.message.includes(join(dir, 'resnet18-f37072fd.pth')) && e.message.includes(join(dir, RESNET18_SAFETENSORS_FILE)) &&
      e.message.includes(RESNET18_URL) && e.message.includes('--teacher-weights PATH') && e.message.includes('download disabled'));
  });

  test('explicit path that does not exist: error names it', async () => {
    const p = join(tmp, 'missing.pth');
    await assert.rejects(resolveResnet18Weights({ path: p }), (e: Error) => e.message.includes(p) && e.message.includes(RESNET18_URL));
  });
});

describe('conversion and atomic writes', () => {
  test('pth -> safetensors round trip keeps values and records the source sha256', async () => {
    const dir = await dirOf('convert');
    const out = join(dir, 'tiny.safetensors');
    const res = await convertToSafetensors(TINY, out);
    const sha = await sha256File(TINY);
    assert.equal(res.sourceSha256, sha);
    assertSameState(await readSafetensors(out), await readPth(TINY));
    assert.equal((await readWeightsFile(out)).sourceSha256, sha);
    const again = join(dir, 'again.safetensors');
    await convertToSafetensors(out, again);
    assert.equal((await readWeightsFile(again)).sourceSha256, sha, 'source sha256 propagates through re-conversion');
    assert.deepEqual((await readdir(dir)).sort(), ['again.safetensors', 'tiny.safetensors'], 'no temporary files left');
  });

  test('never overwrites the input', async () => {
    const dir = await dirOf('self');
    const p = join(dir, 'w.pth');
    await copyFile(TINY, p);
    const before = await sha256File(p);
    await assert.rejects(convertToSafetensors(p, p), /onto itself/);
    await assert.rejects(convertToSafetensors(p, join(dir, '.', 'w.pth')), /onto itself/);
    assert.equal(await sha256File(p), before);
  });

  describe('downloadVerified (local HTTP server)', () => {
    const body = Buffer.alloc(300_000, 7);
    let server: Server;
    let base: string;
    before(async () => {
      server = createServer((req, res) => {
        if (req.url === '/file') { res.writeHead(200, { 'content-length': body.length }); res.end(body); } else { res.writeHead(404); res.end(); }
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((r) => server.close(() => r())));

    test('good hash: file renamed into place, nothing else left', async () => {
      const dir = await dirOf('dl-ok');
      const { createHash } = await import('node:crypto');
      const want = createHash('sha256').update(body).digest('hex');
      const msgs: string[] = [];
      const sha = await downloadVerified(`${base}/file`, join(dir, 'w.pth'), want.slice(0, 8), (m) => msgs.push(m));
      assert.equal(sha, want);
      assert.deepEqual(await readdir(dir), ['w.pth']);
      assert.ok(msgs.length > 0);
    });

    test('wrong hash or HTTP error: rejected and no file left', async () => {
      const dir = await dirOf('dl-bad');
      await assert.rejects(downloadVerified(`${base}/file`, join(dir, 'w.pth'), 'f37072fd'), /expected it to start with f37072fd/);
      await assert.rejects(downloadVerified(`${base}/missing`, join(dir, 'w.pth'), 'f37072fd'), /HTTP 404/);
      assert.deepEqual(await readdir(dir), []);
    });
  });
});

describe('realistic checkpoint', () => {
  const reason = existsSync(PYPI) ? false : `${PYPI} not present (unpack the dmytro-shapovalov-brach-assignment-2026 wheel there to run this test)`;
  test('PyPI weights.pth (44 MB ResNet18): values match those dumped by Python; not ImageNet', { skip: reason }, async () => {
    const ref = JSON.parse(await readFile(join(FIX, 'weights_pypi_expected.json'), 'utf8')) as {
      sha256: string; num_tensors: number; tensors: Record<string, { shape: number[]; first: number[]; sum: number }>;
    };
    const raw = await readPth(PYPI);
    assert.equal(raw.size, ref.num_tensors);
    for (const [k, v] of Object.entries(ref.tensors)) {
      const t = raw.get(k)!;
      assert.deepEqual(t.shape, v.shape, k);
      assert.deepEqual(Array.from(t.data.subarray(0, 8)), v.first.map((x) => Math.fround(x)), k);
      const sum = t.data.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - v.sum) <= 1e-4 * Math.max(1, Math.abs(v.sum)), `${k}: sum ${sum} vs ${v.sum}`);
    }
    const warnings: string[] = [];
    const r = await resolveResnet18Weights({ path: PYPI, onProgress: (m) => warnings.push(m) });
    assert.equal(r.sha256, ref.sha256);
    assert.equal(r.imagenet, false);
    assert.deepEqual(r.state.get('fc.weight')!.shape, [10, 512]);
    assert.ok(warnings.some((w) => /not torchvision's ResNet18 IMAGENET1K_V1/.test(w)));
  });
});
