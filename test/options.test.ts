/** Run-config flags: CoT options keep the other CoT fields, --config merges model.cot, --teacher-weights means ImageNet. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildRunConfig } from '../src/cli/options.js';
import { makeTempDir } from './helpers.js';

test('buildRunConfig: --cot-downsample / --cot-value-init, a partial model.cot in --config, --teacher-weights with the tiny preset', () => {
  const c = buildRunConfig({ preset: 'tiny', cotDownsample: 'avgpool', cotValueInit: 'zero', download: false });
  assert.deepEqual(c.model.cot, { groups: 4, heads: 4, reduction: 4, downsample: 'avgpool', valueInit: 'zero' });
  const file = path.join(makeTempDir('cfg'), 'c.json');
  writeFileSync(file, JSON.stringify({ model: { studentBlock: 'cot', cot: { downsample: 'avgpool' } } }));
  const d = buildRunConfig({ preset: 'cpu', config: file, download: false });
  assert.equal(d.model.studentBlock, 'cot');
  assert.deepEqual(d.model.cot, { groups: 4, heads: 4, reduction: 4, downsample: 'avgpool' });
  // The tiny preset's teacher is random; weights given mean the ImageNet teacher, and with --teacher random they conflict.
  assert.equal(buildRunConfig({ preset: 'tiny', teacherWeights: '/x/w.safetensors', download: false }).teacher, 'imagenet');
  assert.throws(() => buildRunConfig({ preset: 'tiny', teacher: 'random', teacherWeights: '/x/w.safetensors', download: false }), /--teacher-weights \/x\/w\.safetensors is used with --teacher imagenet, not --teacher random/);
  assert.throws(() => buildRunConfig({ preset: 'tiny', layers: '', download: false }), /layers must be a non-empty subset/);
});
