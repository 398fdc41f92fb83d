import { writeFileAtomic } from '../util/atomic.js';
import { assertNotForeignFile, assertWritableFile } from '../util/writable.js';
import { InvalidArgumentError, type Command } from 'commander';
import { checkDataset, formatCheckReport } from '../data/check.js';
import { folderSpecFromFlags } from '../data/dataset.js';
import type { FolderSpec } from '../data/folder.js';

/** Flags of `ntsnet data check`. */
interface CheckFlags {
  force?: boolean;
  normal?: string[];
  abnormal?: string[];
  masks?: string;
  maskSuffix?: string;
  split?: string;
  seed: number;
  valFraction: number;
  skipBad?: boolean;
  decode?: boolean;
  json?: string;
  saveSplit?: string;
  name?: string;
  verbose?: boolean;
}

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${v}"`);
  return n;
};

/** Registers `ntsnet data check`: inspects a dataset (MVTec category folder or folder dataset flags) without training. */
export function registerData(program: Command): void {
  const data = program.command('data').description('dataset tools (no training): check a dataset before fitting');
  data
    .command('check')
    .description(
      'check a dataset without training: counts per split and defect type, image sizes and channel modes, mask values, and every problem ' +
        '(unreadable/truncated files, missing or orphan masks, mask/image size mismatch, tiny images, ...). Exit code 0 = no errors, 1 = errors.',
    )
    .argument('[path]', 'an MVTec AD category folder (train/good, test/, ground_truth/)')
    .option('--normal <dirs...>', 'folder dataset: folders of normal images')
    .option('--abnormal <dirs...>', 'folder dataset: folders of defective images (one defect type per folder)')
    .option('--masks <dir>', 'folder dataset: separate mask folder (flat or one sub-folder per defect type); masks beside the images are found without it')
    .option('--mask-suffix <suffix>', 'mask file suffix: <stem><suffix>.<ext> (default _mask)')
    .option('--split <fractions>', 'folder dataset: train,val,test fractions of the normal images', '0.7,0.1,0.2')
    .option('--seed <n>', 'split seed (same default as fit)', int, 42)
    .option('--val-fraction <f>', 'MVTec: fraction of train/good held out for validation (same default as fit)', (v) => {
      const f = Number(v);
      if (!(f >= 0 && f < 1)) throw new InvalidArgumentError(`expected a number in [0, 1), got "${v}"`);
      return f;
    }, 0.1)
    .option('--name <name>', 'folder dataset: name (default: the common parent folder name)')
    .option('--skip-bad', 'report unreadable/zero-byte/truncated files as warnings and leave them out (as the readers do with skipBad)')
    .option('--decode', 'fully decode every image (slower; finds corruption inside the pixel data)')
    .option('--json <file>', 'also write the full report as JSON')
    .option('--verbose', 'list every problem and every ignored file (default: per kind of problem, the count and the first 3)')
    .option('--force', 'replace --json / --save-split files that ntsnet did not write')
    .option('--save-split <file>', 'write the split (relative file lists) as JSON, to reproduce it exactly later')
    .action(async (p: string | undefined, o: CheckFlags) => {
      let input: string | FolderSpec;
      if (p !== undefined && (o.normal || o.abnormal || o.masks)) throw new Error('give either a PATH (MVTec AD category) or --normal/--abnormal/--masks (folder dataset), not both');
      if (p !== undefined) input = p;
      else if (o.normal || o.abnormal || o.masks) input = folderSpecFromFlags({ normal: o.normal ?? [], abnormal: o.abnormal ?? [], masks: o.masks, maskSuffix: o.maskSuffix, split: o.split, seed: o.seed, name: o.name });
      else throw new Error("nothing to check: give an MVTec AD category folder (ntsnet data check PATH) or a folder dataset (ntsnet data check --normal DIR --abnormal DIR...)");
      // Output files are checked before the (possibly long) check runs, and a user's own file is never replaced unasked.
      for (const [flag, f] of [['--json', o.json], ['--save-split', o.saveSplit]] as const) {
        if (f === undefined) continue;
        await assertWritableFile(f, flag);
        await assertNotForeignFile(f, (h) => /^\s*\{/.test(h) && (h.includes('"errors"') || h.includes('"kind"')), o.force ?? false, flag);
      }
      const report = await checkDataset(input, {
        valFraction: o.valFraction,
        seed: o.seed,
        skipBad: o.skipBad ?? false,
        decode: o.decode ?? false,
        onProgress: (l) => void process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`${formatCheckReport(report, o.verbose ? { perKind: Infinity, maxIgnored: Infinity } : {})}\n`);
      if (o.json) await writeFileAtomic(o.json, `${JSON.stringify(report, null, 2)}\n`);
      if (o.saveSplit) await writeFileAtomic(o.saveSplit, `${JSON.stringify(report.split, null, 2)}\n`);
      process.exitCode = report.errors > 0 ? 1 : 0;
    });
}
