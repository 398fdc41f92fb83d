/**
 * fit() with the streamed image cache, per-epoch resume state and the final state marking leaves no tensor behind
 * (issue 13: new code paths of items 5 and 8), and resumes in-process too.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadTf } from '../src/backend/index.js';
import { preset } from '../src/engine/config.js';
import { fit } from '../src/engine/fit.js';
import { makeTempDir } from './helpers.js';
import { tinyCategory } from './cli_helpers.js';

test('fit (streamed images, resume state every epoch, aborted then resumed) leaks no more tensors than a plain fit', async () => {
  const tf = loadTf();
  const data = await tinyCategory(8);
  const c = preset('tiny');
  c.model.studentBlock = 'basic';
  c.model.teacherNorm = 'frozen_bn';
  c.train.epochs = 3;
  const out = path.join(makeTempDir('leak'), 'run');
  // Baseline: a plain complete fit. (It leaves a tensor or two outside this code, e.g. tfjs's momentum
  // optimizer keeps its momentum scalar after dispose(); the new paths must not add any.)
  let before = tf.memory().numTensors;
  await fit(tf, { data, out: path.join(makeTempDir('leak'), 'plain'), config: c, progress: false, log: () => {} });
  const plain = tf.memory().numTensors - before;
  before = tf.memory().numTensors;
  const ac = new AbortController();
  let epochs = 0;
  await assert.rejects(
    fit(tf, { data, out, config: c, signal: ac.signal, progress: false, log: (l) => { if (/^epoch \d\/3 /.test(l) && ++epochs === 1) ac.abort(); } }),
    { name: 'FitInterruptedError' },
  );
  assert.ok(tf.memory().numTensors - before <= plain, `interrupted fit leaves no more tensors than a plain fit (${tf.memory().numTensors - before} vs ${plain})`);
  before = tf.memory().numTensors;
  const r = await fit(tf, { data, out, config: c, resume: true, progress: false, log: () => {} });
  assert.equal(r.meta.training?.status, 'complete');
  assert.ok(tf.memory().numTensors - before <= plain, `resumed fit leaves no more tensors than a plain fit (${tf.memory().numTensors - before} vs ${plain})`);
});
