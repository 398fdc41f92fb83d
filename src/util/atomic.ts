/**
 * Crash-safe file writes: data goes to a temporary file in the destination folder, is flushed to
 * disk (fsync), then renamed over the destination. A reader therefore sees either the old file or
 * the complete new one, never a truncated file, even if the process is killed mid-write.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

/** Data accepted by {@link writeFileAtomic}: text (written as UTF-8) or raw bytes. */
export type AtomicData = string | Uint8Array;

/**
 * Atomically writes `data` to `filePath`. Missing parent folders are created. The temporary
 * file is named `.tmp-<name>-<pid>-<random>` in the same folder (same filesystem, so the final
 * rename is atomic) and is removed if anything fails.
 * @param filePath destination path (relative paths resolve against the working directory).
 * @param data UTF-8 text or bytes.
 * @param options.mode file permission bits for a newly created file (default 0o644 minus umask).
 * @throws Error (with the destination path in the message) when the folder cannot be created or
 *   the file cannot be written, flushed or renamed, e.g. permission denied or disk full.
 */
export async function writeFileAtomic(filePath: string, data: AtomicData, options: { mode?: number } = {}): Promise<void> {
  const dest = path.resolve(filePath);
  const dir = path.dirname(dest);
  const tmp = path.join(dir, `.tmp-${path.basename(dest)}-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await fsp.mkdir(dir, { recursive: true });
    const fh = await fsp.open(tmp, 'wx', options.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, dest);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    const err = e as NodeJS.ErrnoException;
    throw new Error(`Could not write ${dest}: ${err.message}. Check that the folder is writable and the disk is not full.`, { cause: e });
  }
  // Persist the rename itself (directory entry). Best effort: not supported on every platform/filesystem.
  try {
    const dh = await fsp.open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* ignore: directory fsync is unsupported on e.g. Windows */
  }
}

/**
 * Atomically writes `value` as JSON (UTF-8, trailing newline) to `filePath`.
 * @param indent spaces of indentation (default 2; 0 for compact output).
 * @throws TypeError when the value cannot be serialised (e.g. BigInt, circular reference);
 *   Error as {@link writeFileAtomic} when writing fails.
 */
export async function writeJsonAtomic(filePath: string, value: unknown, indent = 2): Promise<void> {
  const text = JSON.stringify(value, null, indent > 0 ? indent : undefined);
  if (text === undefined) throw new TypeError(`writeJsonAtomic(${filePath}): value is not JSON-serialisable (${typeof value})`);
  await writeFileAtomic(filePath, text + '\n');
}
