/**
 * Shared helpers for the node:test suites. Tests run from dist/test/, so paths are computed from
 * this module's URL by walking up to the ntsnet package.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

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

/**
 * Path of a file of the shared ImageNet teacher weights: `$NTSNET_SHARED_WEIGHTS/<name>` when set, otherwise
 * `<repoRoot>/../shared/weights/<name>`; undefined when absent (tests then skip with a message). Read-only.
 */
export function sharedWeightsPath(name: string): string | undefined {
  const base = process.env.NTSNET_SHARED_WEIGHTS ?? path.join(repoRoot(), '..', 'shared', 'weights');
  const p = path.resolve(base, name);
  return existsSync(p) ? p : undefined;
}

/** A point in image pixels (the centre of a square defect). */
export interface Point {
  x: number;
  y: number;
}

/** Options of {@link writeStripedImage}. */
export interface StripedImageOptions {
  /** Image width in pixels (default 96). */
  width?: number;
  /** Image height in pixels (default 80). */
  height?: number;
  /** Centre of a defect square to paint; none when omitted. */
  defect?: Point;
  /** Pixels with |x - defect.x| < half and |y - defect.y| < half are painted (default 8). */
  half?: number;
  /** RGB colour of the defect square (default [255, 20, 240], magenta). */
  color?: readonly [number, number, number];
}

/**
 * Writes a synthetic striped RGB PNG, deterministic in `seed`: each pixel is
 * `v = 100 + 60 sin((x + seed) / 4) + ((7x + 13y + seed) mod 11)` as (v, 0.8 v, 90), with an
 * optional solid square defect. Creates the parent folder.
 */
export async function writeStripedImage(file: string, seed: number, o: StripedImageOptions = {}): Promise<void> {
  const w = o.width ?? 96, h = o.height ?? 80, half = o.half ?? 8;
  const [r, g, b] = o.color ?? [255, 20, 240];
  const d = o.defect;
  const buf = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const v = 100 + 60 * Math.sin((x + seed) / 4) + ((x * 7 + y * 13 + seed) % 11);
      const i = (y * w + x) * 3;
      buf[i] = v; buf[i + 1] = v * 0.8; buf[i + 2] = 90;
      if (d && Math.abs(x - d.x) < half && Math.abs(y - d.y) < half) { buf[i] = r; buf[i + 1] = g; buf[i + 2] = b; }
    }
  mkdirSync(path.dirname(file), { recursive: true });
  await sharp(buf, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
}

/**
 * Writes the 1-channel PNG ground-truth mask of the square painted by {@link writeStripedImage}
 * (255 inside, 0 outside). Uses `width`, `height` and `half` of `o` (defaults 96, 80, 8). Creates
 * the parent folder.
 */
export async function writeSquareMask(file: string, d: Point, o: Pick<StripedImageOptions, 'width' | 'height' | 'half'> = {}): Promise<void> {
  const w = o.width ?? 96, h = o.height ?? 80, half = o.half ?? 8;
  const buf = Buffer.alloc(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (Math.abs(x - d.x) < half && Math.abs(y - d.y) < half) buf[y * w + x] = 255;
  mkdirSync(path.dirname(file), { recursive: true });
  await sharp(buf, { raw: { width: w, height: h, channels: 1 } }).png().toFile(file);
}

/** Options of {@link makeMvtecCategory}. */
export interface MvtecCategoryOptions extends Pick<StripedImageOptions, 'width' | 'height' | 'half'> {
  /** Normal training images `train/good/NNN.png`, seeds 0, 1, ... */
  train: number;
  /** Normal test images `test/good/NNN.png`, seeds 50, 51, ... */
  good: number;
  /** Defective test images `test/spot/NNN.png`, seeds 70, 71, ... */
  defective: number;
  /** Whether to write `ground_truth/spot/NNN_mask.png` for each defective image (default true). */
  masks?: boolean;
  /** Defect centre of the i-th defective image (default `{ x: 20 + 20 i, y: 40 }`). */
  defectAt?: (i: number) => Point;
}

/**
 * Writes a small MVTec-layout category below `root` (NNN = zero-padded 3-digit index) with
 * {@link writeStripedImage} / {@link writeSquareMask}. `train/good` and `test` always exist,
 * other folders only when they receive files. Returns `root`.
 */
export async function makeMvtecCategory(root: string, o: MvtecCategoryOptions): Promise<string> {
  const size = { width: o.width, height: o.height, half: o.half };
  const nm = (i: number): string => String(i).padStart(3, '0');
  const defectAt = o.defectAt ?? ((i: number): Point => ({ x: 20 + 20 * i, y: 40 }));
  mkdirSync(path.join(root, 'train', 'good'), { recursive: true });
  mkdirSync(path.join(root, 'test'), { recursive: true });
  for (let i = 0; i < o.train; i++) await writeStripedImage(path.join(root, 'train/good', `${nm(i)}.png`), i, size);
  for (let i = 0; i < o.good; i++) await writeStripedImage(path.join(root, 'test/good', `${nm(i)}.png`), 50 + i, size);
  for (let i = 0; i < o.defective; i++) {
    const d = defectAt(i);
    await writeStripedImage(path.join(root, 'test/spot', `${nm(i)}.png`), 70 + i, { ...size, defect: d });
    if (o.masks ?? true) await writeSquareMask(path.join(root, 'ground_truth/spot', `${nm(i)}_mask.png`), d, size);
  }
  return root;
}

/** The system Chromium (Debian package `chromium`); NTSNET_CHROMIUM overrides it (e.g. to check the skip path). */
export const CHROMIUM = process.env.NTSNET_CHROMIUM ?? '/usr/bin/chromium';

/** Why browser checks cannot run here (Chromium missing), or undefined when they can. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not found: browser checks skipped (install it with 'apt-get install -y --no-install-recommends chromium')`;
}

/** Launches the system Chromium headless through playwright-core, with the flags this offline machine needs. */
export async function launchChromium(): Promise<import('playwright-core').Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}
