/**
 * int8 against float32 accuracy (issue 11: image and pixel AUROC within 0.3 points of ntsnet's fp32 TF.js result):
 * per dataset, the default detector trained with the `cpu` benchmark protocol (reused when its checkpoint exists),
 * its int8 exports calibrated on 64 of its own training images (one per --headrooms value; weights of --weight-bits),
 * and the test set scored by tfjs-node fp32, onnxruntime fp32 and onnxruntime int8. Label-free figures beside them:
 * int8 against fp32 mean map / score differences on the held-out normal images and on synthetic defects pasted into
 * them (what the default headroom was chosen by).
 *
 *   npx tsc -p tsconfig.json && node dist/benchmarks/int8-accuracy.js --out DIR --dataset ../shared/data/mvtec_ad/bottle
 *     --dataset ../shared/data/magnetic_tile [--teacher-weights FILE] [--seed 42] [--headrooms 1,1.5,2] [--weight-bits auto|7|8] [--json OUT.json]
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadTf } from '../src/backend/index.js';
import { resolveBenchDatasets } from '../src/bench/datasets.js';
import { epochsFor, protocol } from '../src/bench/protocol.js';
import { applySavedSplit } from '../src/data/folder.js';
import { loadCheckpoint, readCheckpointMeta } from '../src/engine/checkpoint.js';
import { evaluate } from '../src/engine/evaluate.js';
import { fit } from '../src/engine/fit.js';
import { openOnnxFile } from '../src/engine/onnxModel.js';
import { readDataset } from '../src/data/dataset.js';
import { modelToOnnx } from '../src/export/index.js';
import { exportCheckpointInt8, INT8_HEADROOM, int8Parity } from '../src/export/int8.js';
import { defaultInt8WeightBits, type Int8WeightBits } from '../src/export/quantize.js';
import { loadImageSet } from '../src/engine/batches.js';
import { makeSyntheticSet } from '../src/engine/synthetic.js';

const USAGE = 'usage: node dist/benchmarks/int8-accuracy.js --out DIR --dataset DIR [--dataset DIR ...] [--teacher-weights FILE] [--seed 42] [--headrooms 1,1.5,2] [--weight-bits auto|7|8] [--json FILE]';
const fail = (why: string): never => {
  process.stderr.write(`int8-accuracy: ${why}\n${USAGE}\n`);
  process.exit(2);
};
let parsed;
try {
  parsed = parseArgs({ options: { out: { type: 'string' }, dataset: { type: 'string', multiple: true }, 'teacher-weights': { type: 'string' }, seed: { type: 'string', default: '42' }, headrooms: { type: 'string', default: String(INT8_HEADROOM) }, 'weight-bits': { type: 'string', default: 'auto' }, json: { type: 'string' } } });
} catch (e) {
  fail((e as Error).message);
}
const a = parsed!.values;
if (!a.out || !a.dataset?.length) fail('--out and --dataset are required');
if (!/^\d+$/.test(a.seed!)) fail(`--seed must be a non-negative integer, got '${a.seed}'`);
const headrooms = a.headrooms!.split(',').map(Number);
if (headrooms.some((h) => !(h >= 1 && h <= 8))) fail(`--headrooms: each must be a number from 1 to 8, got '${a.headrooms}'`);
if (!['auto', '7', '8'].includes(a['weight-bits']!)) fail(`--weight-bits must be auto, 7 or 8, got '${a['weight-bits']}'`);
const tf = loadTf();
const seed = Number(a.seed);
const proto = protocol('cpu');
const log = (l: string): void => void process.stderr.write(`${l}\n`);
const rows: Record<string, unknown>[] = [];
const outDir = a.out!;
for (const arg of a.dataset!) {
  for (const ds of await resolveBenchDatasets(arg, seed, log)) {
    const dir = path.resolve(outDir, ds.id);
    const ckpt = path.join(dir, 'checkpoint');
    const c = structuredClone(proto.base);
    c.train.seed = seed;
    const split = await readDataset(ds.spec, { valFraction: c.train.valFraction, seed });
    c.train.epochs = epochsFor(proto, split.train.length);
    if (existsSync(path.join(ckpt, 'config.json'))) {
      // A reused checkpoint must be this protocol's (the table compares the default detector as benchmarked).
      const saved = (await readCheckpointMeta(ckpt)).config.model.imageSize;
      if (saved !== c.model.imageSize) fail(`${ckpt} was trained at ${saved} px, not the cpu protocol's ${c.model.imageSize} px: use another --out`);
    } else {
      log(`${ds.id}: training the default detector (${c.model.imageSize} px, ${c.train.epochs} epochs) ...`);
      await fit(tf, { data: ds.spec, out: ckpt, config: c, force: true, teacherWeights: a['teacher-weights'], download: false, log, progress: false });
    }
    const fp32File = path.join(dir, 'model.onnx');
    const { model, meta } = await loadCheckpoint(tf, ckpt);
    try {
      const data = await applySavedSplit(ds.spec, meta.split);
      const calib = path.join(dir, 'calibration');
      await mkdir(calib, { recursive: true });
      // The calibration images are the checkpoint's own training images (a list file of their paths).
      const list = path.join(calib, 'train.txt');
      await writeFile(list, `${data.train.join('\n')}\n`);
      await writeFile(fp32File, modelToOnnx(model));
      const bs = c.train.evalBatchSize;
      const res: Record<string, { imageAuroc: number | null; pixelAuroc: number | null }> = {};
      res['tfjs-node fp32'] = await evaluate(tf, model, data, bs, () => {}, meta.teacher);
      const files: [string, string][] = [['onnxruntime-node fp32', fp32File]];
      for (const h of headrooms) {
        const f = path.join(dir, `model-int8-h${h}.onnx`);
        const bits = a['weight-bits'] === 'auto' ? defaultInt8WeightBits() : (Number(a['weight-bits']) as Int8WeightBits);
        const ex = await exportCheckpointInt8(tf, ckpt, f, f.replace(/\.onnx$/, '.json'), { calibration: list, maxImages: 64, headroom: h, weightBits: bits, log });
        ex.model.dispose();
        files.push([`onnxruntime-node int8 w${bits} h${h}${h === INT8_HEADROOM ? ' (default)' : ''}`, f]);
      }
      // Label-free figures: parity with float32 on the held-out normal images and on synthetic defects pasted into them.
      const val = await loadImageSet(data.val, c.model.imageSize);
      const synth = makeSyntheticSet(val, seed).set.images;
      for (const [name, file] of files) {
        const s = await openOnnxFile(model, file);
        try {
          res[name] = await evaluate(tf, model, data, bs, () => {}, meta.teacher, s.scorer);
          const pn = await int8Parity(tf, model, s.det, val.images), ps = await int8Parity(tf, model, s.det, synth);
          console.log(`${ds.id.padEnd(14)} ${name.padEnd(34)} label-free: normal val mean map diff ${(100 * pn.mapMeanRel).toFixed(2)} %, mean score diff ${(100 * pn.scoreMeanRel).toFixed(2)} %; synthetic defects mean map diff ${(100 * ps.mapMeanRel).toFixed(2)} %, mean score diff ${(100 * ps.scoreMeanRel).toFixed(2)} %`);
        } finally {
          await s.det.dispose();
        }
      }
      const ref = res['tfjs-node fp32']!;
      for (const [engine, r] of Object.entries(res)) {
        const d = (x: number | null, y: number | null): string => (x === null || y === null ? 'n/a' : (100 * (x - y)).toFixed(2));
        const row = { dataset: ds.id, engine, imageAuroc: r.imageAuroc, pixelAuroc: r.pixelAuroc, imageDelta: d(r.imageAuroc, ref.imageAuroc), pixelDelta: d(r.pixelAuroc, ref.pixelAuroc) };
        rows.push(row);
        console.log(`${ds.id.padEnd(14)} ${engine.padEnd(34)} image AUROC ${(100 * (r.imageAuroc ?? NaN)).toFixed(2)} (${row.imageDelta}) pixel AUROC ${(100 * (r.pixelAuroc ?? NaN)).toFixed(2)} (${row.pixelDelta})`);
      }
    } finally {
      model.dispose();
    }
  }
}
if (a.json) await writeFile(a.json, `${JSON.stringify({ seed, protocol: proto.name, rows, measuredAt: new Date().toISOString() }, null, 1)}\n`);
