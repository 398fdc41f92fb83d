import type { Command } from 'commander';
import { convertToSafetensors, defaultWeightsCacheDir, identifyTeacher, readWeightsFile, RESNET18_URL, RESNET18_FILE, TEACHER_WEIGHTS_ENV, TRUNK_FILE, validateResnet18Trunk, stripCommonPrefixes } from '../model/weights/resolve.js';

export function registerWeights(program: Command): void {
  const w = program.command('weights').description('teacher weights: where they are looked for, verification, conversion');
  w.command('where')
    .description('print the cache folder and the download URL of the torchvision ResNet18 ImageNet weights')
    .action(() => {
      process.stdout.write(`order: --teacher-weights FILE, then $${TEACHER_WEIGHTS_ENV}${process.env[TEACHER_WEIGHTS_ENV] ? ` (now ${process.env[TEACHER_WEIGHTS_ENV]})` : ' (unset)'}, then the cache folder, then the download\n` +
        `cache folder: ${defaultWeightsCacheDir()}\nexpected file: ${RESNET18_FILE} (SHA-256 starts with f37072fd) or ${TRUNK_FILE} (the ImageNet trunk, ../shared/weights/)\nURL: ${RESNET18_URL}\n`);
    });
  w.command('verify')
    .description('check a weights file: readable, complete ResNet18 trunk, and whether it is the ImageNet checkpoint')
    .argument('<file>', '.pth or .safetensors')
    .action(async (file: string) => {
      const f = await readWeightsFile(file);
      validateResnet18Trunk(stripCommonPrefixes(f.state), file);
      const id = identifyTeacher(f.sha256, f.sourceSha256, file);
      process.stdout.write(`${file}: ${f.format}, ${f.state.size} tensors, SHA-256 ${f.sha256}${f.sourceSha256 ? ` (converted from ${f.sourceSha256})` : ''}\n`);
      process.stdout.write(`identity: ${id.description} (form ${id.form})\nImageNet ResNet18: ${id.imagenet ? 'yes' : 'NO'}\n`);
      if (id.form === 'imagenet-trunk-bnfolded') process.stdout.write(`note: BatchNorm-folded: usable with --teacher-norm frozen_bn only; use ${TRUNK_FILE} for eman / self_ema.\n`);
      if (!id.imagenet) process.exitCode = 2;
    });
  w.command('convert')
    .description('convert a PyTorch .pth checkpoint to .safetensors (keeps PyTorch layout and names; records the source SHA-256)')
    .argument('<in>', 'input .pth')
    .argument('<out>', 'output .safetensors (written atomically; never the input)')
    .action(async (i: string, o: string) => {
      const r = await convertToSafetensors(i, o);
      process.stdout.write(`wrote ${r.outPath}: ${r.tensors} tensors, source SHA-256 ${r.sourceSha256}\n`);
    });
}
