import type { Command } from 'commander';

export { folderSpec, testDatasets, type DatasetFlags } from '../data/flags.js';

/** Adds --normal/--abnormal/--masks/--mask-suffix/--split/--skip-bad (folder datasets) to a command. */
export function addDatasetOptions(cmd: Command): Command {
  return cmd
    .option('--normal <dirs...>', 'folder dataset: folders of normal images (instead of --data)')
    .option('--abnormal <dirs...>', 'folder dataset: folders of defective images, one defect type each')
    .option('--masks <dir>', 'folder dataset: separate mask folder (masks beside the images are found automatically)')
    .option('--mask-suffix <s>', 'mask file-name suffix', '_mask')
    .option('--split <fractions>', 'folder dataset: train,val,test fractions of the normal images', '0.7,0.1,0.2')
    .option('--skip-bad', 'skip unreadable or truncated images with a warning instead of stopping');
}
