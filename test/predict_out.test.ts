/**
 * `predict --out` never mixes runs or overwrites a user's files unasked: a lock against a concurrent predict into the
 * same folder, a foreign non-empty folder refused, another predict run's folder refused unless --force (which removes
 * that run's files so no stale map is left). Real processes and files.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli, startCli, tinyCheckpoint } from './cli_helpers.js';
import { makeTempDir, writeStripedImage } from './helpers.js';

test('predict --out: concurrent run refused by the lock; foreign or other-run folders refused; --force replaces the other run cleanly', { timeout: 240_000 }, async () => {
  const { checkpoint } = await tinyCheckpoint();
  const { checkpoint: other } = await tinyCheckpoint(['--seed', '7']);
  const many = path.join(makeTempDir('many'), 'parts');
  for (let i = 0; i < 60; i++) await writeStripedImage(path.join(many, `p${String(i).padStart(2, '0')}.png`), i % 7, { width: 64, height: 64 });
  const few = path.join(makeTempDir('few'), 'parts');
  for (let i = 0; i < 3; i++) await writeStripedImage(path.join(few, `q${i}.png`), i, { width: 40, height: 40 });

  // 1. Two predicts into one folder: the second stops at once, naming the other process; the first finishes.
  const out = path.join(makeTempDir('pout'), 'o');
  // --engine tfjs: the default engine choice times both engines first, which would let the first run finish early.
  const first = startCli(['predict', many, '--checkpoint', checkpoint, '--out', out, '--batch-size', '1', '--engine', 'tfjs']);
  await first.waitFor(/^p00\.png|p00\.png/m, 120_000); // it holds the lock once it scores
  const second = runCli(['predict', few, '--checkpoint', other, '--out', out, '--engine', 'tfjs']);
  assert.equal(second.status, 1, second.stderr);
  assert.match(second.stderr, /in use by another ntsnet predict \(process \d+/);
  assert.equal((await first.done).status, 0, first.out.stderr);
  assert.ok(!existsSync(path.join(out, '.ntsnet.lock')), 'lock released');
  const json = JSON.parse(readFileSync(path.join(out, 'predictions.json'), 'utf8')) as { counts: { images: number } };
  assert.equal(json.counts.images, 60);

  // 2. Another run (other checkpoint, other input) into the finished folder: refused, nothing touched.
  const before = readdirSync(out).sort();
  const again = runCli(['predict', few, '--checkpoint', other, '--out', out]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /holds the output of another 'ntsnet predict' run .* pass --force/);
  assert.deepEqual(readdirSync(out).sort(), before);

  // 3. --force: the earlier run's maps are gone, only the new run's files (and nothing stale) remain.
  const forced = runCli(['predict', few, '--checkpoint', other, '--out', out, '--force']);
  assert.equal(forced.status, 0, forced.stderr);
  const left = readdirSync(out);
  const stale = left.filter((f) => /^p\d/.test(f));
  assert.deepEqual(stale, [], 'no file of the first run is left');
  assert.equal(left.filter((f) => f.endsWith('_map.png')).length, 3);

  // 4. A user's own non-empty folder: refused, the user's files intact; --force writes beside them.
  const mine = path.join(makeTempDir('mine'), 'results');
  mkdirSync(mine, { recursive: true });
  writeFileSync(path.join(mine, 'predictions.csv'), 'my own spreadsheet\n');
  const foreign = runCli(['predict', few, '--checkpoint', checkpoint, '--out', mine]);
  assert.equal(foreign.status, 1);
  assert.match(foreign.stderr, /is not empty \(1 entry, e\.g\. predictions\.csv\) and is not the output of an earlier 'ntsnet predict'/);
  assert.equal(readFileSync(path.join(mine, 'predictions.csv'), 'utf8'), 'my own spreadsheet\n');

  // 5. The same run again resumes in place (no refusal), and --no-resume redoes it in place.
  assert.equal(runCli(['predict', few, '--checkpoint', other, '--out', out]).status, 0);
  const redo = runCli(['predict', few, '--checkpoint', other, '--out', out, '--no-resume']);
  assert.equal(redo.status, 0, redo.stderr);
});
