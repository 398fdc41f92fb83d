/**
 * Degenerate-detector checks (engine/health.ts): near-constant scores and anomaly-map maxima on the image border.
 * Unit cases on constructed maps, then real CLI runs on MVTec AD bottle (64 px, 3 epochs): a random teacher with the
 * literal EMAN reading (teacher statistics towards the student's, momentum 0.5 so that the drift shows in 3 epochs)
 * is flagged on the terminal, in config.json, results.json, metrics.md and the report; the ImageNet trunk with frozen
 * statistics is not. The CLI runs skip with a message where ../shared is absent.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { assessDetector, borderMaximaFraction } from '../src/engine/health.js';
import { makeTempDir, repoRoot, sharedDataPath, sharedWeightsPath } from './helpers.js';

const size = 32, hw = size * size;
/** `n` maps, each zero but one peak at (x, y) of value `peak[i]`. */
function peaks(n: number, at: (i: number) => [number, number], peak: (i: number) => number): { scores: Float32Array; maps: Float32Array } {
  const maps = new Float32Array(n * hw), scores = new Float32Array(n);
  for (let i = 0; i < n; i++) { const [x, y] = at(i); maps[i * hw + y * size + x] = peak(i); scores[i] = peak(i); }
  return { scores, maps };
}

test('assessDetector: constant scores and border maxima are flagged, a varied interior peak is not', () => {
  const ok = peaks(20, (i) => [8 + (i % 16), 8 + ((i * 7) % 16)], (i) => 1 + 0.1 * i);
  const h = assessDetector(ok.scores, ok.maps, size, 'validation', { teacherNorm: 'frozen_bn' }, { imagenet: true, form: 'imagenet-trunk' });
  assert.equal(h.degenerate, false, h.problems.join('\n'));
  assert.equal(h.borderFraction, 0);

  const flat = peaks(20, (i) => [8 + (i % 16), 10], () => 2.5);
  const hf = assessDetector(flat.scores, flat.maps, size, 'validation', { teacherNorm: 'eman' }, { imagenet: false, form: 'random' });
  assert.equal(hf.degenerate, true);
  assert.match(hf.problems.join('\n'), /near-constant scores[\s\S]*RANDOM ResNet18[\s\S]*teacher-norm eman/);

  const edge = peaks(20, (i) => [i % 2 ? 0 : size - 1, (i * 5) % size], (i) => 1 + 0.1 * i);
  const he = assessDetector(edge.scores, edge.maps, size, 'test', { teacherNorm: 'self_ema' }, { imagenet: true, form: 'imagenet-trunk' });
  assert.equal(he.degenerate, true);
  assert.equal(he.borderFraction, 1);
  assert.match(he.problems.join('\n'), /map maxima on the border: for 100 % of the test images/);
  assert.equal(borderMaximaFraction(edge.maps, 20, size, 2), 1);

  // Too few images to judge: no verdict either way.
  const few = peaks(3, () => [0, 0], () => 1);
  assert.equal(assessDetector(few.scores, few.maps, size, 'validation', { teacherNorm: 'eman' }).degenerate, false);
});

const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
function ntsnet(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli(), ...args], { maxBuffer: 1 << 24, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const BOTTLE = sharedDataPath('mvtec_ad', 'bottle');
const TRUNK = sharedWeightsPath('resnet18-imagenet-trunk.safetensors');
const common = ['--preset', 'cpu', '--epochs', '3', '--image-size', '64', '--student-block', 'basic', '--test'];

test('a random teacher with literal EMAN is flagged as degenerate everywhere', { skip: BOTTLE ? false : 'shared data mvtec_ad/bottle not found; skipping' }, async () => {
  const out = path.join(makeTempDir('degen'), 'run');
  // Momentum 0: the teacher takes the student's statistics outright at every step, the literal reading at its
  // strongest, so that 3 short epochs collapse it on any CPU (with 0.5 the collapse depended on the machine's
  // rounding: on an AVX2-only machine that model still reached test image / pixel AUROC 64.5 / 78.2 and was rightly
  // not flagged; with 0 it scores 48.9 / 56.9 there).
  const r = await ntsnet(['fit', '--data', BOTTLE!, '--out', out, '--teacher', 'random', '--teacher-norm', 'eman', '--eman-momentum', '0', ...common]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /WARNING: DEGENERATE DETECTOR/);
  const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as { health: { degenerate: boolean; problems: string[] } };
  assert.equal(cfg.health.degenerate, true);
  assert.match(cfg.health.problems.join('\n'), /Likely cause: .*RANDOM ResNet18.*teacher-norm eman/);
  const res = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as { degenerate: boolean };
  assert.equal(res.degenerate, true);
  assert.match(readFileSync(path.join(out, 'metrics.md'), 'utf8'), /WARNING: this model does not detect defects/);
  const rep = await ntsnet(['report', out]);
  assert.equal(rep.code, 0, rep.stderr);
  assert.match(readFileSync(path.join(out, 'report.html'), 'utf8'), /id="degenerate"[\s\S]*does not detect defects/);
});

test('the ImageNet trunk with frozen statistics is not flagged', { skip: BOTTLE && TRUNK ? false : 'shared data or ../shared/weights not found; skipping' }, async () => {
  const out = path.join(makeTempDir('healthy'), 'run');
  const r = await ntsnet(['fit', '--data', BOTTLE!, '--out', out, '--teacher', 'imagenet', '--teacher-weights', TRUNK!, '--teacher-norm', 'frozen_bn', ...common]);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /DEGENERATE/);
  const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as { health: { degenerate: boolean }; teacher: { form: string; imagenet: boolean }; expectedDetection: { images: number; imageAuroc: number } };
  assert.equal(cfg.health.degenerate, false);
  // The label-free expected-detection figure: synthetic defects in the 21 validation images are found.
  assert.equal(cfg.expectedDetection.images, 21);
  assert.ok(cfg.expectedDetection.imageAuroc >= 0.9, `synthetic-defect image AUROC ${cfg.expectedDetection.imageAuroc}`);
  assert.match(r.stderr, /expected detection \(synthetic defects in 21 validation images/);
  assert.equal(cfg.teacher.form, 'imagenet-trunk');
  const res = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as { degenerate: boolean; results: { imageAuroc: number }[] };
  assert.equal(res.degenerate, false);
  assert.doesNotMatch(readFileSync(path.join(out, 'metrics.md'), 'utf8'), /does not detect/);
  assert.match(readFileSync(path.join(out, 'metrics.md'), 'utf8'), /Teacher: ImageNet ResNet18 trunk, BatchNorm re-split/);
});
