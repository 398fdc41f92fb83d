/**
 * Shared helpers for the node:test suites. Tests run from dist/test/, so paths are computed from
 * this module's URL by walking up to the ntsnet package.json.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | undefined;

/** Absolute path of the repository root (the folder whose package.json has name "ntsnet"). */
export function repoRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'ntsnet') {
          cachedRoot = dir;
          return dir;
        }
      } catch {
        /* unreadable package.json: keep walking up */
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`repoRoot: no package.json with name "ntsnet" above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** `<repoRoot>/test/fixtures/<name>` (the source fixtures; they are not copied to dist). */
export function fixturePath(name: string): string {
  return path.join(repoRoot(), 'test', 'fixtures', name);
}

const tempDirs: string[] = [];
let cleanupRegistered = false;

/**
 * Creates a fresh temporary folder (`<os tmp>/ntsnet-test-<prefix>-XXXXXX`). All folders made
 * this way are deleted when the process exits, unless NTSNET_KEEP_TMP=1 is set.
 */
export function makeTempDir(prefix = 'tmp'): string {
  const dir = mkdtempSync(path.join(tmpdir(), `ntsnet-test-${prefix}-`));
  tempDirs.push(dir);
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    process.on('exit', () => {
      if (process.env.NTSNET_KEEP_TMP === '1') return;
      for (const d of tempDirs) {
        try {
          rmSync(d, { recursive: true, force: true });
        } catch {
          /* best effort */
        }
      }
    });
  }
  return dir;
}

/**
 * Path of the read-only real data: `$NTSNET_SHARED_DATA/<parts>` when that variable is set,
 * otherwise `<repoRoot>/../shared/data/<parts>`. Returns undefined when the path does not exist
 * (tests then skip with a message). Never write into it.
 */
export function sharedDataPath(...parts: string[]): string | undefined {
  const base = process.env.NTSNET_SHARED_DATA ?? path.join(repoRoot(), '..', 'shared', 'data');
  const p = path.resolve(base, ...parts);
  return existsSync(p) ? p : undefined;
}
