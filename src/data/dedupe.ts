import { promises as fsp } from 'node:fs';

/**
 * Drops items whose file was already seen under another path (a symbolic link to it, or a hard-to-spot alias such
 * as `a/../a/x.png`): compared by real path, so each file enters a dataset once and a training image can never reach
 * the test split through a link. `seen` carries real path -> first path across calls (e.g. train, then test).
 * @param onDuplicate - called with the dropped path and the path it duplicates (for the warning).
 */
export async function dropSameFiles<T>(items: readonly T[], pathOf: (t: T) => string, seen: Map<string, string>, onDuplicate: (dup: string, first: string) => void): Promise<T[]> {
  const out: T[] = [];
  for (const it of items) {
    const p = pathOf(it);
    const real = await fsp.realpath(p).catch(() => p);
    const first = seen.get(real);
    if (first !== undefined) { onDuplicate(p, first); continue; }
    seen.set(real, p);
    out.push(it);
  }
  return out;
}
