/**
 * An exclusive lock on an output folder (`<dir>/.ntsnet.lock`, created with O_EXCL), so that two runs writing the
 * same folder cannot both report success while the last writer wins. A lock left by a process that no longer exists
 * (killed) is taken over with a note.
 */
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { processAlive } from './process.js';

/** File name of the lock inside the locked folder. */
export const LOCK_FILE = '.ntsnet.lock';

/** What a lock file records. */
export interface LockInfo {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

/** A held lock; {@link FolderLock.release} removes it (also done at process exit). */
export interface FolderLock {
  file: string;
  release(): void;
}

/**
 * Takes the lock of `dir` (which must exist) for `command` (e.g. "fit").
 * @param onNote receives a line when a stale lock (dead process) is taken over.
 * @throws Error naming the folder, the other process and what to do, when a live process holds the lock.
 */
export async function lockFolder(dir: string, command: string, onNote: (l: string) => void = () => {}): Promise<FolderLock> {
  const file = path.join(path.resolve(dir), LOCK_FILE);
  const info: LockInfo = { pid: process.pid, host: hostname(), command, startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fsp.writeFile(file, `${JSON.stringify(info)}\n`, { flag: 'wx' });
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        process.removeListener('exit', release);
        try {
          const cur = JSON.parse(readFileSync(file, 'utf8')) as LockInfo;
          if (cur.pid === process.pid) unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
      process.on('exit', release);
      return { file, release };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`Cannot create the lock file ${file}: ${(e as Error).message}. Check that ${dir} is writable.`, { cause: e });
    }
    let other: LockInfo | undefined;
    try {
      other = JSON.parse(await fsp.readFile(file, 'utf8')) as LockInfo;
    } catch {
      other = undefined; // torn or being written: treat as held unless it stays unreadable
    }
    const sameHost = other?.host === hostname();
    if (other && (!sameHost || processAlive(other.pid))) {
      throw new Error(
        `${path.resolve(dir)} is in use by another ntsnet ${other.command} (process ${other.pid}${sameHost ? '' : ` on ${other.host}`}, started ${other.startedAt}). ` +
          `Two runs must not write the same folder: wait for it to finish, or choose another --out. (If that process is gone, delete ${file}.)`,
      );
    }
    if (!other && attempt === 0) { await new Promise((r) => setTimeout(r, 200)); continue; }
    onNote(`note: taking over the lock ${file} left by ${other ? `process ${other.pid} (${other.command}, started ${other.startedAt}), which no longer runs` : 'an unreadable lock file'}.`);
    await fsp.rm(file, { force: true });
  }
  throw new Error(`Could not lock ${dir} (${file} keeps reappearing): another ntsnet run is starting there. Choose another --out.`);
}

/** True when `dir` has a lock file (held or stale). */
export function hasLockFile(dir: string): boolean {
  return existsSync(path.join(dir, LOCK_FILE));
}
