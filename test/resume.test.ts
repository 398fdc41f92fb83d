/**
 * Issue 13, item 5: an interrupted `fit` (real SIGINT, real SIGKILL) leaves a checkpoint marked incomplete in
 * config.json; `test` / `predict` / `report` warn about it; a rerun points to --resume; `fit --resume` continues from
 * the last finished epoch with the optimiser state and gives the same weights as an uninterrupted run (same seed).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { makeTempDir } from './helpers.js';
import { FAST_FIT, runCli, startCli, tinyCategory } from './cli_helpers.js';

interface Cfg { weightsSha256: string; bestEpoch: number; thresholds: { image: number; pixel: number }; training: { status: string; epochsDone: number; epochs: number } }
const cfgOf = (dir: string): Cfg => JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Cfg;
const FLAGS = [...FAST_FIT, '--epochs', '5', '--optimizer', 'sgd'];

test('SIGINT and SIGKILL during fit: marked incomplete, warned about, resumed to the same weights as an uninterrupted run', { timeout: 240_000 }, async () => {
  const data = await tinyCategory(24);
  const base = makeTempDir('resume');
  const full = path.join(base, 'full');
  const u = runCli(['fit', '--data', data, '--out', full, ...FLAGS]);
  assert.equal(u.status, 0, u.stderr);
  const ref = cfgOf(full);
  assert.equal(ref.training.status, 'complete');
  assert.ok(!existsSync(path.join(full, 'resume.safetensors')), 'no resume state after a complete run');

  for (const sig of ['SIGINT', 'SIGKILL'] as const) {
    const out = path.join(base, sig);
    const run = startCli(['fit', '--data', data, '--out', out, ...FLAGS]);
    await run.waitFor(/^epoch 2\/5 /m, 120_000);
    run.child.kill(sig);
    const end = await run.done;
    const c = cfgOf(out);
    // SIGINT stops after the current batch (epoch 2 is recorded); SIGKILL may land before epoch 2's state is written.
    assert.ok(c.training.epochsDone >= (sig === 'SIGINT' ? 2 : 1) && c.training.epochsDone < 5, `${sig}: stopped early (${c.training.epochsDone} epochs)`);
    if (sig === 'SIGINT') {
      assert.equal(end.status, 130, run.out.stderr);
      assert.equal(c.training.status, 'interrupted');
      assert.match(run.out.stderr, new RegExp(`Training interrupted after epoch ${c.training.epochsDone} of 5: .*fit --resume`));
    } else {
      assert.equal(end.signal, 'SIGKILL');
      assert.equal(c.training.status, 'running', 'a killed run cannot write; the dead pid says it stopped');
    }
    const why = sig === 'SIGINT' ? 'was interrupted' : 'stopped \\(the process was killed\\)';
    const warn = new RegExp(`warning: checkpoint ${out} is INCOMPLETE: training ${why} after epoch ${c.training.epochsDone} of 5.*fit --resume`);
    const p = runCli(['predict', path.join(data, 'test', 'good'), '--checkpoint', out]);
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stderr, warn);
    const t = runCli(['test', '--checkpoint', out, '--data', data, '--out', path.join(base, `${sig}-test`)]);
    assert.match(t.stderr, warn);
    // The artefacts carry the state too, not only the terminal.
    const res = JSON.parse(readFileSync(path.join(base, `${sig}-test`, 'results.json'), 'utf8')) as { checkpoint: { training: { status: string; epochsDone: number } } };
    assert.equal(res.checkpoint.training.epochsDone, c.training.epochsDone);
    assert.match(readFileSync(path.join(base, `${sig}-test`, 'metrics.md'), 'utf8'), new RegExp(`the checkpoint is INCOMPLETE: training .* after epoch ${c.training.epochsDone} of 5`));
    // A stale results.json in the checkpoint folder is removed by --resume (it belongs to the epoch-k checkpoint).
    writeFileSync(path.join(out, 'results.json'), readFileSync(path.join(base, `${sig}-test`, 'results.json')));
    const again = runCli(['fit', '--data', data, '--out', out, ...FLAGS]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /holds an INCOMPLETE checkpoint: .*Pass --resume to continue it/);
    // The killed run's lock is stale (its process is gone): the next run takes it over, saying so.
    if (sig === 'SIGKILL') assert.match(again.stderr, /note: taking over the lock .* which no longer runs/);

    const r = runCli(['fit', '--data', data, '--out', out, ...FLAGS, '--resume']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`resuming: epochs 1-${c.training.epochsDone} of 5 done`));
    assert.match(r.stderr, /note: removed results\.json from .*the resumed run replaces the checkpoint they were made with/);
    assert.ok(!existsSync(path.join(out, 'results.json')));
    const got = cfgOf(out);
    assert.equal(got.training.status, 'complete');
    assert.equal(got.bestEpoch, ref.bestEpoch);
    assert.equal(got.weightsSha256, ref.weightsSha256, `${sig}: resumed weights equal the uninterrupted run's`);
    assert.deepEqual(got.thresholds.image, ref.thresholds.image);
    assert.ok(!existsSync(path.join(out, 'resume.safetensors')));
    const p2 = runCli(['predict', path.join(data, 'test', 'good'), '--checkpoint', out]);
    assert.doesNotMatch(p2.stderr, /INCOMPLETE/);
  }
});
