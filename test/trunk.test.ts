/**
 * The REAL ImageNet teacher (../shared/weights, README there): identification of the three known files by SHA-256,
 * equivalence of ntsnet's layer1..layer3 features with torchvision's resnet18 loaded from the same trunk
 * (scripts/tools/make_trunk_fixture.py, float64 reference), the refusal of the BatchNorm-folded file with a teacher norm
 * that changes the teacher's statistics, and no silent random teacher when no weights are found.
 * Skipped with a message where ../shared/weights is absent.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import { loadTf } from '../src/backend/index.js';
import { DEFAULT_MODEL_CONFIG, type ModelConfig } from '../src/model/config.js';
import { teacherForward, teacherShapes } from '../src/model/networks.js';
import { disposeParams, paramsFromTorch } from '../src/model/params.js';
import { checkTeacherForNorm, resolveResnet18Weights, TRUNK_FILE } from '../src/model/weights/resolve.js';
import { fx, loadFixture, loadJson, maxAbs, maxAbsDiff } from './model_helpers.js';
import { makeTempDir, repoRoot, sharedDataPath, sharedWeightsPath } from './helpers.js';

const RESPLIT = sharedWeightsPath(TRUNK_FILE);
const RESPLIT_PTH = sharedWeightsPath('resnet18-imagenet-trunk.pth');
const FOLDED = sharedWeightsPath('resnet18-imagenet-trunk-bnfolded.safetensors');
const SKIP = !RESPLIT || !RESPLIT_PTH || !FOLDED ? 'shared ImageNet trunk not found (../shared/weights or $NTSNET_SHARED_WEIGHTS); skipping' : false;
const cfg: ModelConfig = { ...DEFAULT_MODEL_CONFIG, imageSize: 128 };
/** Bound on max |ntsnet - torchvision| relative to the layer's max |value| (float32 vs a float64 reference). */
const REL_TOL = 1e-4;

const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
function ntsnet(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli(), ...args], { env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', ...env } }, (err, _o, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr });
    });
  });
}

test('the three shared files are recognised by SHA-256, without the unknown-weights warning', { skip: SKIP }, async () => {
  const said: string[] = [];
  const r = await resolveResnet18Weights({ path: RESPLIT!, download: false, onProgress: (m) => said.push(m) });
  assert.equal(r.identity.form, 'imagenet-trunk');
  assert.equal(r.imagenet, true);
  assert.equal(r.sha256, '45516f2c25137e4a5323eca977b6bfd0b8f9996220b7a84a839b59fe20771054');
  const p = await resolveResnet18Weights({ path: RESPLIT_PTH!, download: false, onProgress: (m) => said.push(m) });
  assert.equal(p.identity.form, 'imagenet-trunk');
  const f = await resolveResnet18Weights({ path: FOLDED!, download: false, onProgress: (m) => said.push(m) });
  assert.equal(f.identity.form, 'imagenet-trunk-bnfolded');
  assert.equal(f.imagenet, true);
  assert.deepEqual(said.filter((m) => /warning/i.test(m)), [], 'no warning for the known ImageNet files');
  // The .pth and the .safetensors hold the same tensors.
  for (const [k, t] of r.state) assert.equal(maxAbsDiff(t.data, p.state.get(k)!.data), 0, k);
});

test('ntsnet teacher features equal torchvision resnet18 with the shared trunk (layer1..3, real image)', { skip: SKIP }, async () => {
  const tf = loadTf();
  const fix = loadFixture('trunk_features.safetensors');
  const meta = loadJson<{ weightsSha256: string; featureMaxAbs: Record<string, number> }>('trunk_features.json');
  assert.equal(meta.weightsSha256, 'cb26164b8330eafe33ad1f5b4a16cabaf530de2e9eb66662cd758bc4f5c67ad7', 'fixture made from the shared .pth');
  const inp = fx(loadFixture('model_teacher.safetensors'), 'input');
  const w = await resolveResnet18Weights({ path: RESPLIT!, download: false });
  const folded = await resolveResnet18Weights({ path: FOLDED!, download: false });
  const params = paramsFromTorch(tf, w.state, teacherShapes(cfg), 'trunk');
  const paramsFolded = paramsFromTorch(tf, folded.state, teacherShapes(cfg), 'folded');
  const before = tf.memory().numTensors;
  const x = tf.tensor4d(inp.data, inp.shape as [number, number, number, number]);
  const feats = teacherForward(tf, params, x, cfg);
  const featsFolded = teacherForward(tf, paramsFolded, x, cfg);
  try {
    for (const [i, f] of feats.entries()) {
      const ref = fx(fix, `layer${i + 1}`);
      assert.deepEqual(f.shape, ref.shape);
      const diff = maxAbsDiff(f, ref.data), scale = maxAbs(ref.data);
      process.stdout.write(`# layer${i + 1}: max |ntsnet - torchvision| = ${diff.toExponential(2)} (max |feature| ${scale.toFixed(3)}; bound ${(REL_TOL * scale).toExponential(2)})\n`);
      assert.ok(diff <= REL_TOL * scale, `layer${i + 1}: ${diff} > ${REL_TOL * scale}`);
      // In evaluation mode the folded form computes the same function (../shared/weights/README.md).
      const dFold = maxAbsDiff(featsFolded[i]! as Tensor4D, ref.data);
      assert.ok(dFold <= 1e-3 * scale, `folded layer${i + 1}: ${dFold}`);
    }
  } finally {
    tf.dispose([x, ...feats, ...featsFolded]);
    disposeParams(params);
    disposeParams(paramsFolded);
  }
  assert.ok(tf.memory().numTensors <= before, 'teacher forward leaks no tensors');
});

test('the BatchNorm-folded trunk is refused with a statistics-changing teacher norm, naming the re-split file', { skip: SKIP }, async () => {
  const f = await resolveResnet18Weights({ path: FOLDED!, download: false });
  for (const norm of ['eman', 'self_ema']) assert.throws(() => checkTeacherForNorm(f.identity, norm), new RegExp(`FOLDED.*--teacher-norm ${norm}[\\s\\S]*${TRUNK_FILE.replace('.', '\\.')}`));
  assert.doesNotThrow(() => checkTeacherForNorm(f.identity, 'frozen_bn'));
  const data = sharedDataPath('mvtec_ad', 'bottle');
  if (!data) return;
  const out = path.join(makeTempDir('folded'), 'run');
  const r = await ntsnet(['fit', '--data', data, '--out', out, '--preset', 'tiny', '--teacher', 'imagenet', '--teacher-weights', FOLDED!, '--teacher-norm', 'self_ema']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /BatchNorm-FOLDED[\s\S]*resnet18-imagenet-trunk\.safetensors/);
  assert.doesNotMatch(r.stderr, /^epoch /m, 'refused before any training');
  assert.equal(existsSync(path.join(out, 'model.safetensors')), false);
});

test('no weights: fit stops with the exact fix instead of training with a random teacher', async () => {
  const tmp = makeTempDir('noweights');
  const data = sharedDataPath('mvtec_ad', 'bottle');
  const root = data ?? tmp;
  const out = path.join(tmp, 'run');
  const r = await ntsnet(['fit', '--data', root, '--out', out, '--preset', 'tiny', '--teacher', 'imagenet', '--no-download'],
    { NTSNET_CACHE: path.join(tmp, 'cache'), NTSNET_TEACHER_WEIGHTS: '' });
  assert.notEqual(r.code, 0);
  if (data) {
    assert.match(r.stderr, /teacher weights not found/i);
    assert.match(r.stderr, /resnet18-imagenet-trunk\.safetensors/);
    assert.match(r.stderr, /--teacher random/);
    assert.doesNotMatch(r.stderr, /^epoch /m);
    assert.equal(existsSync(path.join(out, 'model.safetensors')), false);
  }
});
