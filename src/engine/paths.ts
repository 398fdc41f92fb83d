import { realpath } from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as path from 'node:path';

/** Version of this package (package.json). */
export const NTSNET_VERSION: string = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

async function real(p: string): Promise<string> {
  // Resolve symlinks of the deepest existing ancestor, so a not-yet-created output folder can be compared.
  const abs = path.resolve(p);
  try {
    return await realpath(abs);
  } catch {
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(await real(parent), path.basename(abs));
  }
}

/**
 * Refuses output folders inside (or equal to) a dataset folder: ntsnet never writes into the user's data.
 * @throws Error naming both folders.
 */
export async function assertOutsideDataset(out: string, datasetRoot: string): Promise<void> {
  const [o, d] = await Promise.all([real(out), real(datasetRoot)]);
  const rel = path.relative(d, o);
  if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel)))
    throw new Error(`Output folder ${out} is inside the dataset folder ${datasetRoot}; ntsnet never writes into datasets. Choose an output folder elsewhere (e.g. --out runs/<name>).`);
}
