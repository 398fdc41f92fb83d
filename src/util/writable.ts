/**
 * Checks that an output folder (or an output file's folder) can be written, before any work is done, with a message
 * that names the path and the fix instead of a raw `EEXIST ... mkdir`.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

const REASONS: Readonly<Record<string, string>> = {
  EROFS: 'it is on a read-only file system',
  EACCES: 'permission denied',
  EPERM: 'the operating system does not allow creating files there',
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exceeded',
  ENOENT: 'folders cannot be created there',
  ENOTDIR: 'a part of the path is a file, not a folder',
};

function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return `${REASONS[code] ?? (e as Error).message}${code ? ` (${code})` : ''}`;
}

/**
 * Makes sure `dir` is (or can be created as) a writable folder, leaving nothing behind: writes and removes a probe
 * file in it when it exists, otherwise creates and removes a probe folder in its deepest existing parent. With
 * `create`, the folder (and missing parents) is created instead.
 * @param dir the folder.
 * @param what how the user gave it, for messages, e.g. `--out`.
 * @throws Error naming the path, why it cannot be written, and what to do: when it is an existing file, when a part
 *   of the path is a file, or when the folder cannot be created or written (read-only file system, permissions,
 *   full disk, ...).
 */
export async function assertWritableFolder(dir: string, what = '--out', opts: { create?: boolean } = {}): Promise<void> {
  const abs = path.resolve(dir);
  const fix = `Choose a writable folder for ${what}, or fix the permissions / mount of ${abs}.`;
  // The deepest existing part of the path: an existing file there is the most common mistake.
  let p = abs;
  for (;;) {
    const st = await fsp.stat(p).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOTDIR' ? ('notdir' as const) : undefined));
    if (st === 'notdir') { p = path.dirname(p); continue; }
    if (st) {
      if (!st.isDirectory()) {
        if (p === abs) throw new Error(`${what} ${abs} is an existing file, not a folder. Give a folder path (it is created if missing), or move the file away.`);
        throw new Error(`${what} ${abs} cannot be created: ${p} is a file, not a folder. Choose another path for ${what}.`);
      }
      break;
    }
    const parent = path.dirname(p);
    if (parent === p) break;
    p = parent;
  }
  if (p !== abs && !opts.create) {
    const probeDir = path.join(p, `.ntsnet-write-test-${process.pid}`);
    try {
      await fsp.mkdir(probeDir);
    } catch (e) {
      throw new Error(`${what} ${abs} cannot be created: ${reason(e)}. ${fix}`, { cause: e });
    }
    await fsp.rmdir(probeDir).catch(() => undefined);
    return;
  }
  // One level at a time from the deepest existing folder `p` (Node's recursive mkdir spins forever where the
  // kernel answers ENOENT for a new folder, e.g. under /proc).
  try {
    for (const part of path.relative(p, abs).split(path.sep).filter(Boolean)) {
      p = path.join(p, part);
      await fsp.mkdir(p).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
    }
  } catch (e) {
    throw new Error(`${what} ${abs} cannot be created: ${reason(e)}. ${fix}`, { cause: e });
  }
  const probe = path.join(abs, `.ntsnet-write-test-${process.pid}`);
  try {
    await fsp.writeFile(probe, 'x', { flag: 'wx' });
  } catch (e) {
    throw new Error(`${what} ${abs} is not writable: ${reason(e)}. ${fix}`, { cause: e });
  } finally {
    await fsp.rm(probe, { force: true }).catch(() => undefined);
  }
}

/**
 * The same check for an output FILE: its folder must be writable, and the path must not be an existing folder.
 * @throws Error as {@link assertWritableFolder}, or when `file` is an existing folder.
 */
export async function assertWritableFile(file: string, what = '--out'): Promise<void> {
  const abs = path.resolve(file);
  if ((await fsp.stat(abs).catch(() => undefined))?.isDirectory()) throw new Error(`${what} ${abs} is an existing folder; give a file path.`);
  await assertWritableFolder(path.dirname(abs), `the folder of ${what}`);
}

/**
 * Refuses to replace an existing `file` that ntsnet did not write itself (`ours(head)` false on its first 4 KiB),
 * unless `force`: a user's own file at an output path is never overwritten unasked.
 * @throws Error naming the file and the two ways out.
 */
export async function assertNotForeignFile(file: string, ours: (head: string) => boolean, force: boolean, what = '--out'): Promise<void> {
  const abs = path.resolve(file);
  const fh = await fsp.open(abs, 'r').catch(() => undefined);
  if (!fh) return;
  let head: string;
  try {
    const b = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(b, 0, b.length, 0);
    head = b.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
  if (!force && !ours(head)) throw new Error(`${what} ${abs} exists and was not written by ntsnet: it would be overwritten. Choose another path, or pass --force to replace it.`);
}
