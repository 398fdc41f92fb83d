/**
 * `ntsnet export --quantize int8` (src/export/quantize.ts, int8.ts): the QDQ graph's structure, onnxruntime's fusion
 * into integer kernels, parity with float32 TF.js on real PNG images (bound below), and its use by `predict --onnx` and
 * `test --engine onnxruntime --onnx`. The teacher is the ImageNet trunk from ../shared/weights when present.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { readOnnxSummary } from '../src/export/index.js';
import { INT8_HEADROOM } from '../src/export/int8.js';
import { cpuTakes8BitWeights, int8CpuProblem } from '../src/export/quantize.js';
import { makeMvtecCategory, makeTempDir, repoRoot, sharedWeightsPath } from './helpers.js';

const run = promisify(execFile);
const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
/** Largest accepted |int8 score - float32 score| / float32 score on the check images (measured: see the diagnostic). */
const SCORE_REL_BOUND = 0.1;

test('int8 export: QDQ graph fused into QLinearConv by onnxruntime, scores within 10 % of float32, usable by predict and test', { timeout: 600_000 }, async (t) => {
  const tmp = makeTempDir('int8');
  const data = await makeMvtecCategory(path.join(tmp, 'widget'), { train: 10, good: 4, defective: 4 });
  const trunk = sharedWeightsPath('resnet18-imagenet-trunk.safetensors');
  if (!trunk) t.diagnostic('../shared/weights/resnet18-imagenet-trunk.safetensors absent: random teacher');
  const ckpt = path.join(tmp, 'run');
  await run(process.execPath, [cli(), 'fit', '--data', data, '--out', ckpt, '--preset', 'tiny', '--epochs', '3', ...(trunk ? ['--teacher-weights', trunk] : [])], { maxBuffer: 1 << 24 });
  const onnx = path.join(tmp, 'int8.onnx');

  await assert.rejects(run(process.execPath, [cli(), 'export', ckpt, '--quantize', 'int8', '--out', onnx]), (e: { stderr: string }) => /--quantize int8 needs --calibration/.test(e.stderr));
  const ex = await run(process.execPath, [cli(), 'export', ckpt, '--quantize', 'int8', '--calibration', path.join(data, 'train', 'good'), '--out', onnx], { maxBuffer: 1 << 24 });
  const bits = cpuTakes8BitWeights() ? 8 : 7;
  assert.match(ex.stdout, new RegExp(`wrote .*int8\\.onnx \\(int8 QDQ, ${bits}-bit weights, .* calibrated on 10 images`), 'default weight bits: 8 where this CPU runs them');
  const m = /max score difference ([\d.]+) % of the score, max map difference ([\d.]+) %/.exec(ex.stdout);
  assert.ok(m, ex.stdout);
  t.diagnostic(`int8 vs float32 TF.js on 8 training images: max score difference ${m[1]} %, max map difference ${m[2]} % of the score`);
  assert.ok(Number(m[1]) / 100 < SCORE_REL_BOUND, `score difference ${m[1]} %`);

  // Structure: every trunk convolution reads DequantizeLinear'd int8 weights; the metadata says how it was calibrated.
  const s = readOnnxSummary(readFileSync(onnx));
  assert.equal(s.ops.BatchNormalization, undefined, 'BatchNorm folded');
  assert.ok((s.ops.QuantizeLinear ?? 0) >= 40 && (s.ops.DequantizeLinear ?? 0) >= 100, JSON.stringify(s.ops));
  const q = JSON.parse(s.metadata['ntsnet.quantization']!) as { calibrationImages: number; activationPoints: number; weightBits: number; headroom: number };
  assert.equal(q.calibrationImages, 10);
  assert.equal(q.weightBits, bits);
  assert.equal(q.headroom, INT8_HEADROOM);
  assert.ok(s.metadata['ntsnet.weights_sha256'], 'bound to the checkpoint like a float32 export');
  // onnxruntime turns the QDQ groups into integer kernels (level "extended" keeps its fusions inspectable).
  const ort = await import('onnxruntime-node');
  const optimized = path.join(tmp, 'int8.opt.onnx');
  const sess = await ort.InferenceSession.create(onnx, { graphOptimizationLevel: 'extended', optimizedModelFilePath: optimized });
  await sess.release();
  const fused = readOnnxSummary(readFileSync(optimized)).ops;
  t.diagnostic(`onnxruntime's fused graph: ${JSON.stringify(fused)}`);
  assert.equal(fused.QLinearConv, 30, 'all 30 trunk convolutions (teacher 15 + student 15) run as QLinearConv');

  // predict --onnx and test --engine onnxruntime --onnx run it; test records the engine and the quantisation.
  const pred = await run(process.execPath, [cli(), 'predict', path.join(data, 'test'), '--checkpoint', ckpt, '--onnx', onnx], { maxBuffer: 1 << 24 });
  assert.equal(pred.stdout.trim().split('\n').length, 9, 'header + 8 images');
  // float32 results in a folder are never resumed as (or mixed with) an int8 run's: the ONNX file is part of the engine.
  const pout = path.join(tmp, 'pred');
  await run(process.execPath, [cli(), 'predict', path.join(data, 'test'), '--checkpoint', ckpt, '--engine', 'onnxruntime', '--out', pout], { maxBuffer: 1 << 24 });
  await assert.rejects(run(process.execPath, [cli(), 'predict', path.join(data, 'test'), '--checkpoint', ckpt, '--onnx', onnx, '--out', pout], { maxBuffer: 1 << 24 }), (e: { stderr: string }) => /holds the output of another 'ntsnet predict' run .*engine \/ ONNX file/.test(e.stderr));
  await run(process.execPath, [cli(), 'predict', path.join(data, 'test'), '--checkpoint', ckpt, '--onnx', onnx, '--out', pout, '--force'], { maxBuffer: 1 << 24 });
  const pj = JSON.parse(readFileSync(path.join(pout, 'predictions.json'), 'utf8')) as { engine?: string; run?: { engine?: string } };
  assert.match(JSON.stringify(pj), new RegExp(`onnxruntime-node on ${onnx.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`), 'predictions.json names the int8 file');
  const out = path.join(tmp, 'eval');
  await run(process.execPath, [cli(), 'test', '--checkpoint', ckpt, '--data', data, '--out', out, '--engine', 'onnxruntime', '--onnx', onnx], { maxBuffer: 1 << 24 });
  const res = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as { engine: { name: string; quantization: { calibrationImages: number } | null }; results: { imageAuroc: number | null }[] };
  assert.equal(res.engine.name, 'onnxruntime-node');
  assert.match(readFileSync(path.join(out, 'metrics.md'), 'utf8'), new RegExp(`Engine: onnxruntime-node on int8\\.onnx \\(int8, ${bits}-bit weights\\)\\.`));
  assert.equal(res.engine.quantization?.calibrationImages, 10);
  assert.ok(res.results[0]!.imageAuroc !== null);

  // 7-bit weights on request (the form every CPU runs correctly), recorded in the file; bad option values refused.
  const f7 = path.join(tmp, 'int8-w7.onnx');
  const ex7 = await run(process.execPath, [cli(), 'export', ckpt, '--quantize', 'int8', '--int8-weights', '7', '--calibration-headroom', '1', '--calibration', path.join(data, 'train', 'good'), '--out', f7], { maxBuffer: 1 << 24 });
  assert.match(ex7.stdout, /7-bit weights/);
  const q7 = JSON.parse(readOnnxSummary(readFileSync(f7)).metadata['ntsnet.quantization']!) as { weightBits: number; headroom: number; scheme: string };
  assert.deepEqual([q7.weightBits, q7.headroom], [7, 1]);
  assert.match(q7.scheme, /7 bits \(\+-63\)/);
  // A graph whose scores move more than --int8-tolerance is removed, not left to make wrong decisions.
  const bad = path.join(tmp, 'tight.onnx');
  await assert.rejects(run(process.execPath, [cli(), 'export', ckpt, '--quantize', 'int8', '--int8-tolerance', '1e-9', '--calibration', path.join(data, 'train', 'good'), '--out', bad], { maxBuffer: 1 << 24 }),
    (e: { stderr: string }) => /scores differ from float32 by up to .* \(more than --int8-tolerance .*\), so .*tight\.onnx was removed/.test(e.stderr));
  assert.ok(!existsSync(bad) && !existsSync(`${bad}.json`), 'the failed int8 file and its sidecar are gone');
  await assert.rejects(run(process.execPath, [cli(), 'export', ckpt, '--quantize', 'int8', '--calibration-headroom', '9', '--calibration', path.join(data, 'train', 'good'), '--out', path.join(tmp, 'x.onnx')]), (e: { stderr: string }) => /--calibration-headroom must be between 1 and 8/.test(e.stderr));
  await assert.rejects(run(process.execPath, [cli(), 'export', ckpt, '--quantize', 'int8', '--calibration', data, '--out', path.join(tmp, 'x.onnx')]), (e: { stderr: string }) => /is a whole dataset folder \(with train\/ and test\/\): give the normal training images only/.test(e.stderr));
  await assert.rejects(run(process.execPath, [cli(), 'export', ckpt, '--format', 'web', '--quantize', 'int8', '--calibration', path.join(data, 'train', 'good'), '--out', path.join(tmp, 'web')]), (e: { stderr: string }) => /--quantize int8 applies to --format onnx only/.test(e.stderr));
  await assert.rejects(run(process.execPath, [cli(), 'export', ckpt, '--quantize', 'int8', '--calibration-headroom', '0.5', '--calibration', path.join(data, 'train', 'good'), '--out', path.join(tmp, 'x.onnx')]), (e: { stderr: string }) => /--calibration-headroom must be between 1 and 8/.test(e.stderr));
  // On a CPU that cannot run 8-bit weights the file is refused when loaded, not scored wrongly.
  assert.equal(int8CpuProblem('f.onnx', 7), undefined);
  if (cpuTakes8BitWeights() === false) assert.match(int8CpuProblem('f.onnx', 8)!, /Re-export it with '--int8-weights 7'/);
  else assert.equal(int8CpuProblem('f.onnx', 8), undefined);

  // A CoT student has no int8 form: refused with the way out.
  const cot = path.join(tmp, 'cot');
  await run(process.execPath, [cli(), 'fit', '--data', data, '--out', cot, '--preset', 'tiny', '--epochs', '1', '--student-block', 'cot', ...(trunk ? ['--teacher-weights', trunk] : [])], { maxBuffer: 1 << 24 });
  await assert.rejects(run(process.execPath, [cli(), 'export', cot, '--quantize', 'int8', '--calibration', path.join(data, 'train', 'good'), '--out', path.join(tmp, 'cot.onnx')]), (e: { stderr: string }) => /int8 export supports the plain student .* export it without --quantize/.test(e.stderr));
});
