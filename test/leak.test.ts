/**
 * Tensor-leak test: after a warm-up step (which creates the optimizer's momentum slots), the number of live tensors
 * must not change across further NTSNet.trainStep, predict (outputs disposed) and evalLoss calls.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import { loadTf } from '../src/backend/index.js';
import { DEFAULT_MODEL_CONFIG, type ModelConfig } from '../src/model/config.js';
import { NTSNet } from '../src/model/ntsnet.js';

const tf = loadTf();

for (const [studentBlock, teacherNorm] of [['cot', 'eman'], ['basic', 'eman'], ['basic', 'self_ema']] as const) {
  describe(`no tensor leaks (student ${studentBlock}, teacher ${teacherNorm})`, () => {
    test('trainStep, predict and evalLoss keep tf.memory().numTensors constant', () => {
      const cfg: ModelConfig = { ...DEFAULT_MODEL_CONFIG, imageSize: 64, studentBlock, teacherNorm };
      const net = NTSNet.create(tf, cfg, 'random', 1);
      const opt = tf.train.momentum(0.01, 0.9);
      const x = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', 5) as Tensor4D;
      const opts = { weightDecay: 1e-4, lossReduction: 'sum' as const };
      try {
        const nb = tf.memory().numTensors;
        net.trainStep(x, opt, opts); // warm-up: creates the momentum accumulators
        const n0 = tf.memory().numTensors;
        const b0 = tf.memory().numBytes;
        assert.equal(n0, nb + net.trainableVariables().length, 'the warm-up step adds exactly one momentum slot per trainable variable');
        const counts: number[] = [];
        for (let i = 0; i < 3; i++) {
          const loss = net.trainStep(x, opt, opts);
          assert.ok(Number.isFinite(loss));
          counts.push(tf.memory().numTensors);
        }
        for (let i = 0; i < 2; i++) {
          const p = net.predict(x);
          assert.deepEqual(p.maps.shape, [2, 64, 64]);
          assert.deepEqual(p.scores.shape, [2]);
          assert.equal(tf.memory().numTensors, n0 + 2, 'predict returns exactly two tensors');
          p.maps.dispose();
          p.scores.dispose();
          counts.push(tf.memory().numTensors);
        }
        assert.ok(Number.isFinite(net.evalLoss(x)));
        counts.push(tf.memory().numTensors);
        net.trainStep(x, opt, opts);
        counts.push(tf.memory().numTensors);
        console.log(`leak ${studentBlock}: numTensors after warm-up ${n0}, then ${counts.join(', ')}`);
        assert.deepEqual(counts, counts.map(() => n0));
        assert.equal(tf.memory().numBytes, b0);
      } finally {
        x.dispose();
        opt.dispose();
        net.dispose();
      }
    });
  });
}
