/**
 * Whether a same-stem `.png` beside a photo (`a.jpg` + `a.png`, the Magnetic Tile layout) is really a mask: masks
 * are single-channel (grey, or a palette) and binary or near-binary (0 and one "on" value, plus anti-aliased edge
 * pixels). A colour PNG, or a grey one with many intermediate values, is a photo: taking it as a mask would drop an
 * image silently.
 */
import sharp from 'sharp';
import { maxInputPixels } from './open.js';

/** Same-stem PNGs per folder whose pixels are checked (the others get the header check only), spread over the folder. */
export const MASK_PIXEL_CHECKS_PER_FOLDER = 24;

/**
 * Largest fraction of pixels allowed strictly between 0 and the file's brightest value. Soft (anti-aliased) mask edges
 * are a minority of a mask's pixels even for thin or tiny defects, while in a grey photo almost every pixel is
 * intermediate: a mask has at least half of its pixels exactly at 0 or at its maximum.
 */
export const MAX_SOFT_FRACTION = 0.5;

/** Soft edges of a mask (anti-aliasing, a resized mask) are ramps a few pixels wide between 0 and the maximum. */
export const EDGE_RADIUS = 2;
/** Share of intermediate pixels allowed farther than {@link EDGE_RADIUS} from any 0 / maximum pixel. */
export const MAX_INTERIOR_SOFT = 0.5;
/** The shape test needs this share of intermediate pixels to mean anything (a few stray values are noise). */
export const MIN_SOFT_FOR_SHAPE = 0.01;

/**
 * Fraction of the intermediate pixels (neither 0 nor `max`) whose (2r+1) x (2r+1) neighbourhood holds no 0 and no
 * `max` pixel: near 0 for a mask (its soft pixels are edge ramps), near 1 for a photo (grey values everywhere).
 */
export function interiorSoftFraction(v: ArrayLike<number>, w: number, h: number, max: number, r = EDGE_RADIUS): number {
  let soft = 0, interior = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const c = v[y * w + x]!;
      if (c === 0 || c === max) continue;
      soft++;
      let nearEdge = false;
      for (let yy = Math.max(0, y - r); yy <= Math.min(h - 1, y + r) && !nearEdge; yy++) {
        for (let xx = Math.max(0, x - r); xx <= Math.min(w - 1, x + r); xx++) {
          const n = v[yy * w + xx]!;
          if (n === 0 || n === max) { nearEdge = true; break; }
        }
      }
      if (!nearEdge) interior++;
    }
  }
  return soft ? interior / soft : 0;
}

/**
 * Why the PNG `file` does not look like a mask, or undefined when it does. One header read and one decode of the
 * first channel. A file that cannot be decoded counts as a mask here: the mask checks of the readers and of
 * `data check` report it as a bad mask (or skip it with skipBad).
 */
export async function notMaskReason(file: string, opts: { decode?: boolean } = {}): Promise<string | undefined> {
  if (opts.decode === false) {
    // Header only: a colour PNG (not a palette, which may hold greys) is not a mask.
    try {
      const meta = await sharp(file, { limitInputPixels: maxInputPixels() }).metadata();
      const colour = (meta.channels ?? 1) - (meta.hasAlpha ? 1 : 0);
      return colour !== 1 && !meta.isPalette ? `it has ${colour} colour channels (masks have one)` : undefined;
    } catch {
      return undefined;
    }
  }
  try {
    // One decode (no separate header read): 8-bit samples, palette expanded, alpha removed.
    const { data: all, info } = await sharp(file, { limitInputPixels: maxInputPixels() }).removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    const ch = info.channels;
    if (ch !== 1 && ch !== 3) return `it has ${ch} colour channels (masks have one)`;
    // Grey stored as RGB (or a palette of greys) still counts as one channel; real colour does not.
    if (ch === 3) for (let i = 0; i < all.length; i += 3) if (all[i] !== all[i + 1] || all[i] !== all[i + 2]) return 'it is a colour image (masks have one channel, or R = G = B)';
    const v = ch === 1 ? all : all.filter((_, i) => i % 3 === 0);
    let max = 0;
    for (let i = 0; i < v.length; i++) if (v[i]! > max) max = v[i]!;
    if (max === 0) return undefined; // empty mask
    let soft = 0;
    for (let i = 0; i < v.length; i++) if (v[i] !== 0 && v[i] !== max) soft++;
    const frac = soft / (info.width * info.height);
    if (frac > MAX_SOFT_FRACTION) return `${(100 * frac).toFixed(0)} % of its pixels are neither 0 nor its maximum ${max} (in a mask at least ${100 * (1 - MAX_SOFT_FRACTION)} % of the pixels are 0 or the maximum)`;
    const interior = interiorSoftFraction(v, info.width, info.height, max);
    if (soft >= MIN_SOFT_FOR_SHAPE * info.width * info.height && interior > MAX_INTERIOR_SOFT)
      return `${(100 * interior).toFixed(0)} % of its intermediate pixels are more than ${EDGE_RADIUS} px from any pixel at 0 or at its maximum ${max}: they are image content, not the soft edge of a mask (a mostly dark photo?)`;
    return undefined;
  } catch {
    return undefined;
  }
}
