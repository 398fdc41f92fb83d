/** The label-free selection rule (src/bench/select.ts): kept only where both synthetic AUROCs rise on every dataset. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labelFreeSelection, type LabelFreeEntry } from '../src/bench/select.js';

const e = (dataset: string, config: string, imageAuroc: number | null, pixelAuroc: number | null): LabelFreeEntry => ({ dataset, config, expected: { images: 20, imageAuroc, pixelAuroc, kinds: ['cutpaste', 'noise'] } });

test('a change is kept only where it raises both synthetic AUROCs on every dataset', () => {
  const rows = [
    e('bottle', 'baseline', 0.98, 0.993), e('mt', 'baseline', 0.933, 0.974),
    e('bottle', 'better', 0.99, 0.995), e('mt', 'better', 0.95, 0.98),
    e('bottle', 'mixed', 0.982, 0.984), e('mt', 'mixed', 0.982, 0.978), // the self_ema pattern: pixel down on bottle
    e('bottle', 'tie', 0.98, 0.995), e('mt', 'tie', 0.95, 0.98),
    e('bottle', 'half', 0.99, 0.995),
    e('bottle', 'nulls', null, 0.999), e('mt', 'nulls', 0.99, 0.999),
  ];
  const v = Object.fromEntries(labelFreeSelection(rows, 'baseline').map((x) => [x.config, x]));
  assert.deepEqual(Object.keys(v), ['better', 'mixed', 'tie', 'half', 'nulls']);
  assert.equal(v.better!.verdict, 'kept');
  assert.equal(v.mixed!.verdict, 'rejected');
  assert.match(v.mixed!.reasons[0]!, /^bottle: image \+0\.2, pixel -0\.9 \(not both higher\)$/);
  assert.equal(v.tie!.verdict, 'rejected', 'a tie is not a gain');
  assert.equal(v.half!.verdict, 'incomplete');
  assert.equal(v.nulls!.verdict, 'incomplete');
});

test('a rejection on one dataset is not undone by a missing figure on another', () => {
  const v = labelFreeSelection([e('a', 'baseline', 0.9, 0.9), e('b', 'baseline', 0.9, 0.9), e('a', 'x', 0.8, 0.95)], 'baseline');
  assert.equal(v[0]!.verdict, 'rejected');
});
