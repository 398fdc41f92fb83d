import { readFileSync } from 'node:fs';

/**
 * The CPU's feature flags from /proc/cpuinfo (e.g. `avx2`, `avx512_vnni`), or undefined where they cannot be read
 * (not Linux). Read once: they do not change while the process runs.
 */
export function cpuFlags(): readonly string[] | undefined {
  if (flags === null) {
    try {
      const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '';
      flags = (line.split(':')[1] ?? '').trim().split(/\s+/).filter(Boolean);
    } catch {
      flags = undefined;
    }
  }
  return flags;
}
let flags: string[] | undefined | null = null;
