import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { aupro, f1Max, labelComponents, proCurve } from '../src/metrics/index.js';
import { Rng } from '../src/util/rng.js';
import { fixturePath } from './helpers.js';

interface AuproCase { name: string; n: number; h: number; w: number; maps: number[]; masks: number[]; aupro: number | null; regions: number }
interface F1Case { name: string; scores: number[]; labels: number[]; f1: number | null; threshold?: number }
const fx = JSON.parse(readFileSync(fixturePath('aupro_f1_cases.json'), 'utf8')) as { sklearn: string; skimage: string; aupro: AuproCase[]; f1: F1Case[] };

test(`aupro matches the brute-force Python reference (skimage ${fx.skimage} labels) on fixed cases`, () => {
  assert.ok(fx.aupro.length >= 5);
  for (const c of fx.aupro) {
    const maps = Float32Array.from(c.maps), masks = Uint8Array.from(c.masks);
    const got = aupro(maps, masks, c.n, c.h, c.w, 0.3);
    if (c.aupro === null) { assert.equal(got, null, c.name); continue; }
    assert.ok(got !== null, c.name);
    assert.ok(Math.abs(got - c.aupro) < 1e-9, `${c.name}: ${got} vs reference ${c.aupro}`);
    assert.equal(proCurve(maps, masks, c.n, c.h, c.w)!.regions, c.regions, `${c.name}: region count`);
  }
});

test(`f1Max matches sklearn ${fx.sklearn} precision_recall_curve on fixed cases`, () => {
  for (const c of fx.f1) {
    const got = f1Max(c.scores, c.labels);
    if (c.f1 === null) { assert.equal(got, null, c.name); continue; }
    assert.ok(got !== null, c.name);
    assert.ok(Math.abs(got.f1 - c.f1) < 1e-12, `${c.name}: ${got.f1} vs ${c.f1}`);
    assert.equal(got.threshold, c.threshold, `${c.name}: threshold`);
  }
});

test('labelComponents uses 8-connectivity and counts separate regions', () => {
  // 1 0 0 1
  // 0 1 0 1
  // 0 0 0 0
  // 1 1 0 0
  const m = [1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0];
  const { labels, count } = labelComponents(m, 4, 4);
  assert.equal(count, 3);
  assert.equal(labels[0], labels[5]); // diagonal neighbours join
  assert.notEqual(labels[0], labels[3]);
  assert.equal(labels[2], 0);
});

test('aupro rejects bad sizes and limits, and is 1 / 0 for a perfect / inverted map', () => {
  const masks = new Uint8Array(2 * 8 * 8);
  for (let y = 2; y < 5; y++) for (let x = 2; x < 6; x++) masks[64 + y * 8 + x] = 1;
  const maps = Float32Array.from(masks, (v, i) => v + (i % 7) * 1e-3);
  assert.equal(aupro(maps, masks, 2, 8, 8), 1);
  assert.equal(aupro(maps.map((v) => -v), masks, 2, 8, 8), 0);
  assert.throws(() => aupro(maps, masks, 3, 8, 8), /expected 3 x 8 x 8/);
  assert.throws(() => aupro(maps, masks, 2, 8, 8, 0), /fprLimit/);
});

test('aupro timing on 2.4M pixels (a 150-image 128 px test set)', (t) => {
  const rng = new Rng(5);
  const n = 150, h = 128, w = 128;
  const masks = new Uint8Array(n * h * w), maps = new Float32Array(n * h * w);
  for (let i = 0; i < n; i++) {
    if (i % 2) continue;
    const y0 = Math.floor(rng.next() * 100), x0 = Math.floor(rng.next() * 100);
    for (let y = y0; y < y0 + 20; y++) for (let x = x0; x < x0 + 20; x++) masks[i * h * w + y * w + x] = 1;
  }
  for (let p = 0; p < maps.length; p++) maps[p] = rng.next() + 0.5 * masks[p]!;
  const t0 = performance.now();
  const v = aupro(maps, masks, n, h, w);
  const ms = performance.now() - t0;
  t.diagnostic(`aupro on ${maps.length} pixels: ${ms.toFixed(0)} ms, value ${v}`);
  // Scores U(0,1) vs U(0.5,1.5): at FPR f <= 0.3 the PRO is min(1, 0.5 + f) on average, so AUPRO ~ 0.65.
  assert.ok(v !== null && Math.abs(v - 0.65) < 0.02, `aupro ${v}`);
});
