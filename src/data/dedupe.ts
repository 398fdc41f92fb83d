import { promises as fsp } from 'node:fs';

/**
 * Drops items whose file was already seen under another path (a symbolic or hard link to it, or an alias such as
 * `a/../a/x.png`): compared by device and inode, so each file enters a dataset once and a training image can never reach
 * the test split through a link. `seen` carries file identity -> first path across calls (e.g. train, then test).
 * @param onDuplicate - called with the dropped path and the path it duplicates (for the warning).
 */
export async function dropSameFiles<T>(items: readonly T[], pathOf: (t: T) => string, seen: Map<string, string>, onDuplicate: (dup: string, first: string) => void): Promise<T[]> {
  const out: T[] = [];
  for (const it of items) {
    const p = pathOf(it);
    // Device + inode: the same file whether reached through a symbolic link or a hard link.
    const st = await fsp.stat(p).catch(() => undefined);
    const key = st ? `${st.dev}:${st.ino}` : await fsp.realpath(p).catch(() => p);
    const first = seen.get(key);
    if (first !== undefined) { onDuplicate(p, first); continue; }
    seen.set(key, p);
    out.push(it);
  }
  return out;
}

/** The dataset warning for a path {@link dropSameFiles} dropped: `dup` is the same file as `first`. */
export const sameFileWarning = (dup: string, first: string): string => `${dup} is the same file as ${first} (a link): read once.`;
