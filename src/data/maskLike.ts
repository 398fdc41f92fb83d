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
    return undefined;
  } catch {
    return undefined;
  }
}
