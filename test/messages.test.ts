/**
 * Issue 13, item 7: messages a user can act on. `data check` groups many warnings of one kind (count + first few,
 * --verbose for all); a diverging run says so where it diverges; `data check` and `fit` agree on the minimum number
 * of training images.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { makeMvtecCategory, makeTempDir, writeStripedImage } from './helpers.js';
import { FAST_FIT, runCli, tinyCategory } from './cli_helpers.js';

test('data check on 40 tiny images prints one grouped warning with the count and the first 3 files; --verbose lists all', async () => {
  const root = path.join(makeTempDir('many'), 'small');
  await makeMvtecCategory(root, { train: 4, good: 1, defective: 1, width: 40, height: 40 });
  for (let i = 0; i < 40; i++) await writeStripedImage(path.join(root, 'train', 'good', `tiny${i}.png`), i, { width: 16, height: 16 });
  const r = runCli(['data', 'check', root]);
  assert.equal(r.status, 0, r.stderr);
  const small = r.stdout.split('\n').filter((l) => /smaller than the network minimum/.test(l));
  assert.equal(small.length, 3, r.stdout);
  assert.match(r.stdout, /warning x 40: images smaller than 32 px, e\.g\.:/);
  assert.match(r.stdout, /\.\.\. and 37 more warning\(s\) of this kind \(--verbose lists all/);
  assert.ok(r.stdout.split('\n').length < 40, `short report:\n${r.stdout}`);
  const v = runCli(['data', 'check', root, '--verbose']);
  assert.equal(v.stdout.split('\n').filter((l) => /smaller than the network minimum/.test(l)).length, 40);
});

test('fit --lr 1e6 stops with "Training diverged at epoch N" and the setting to change, not a calibration error', async () => {
  const data = await tinyCategory();
  const r = runCli(['fit', '--data', data, '--out', path.join(makeTempDir('div'), 'run'), ...FAST_FIT, '--lr', '1e6']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /ntsnet: error: Training diverged at epoch 1 of 2: .*The learning rate 1000000 \(sgd\) is too high for this run: lower --lr/);
  assert.doesNotMatch(r.stderr, /calibrate|non-finite score/i);
});

test('one training image (--val-fraction 0): data check and fit both refuse with the same message', async () => {
  const root = path.join(makeTempDir('one'), 'one');
  await makeMvtecCategory(root, { train: 1, good: 1, defective: 1, width: 48, height: 48 });
  const c = runCli(['data', 'check', root, '--val-fraction', '0']);
  assert.equal(c.status, 1, c.stdout);
  const msg = /Only 1 training image\(s\): training needs at least 2 \(BatchNorm\)\. Add normal images, or lower the validation\/test fractions \(--val-fraction 0, --split\)\./;
  assert.match(c.stdout, msg);
  const f = runCli(['fit', '--data', root, '--out', path.join(makeTempDir('one-out'), 'run'), ...FAST_FIT, '--val-fraction', '0']);
  assert.equal(f.status, 1, f.stderr);
  assert.match(f.stderr, msg);
  assert.doesNotMatch(f.stderr, /epoch 1/);
});

test('fit with NTSNET_CACHE_DIR naming a missing folder says which folder and how to fix it', async () => {
  const data = await tinyCategory();
  const missing = path.join(makeTempDir('cache'), 'not-there');
  const r = runCli(['fit', '--data', data, '--out', path.join(makeTempDir('cache-run'), 'run'), ...FAST_FIT], { env: { NTSNET_CACHE_DIR: missing } });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`Cannot create the decoded-image cache in ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\$NTSNET_CACHE_DIR\\): does not exist\\. Create the folder`));
  assert.doesNotMatch(r.stderr, /mkdtemp|    at /);
});
