import type { Command } from 'commander';
import { convertToSafetensors, defaultWeightsCacheDir, readWeightsFile, isImagenetSha256, RESNET18_URL, RESNET18_FILE, validateResnet18Trunk, stripCommonPrefixes } from '../model/weights/resolve.js';

export function registerWeights(program: Command): void {
  const w = program.command('weights').description('teacher weights: where they are looked for, verification, conversion');
  w.command('where')
    .description('print the cache folder and the download URL of the torchvision ResNet18 ImageNet weights')
    .action(() => {
      process.stdout.write(`cache folder: ${defaultWeightsCacheDir()}\nexpected file: ${RESNET18_FILE} (SHA-256 starts with f37072fd)\nURL: ${RESNET18_URL}\n`);
    });
  w.command('verify')
    .description('check a weights file: readable, complete ResNet18 trunk, and whether it is the ImageNet checkpoint')
    .argument('<file>', '.pth or .safetensors')
    .action(async (file: string) => {
      const f = await readWeightsFile(file);
      validateResnet18Trunk(stripCommonPrefixes(f.state), file);
      const imagenet = isImagenetSha256(f.sourceSha256 ?? f.sha256);
      process.stdout.write(`${file}: ${f.format}, ${f.state.size} tensors, SHA-256 ${f.sha256}${f.sourceSha256 ? ` (converted from ${f.sourceSha256})` : ''}\n`);
      process.stdout.write(`ImageNet torchvision checkpoint (f37072fd): ${imagenet ? 'yes' : 'NO'}\n`);
      if (!imagenet) process.exitCode = 2;
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
