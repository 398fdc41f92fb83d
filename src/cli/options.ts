import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { preset, validateRunConfig, type RunConfig } from '../engine/config.js';
import type { LayerId } from '../model/config.js';

/** Parses a finite number, or tells commander the value is invalid (instead of passing NaN on). */
export function num(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${v}".`);
  return n;
}

/** Parses an integer, or tells commander the value is invalid. */
export function int(v: string): number {
  const n = num(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${v}".`);
  return n;
}

/** Parses a number > 0, or tells commander the value is invalid. */
export function positive(v: string): number {
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`expected a positive number, got "${v}"`);
  return n;
}

/** Parses an integer > 0, or tells commander the value is invalid. */
export function positiveInt(v: string): number {
  const n = Number(v);
  if (!(Number.isInteger(n) && n > 0)) throw new InvalidArgumentError(`expected a positive integer, got "${v}"`);
  return n;
}

/** Parses a comma-separated list of integers > 0 (e.g. batch sizes `1,32`), or tells commander the value is invalid. */
export function positiveIntList(v: string): number[] {
  const xs = v.split(',').map((t) => t.trim());
  if (xs.some((t) => !/^[1-9]\d*$/.test(t))) throw new InvalidArgumentError(`expected a comma-separated list of positive integers, got '${v}'`);
  return xs.map(Number);
}

/** Adds the run-config options shared by `fit` (every option overrides the chosen preset). */
export function addConfigOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--preset <name>', 'starting configuration').choices(['cpu', 'paper', 'tiny']).default('cpu'))
    .option('--config <file>', 'JSON file with a (partial) run config {model:{...}, train:{...}, teacher}; options below override it')
    .addOption(new Option('--student-block <kind>', 'student residual-block conv: plain 3x3 (default, measured best) or CoT (paper eq. 1-2)').choices(['cot', 'basic']))
    .addOption(new Option('--cot-downsample <how>', "CoT stride-2 blocks: strided convolutions (default, the paper's reading) or average pool + stride-1 block (CoTNet; measured better, docs/method.md)").choices(['strided', 'avgpool']))
    .addOption(new Option('--cot-value-init <how>', "CoT value path's second 1x1 convolution at initialisation: Kaiming normal (default) or zero").choices(['kaiming', 'zero']))
    .addOption(new Option('--teacher-norm <kind>', "teacher BatchNorm statistics: frozen ImageNet (default, measured best), self_ema (EMA of the teacher's own statistics on the training images), or eman (the paper's text literally: the student's; collapses)").choices(['eman', 'frozen_bn', 'self_ema']))
    .option('--eman-momentum <m>', 'momentum m of the teacher statistics (eman and self_ema)', num)
    .addOption(new Option('--eman-schedule <kind>', 'momentum schedule of the teacher statistics: constant m (default) or cosine from m to 1 over training').choices(['constant', 'cosine']))
    .option('--eman-scales <list>', 'feature scales whose teacher statistics follow the moving average, e.g. 3 (1 = stem + layer1, 2 = layer2, 3 = layer3; default all)')
    .option('--layers <list>', 'compared layers, e.g. 1,2,3')
    .addOption(new Option('--fusion <kind>', 'anomaly-map fusion').choices(['sum', 'product']))
    .option('--sigma <px>', 'Gaussian smoothing sigma in pixels (0 = none)', num)
    .option('--image-size <px>', 'square input size (multiple of 16)', int)
    .option('--epochs <n>', 'training epochs', int)
    .option('--batch-size <n>', 'training batch size', int)
    .addOption(new Option('--optimizer <name>', "optimizer (the paper's 'Adam lr 0.4' diverges; SGD lr 0.4 is STFPM's recipe)").choices(['sgd', 'adam']))
    .option('--lr <lr>', 'learning rate', num)
    .option('--momentum <m>', 'SGD momentum', num)
    .option('--weight-decay <wd>', 'L2 weight decay', num)
    .addOption(new Option('--loss-reduction <r>', 'loss reduction over the batch').choices(['sum', 'mean']))
    .option('--val-fraction <f>', 'fraction of train/good held out for validation', num)
    .addOption(new Option('--select-by <criterion>', 'which epoch becomes the checkpoint: the lowest validation loss (default) or the best expected detection on synthetic defects in the held-out images').choices(['synthetic', 'val_loss']))
    .addOption(new Option('--lr-schedule <kind>', 'learning-rate schedule (cosine: annealed to 0 over training; SGD only)').choices(['constant', 'cosine']))
    .addOption(new Option('--augment <kind>', 'training augmentation (flip: seeded left-right / top-bottom mirroring; the teacher then runs every step)').choices(['none', 'flip']))
    .option('--patience <n>', 'stop after this many epochs without a better selection criterion (0 = off)', int)
    .option('--seed <n>', 'random seed (split, init, data order)', int)
    .addOption(new Option('--teacher <kind>', 'teacher weights: ImageNet ResNet18 (default; never replaced by a random one), or a seeded random teacher chosen knowingly (tests only)').choices(['imagenet', 'random']))
    .option('--teacher-weights <file>', 'resnet18-imagenet-trunk.safetensors (../shared/weights), torchvision resnet18-f37072fd.pth or its .safetensors (otherwise: $NTSNET_TEACHER_WEIGHTS, the cache, then download)')
    .option('--no-download', 'never download teacher weights');
}

/** Options parsed by {@link addConfigOptions}. */
export interface ConfigFlags {
  preset: string; config?: string; studentBlock?: 'cot' | 'basic'; cotDownsample?: 'strided' | 'avgpool'; cotValueInit?: 'kaiming' | 'zero'; teacherNorm?: 'eman' | 'frozen_bn' | 'self_ema'; emanMomentum?: number;
  emanSchedule?: 'constant' | 'cosine'; emanScales?: string;
  layers?: string; fusion?: 'sum' | 'product'; sigma?: number; imageSize?: number; epochs?: number; batchSize?: number;
  optimizer?: 'sgd' | 'adam'; lr?: number; momentum?: number; weightDecay?: number; lossReduction?: 'sum' | 'mean';
  valFraction?: number; selectBy?: 'synthetic' | 'val_loss'; lrSchedule?: 'constant' | 'cosine'; augment?: 'none' | 'flip'; patience?: number; seed?: number; teacher?: 'imagenet' | 'random'; teacherWeights?: string; download: boolean;
}

/** Builds the run config: preset, then --config file, then individual flags. @throws Error on invalid values. */
export function buildRunConfig(f: ConfigFlags): RunConfig {
  const c = preset(f.preset);
  if (f.config) {
    let j: Partial<RunConfig>;
    try {
      j = JSON.parse(readFileSync(f.config, 'utf8')) as Partial<RunConfig>;
    } catch (e) {
      throw new Error(`Cannot read config file ${f.config}: ${(e as Error).message}`);
    }
    Object.assign(c.model, { ...j.model, cot: { ...c.model.cot, ...j.model?.cot } });
    Object.assign(c.train, j.train ?? {});
    if (j.teacher) c.teacher = j.teacher;
  }
  const m = c.model, t = c.train;
  if (f.studentBlock) m.studentBlock = f.studentBlock;
  if (f.cotDownsample) m.cot = { ...m.cot, downsample: f.cotDownsample };
  if (f.cotValueInit) m.cot = { ...m.cot, valueInit: f.cotValueInit };
  if (f.teacherNorm) m.teacherNorm = f.teacherNorm;
  if (f.emanMomentum !== undefined) m.emanMomentum = f.emanMomentum;
  if (f.emanMomentum !== undefined && m.teacherNorm === 'frozen_bn') throw new Error("--eman-momentum only applies to --teacher-norm self_ema or eman (the frozen teacher's statistics never move)");
  if (f.emanSchedule) m.emanSchedule = f.emanSchedule;
  if (f.emanScales !== undefined) {
    const parts = f.emanScales.split(',').map((s) => s.trim().replace(/^layer/, ''));
    const bad = parts.find((s) => !/^[123]$/.test(s));
    if (bad !== undefined) throw new Error(`--eman-scales ${JSON.stringify(f.emanScales)}: ${bad === '' ? 'an empty entry' : JSON.stringify(bad)} is not a feature scale; give 1, 2 or 3, comma-separated (e.g. 3 or 2,3)`);
    m.emanScales = parts.map(Number).sort((a, b) => a - b) as LayerId[];
  }
  if (f.layers !== undefined) m.layers = f.layers.split(',').map((s) => Number(s.trim().replace(/^layer/, ''))) as LayerId[];
  if (f.fusion) m.fusion = f.fusion;
  if (f.sigma !== undefined) m.sigma = f.sigma;
  if (f.imageSize !== undefined) m.imageSize = f.imageSize;
  if (f.epochs !== undefined) t.epochs = f.epochs;
  if (f.batchSize !== undefined) t.batchSize = f.batchSize;
  if (f.optimizer) t.optimizer = f.optimizer;
  if (f.lr !== undefined) t.lr = f.lr;
  if (f.momentum !== undefined) t.momentum = f.momentum;
  if (f.weightDecay !== undefined) t.weightDecay = f.weightDecay;
  if (f.lossReduction) t.lossReduction = f.lossReduction;
  if (f.valFraction !== undefined) t.valFraction = f.valFraction;
  if (f.selectBy) t.selectBy = f.selectBy;
  if (f.lrSchedule) t.lrSchedule = f.lrSchedule;
  if (f.augment) t.augment = f.augment;
  if (f.patience !== undefined) t.patience = f.patience;
  if (f.seed !== undefined) t.seed = f.seed;
  if (f.teacher) c.teacher = f.teacher;
  if (f.teacherWeights !== undefined) {
    // Weights given are weights wanted, whatever the preset's teacher (tiny's is random): never ignored silently.
    if (f.teacher === 'random') throw new Error(`--teacher-weights ${f.teacherWeights} is used with --teacher imagenet, not --teacher random: drop one of them.`);
    c.teacher = 'imagenet';
  }
  validateRunConfig(c);
  return c;
}
