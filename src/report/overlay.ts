/**
 * Anomaly-map visualisation: a jet-coloured heat map blended over the input image, saved as PNG.
 */
import sharp from 'sharp';
import { writeFileAtomic } from '../util/atomic.js';

/** An 8-bit RGB image, layout HWC (`data.length === width * height * 3`). */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Options of {@link writeOverlayPng}. */
export interface OverlayOptions {
  /** Width of the anomaly map in pixels. */
  mapWidth: number;
  /** Height of the anomaly map in pixels. */
  mapHeight: number;
  /** Map value shown as the coldest colour (dark blue); lower values are clamped. */
  vmin: number;
  /** Map value shown as the hottest colour (dark red); higher values are clamped. */
  vmax: number;
  /** Heat-map opacity in [0, 1]: 0 shows only the image, 1 only the heat map (default 0.5). */
  alpha?: number;
}

/**
 * matplotlib's "jet" colour map as a 256-entry RGB lookup table (same segment data and sampling
 * at i / 255; channel values rounded to 0..255).
 */
const JET_LUT: Uint8Array = (() => {
  const seg: Array<Array<[number, number]>> = [
    [[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]], // red
    [[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]], // green
    [[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]], // blue
  ];
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = i / 255;
    for (let c = 0; c < 3; c++) {
      const pts = seg[c]!;
      let v = pts[pts.length - 1]![1];
      for (let k = 1; k < pts.length; k++) {
        const [x0, y0] = pts[k - 1]!;
        const [x1, y1] = pts[k]!;
        if (x <= x1) {
          v = y0 + ((x - x0) / (x1 - x0)) * (y1 - y0);
          break;
        }
      }
      lut[i * 3 + c] = Math.round(v * 255);
    }
  }
  return lut;
})();

function checkRange(vmin: number, vmax: number, fn: string): void {
  if (!Number.isFinite(vmin) || !Number.isFinite(vmax) || vmax < vmin) {
    throw new RangeError(`${fn}: need finite vmin <= vmax, got vmin=${vmin}, vmax=${vmax}`);
  }
}

/**
 * Colours a scalar map with the jet colour map.
 * Each value is scaled as `t = (v - vmin) / (vmax - vmin)`, clamped to [0, 1] (NaN counts as 0,
 * i.e. cold) and mapped to 256 levels like matplotlib (`level = min(255, floor(t * 256))`).
 * When `vmax === vmin`, values above vmin are hottest and the rest coldest.
 * @param map `[h, w]` float32 values, row-major.
 * @param w map width in pixels.
 * @param h map height in pixels.
 * @param vmin value mapped to the coldest colour.
 * @param vmax value mapped to the hottest colour.
 * @returns Uint8Array `[h, w, 3]` RGB.
 * @throws RangeError when `map.length !== w * h` or the range is invalid (non-finite, vmax < vmin).
 */
export function heatmapRgb(map: Float32Array, w: number, h: number, vmin: number, vmax: number): Uint8Array {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1 || map.length !== w * h) {
    throw new RangeError(`heatmapRgb: map length ${map.length} does not match ${w}x${h}`);
  }
  checkRange(vmin, vmax, 'heatmapRgb');
  const out = new Uint8Array(w * h * 3);
  const span = vmax - vmin;
  for (let i = 0; i < map.length; i++) {
    const v = map[i]!;
    let level: number;
    if (span > 0) {
      const t = (v - vmin) / span;
      level = t > 0 ? Math.min(255, Math.floor(t * 256)) : 0; // NaN -> 0
    } else {
      level = v > vmin ? 255 : 0;
    }
    out[i * 3] = JET_LUT[level * 3]!;
    out[i * 3 + 1] = JET_LUT[level * 3 + 1]!;
    out[i * 3 + 2] = JET_LUT[level * 3 + 2]!;
  }
  return out;
}

/**
 * Bilinear resampling of a single-channel `[inH, inW]` float map to `[outH, outW]` with half-pixel
 * centres (like `tf.image.resizeBilinear(..., halfPixelCenters=true)` / PyTorch
 * `align_corners=False`), clamping at the borders. Not anti-aliased (maps are normally upscaled).
 * @returns Float32Array `[outH, outW]`.
 */
export function resizeBilinear(map: Float32Array, inW: number, inH: number, outW: number, outH: number): Float32Array {
  if (map.length !== inW * inH) throw new RangeError(`resizeBilinear: map length ${map.length} does not match ${inW}x${inH}`);
  const out = new Float32Array(outW * outH);
  const x0s = new Int32Array(outW);
  const x1s = new Int32Array(outW);
  const fxs = new Float32Array(outW);
  const sx = inW / outW;
  for (let x = 0; x < outW; x++) {
    const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), inW - 1);
    const x0 = Math.floor(fx);
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, inW - 1);
    fxs[x] = fx - x0;
  }
  const sy = inH / outH;
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), inH - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, inH - 1);
    const wy = fy - y0;
    const r0 = y0 * inW;
    const r1 = y1 * inW;
    const o = y * outW;
    for (let x = 0; x < outW; x++) {
      const a = map[r0 + x0s[x]!]!;
      const b = map[r0 + x1s[x]!]!;
      const c = map[r1 + x0s[x]!]!;
      const d = map[r1 + x1s[x]!]!;
      const wx = fxs[x]!;
      const top = a + (b - a) * wx;
      const bot = c + (d - c) * wx;
      out[o + x] = top + (bot - top) * wy;
    }
  }
  return out;
}

/**
 * Renders the image with the anomaly map blended on top:
 * `out = (1 - alpha) * image + alpha * jet(map resized to the image size)`.
 * The map is resized with {@link resizeBilinear} and coloured with {@link heatmapRgb}
 * (vmin = blue, vmax = red). Use the same vmin/vmax for all images of a run so colours are comparable.
 * @param rgb `{ data: [height, width, 3] Uint8Array, width, height }`.
 * @param map `[mapHeight, mapWidth]` Float32Array anomaly map.
 * @returns Uint8Array `[height, width, 3]` RGB.
 * @throws RangeError on inconsistent sizes, an invalid range or alpha outside [0, 1].
 */
export function overlayRgb(rgb: RgbImage, map: Float32Array, opts: OverlayOptions): Uint8Array {
  const { width, height } = rgb;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || rgb.data.length !== width * height * 3) {
    throw new RangeError(`overlay: image data length ${rgb.data.length} does not match ${width}x${height}x3`);
  }
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`overlay: alpha must be in [0, 1], got ${alpha}`);
  if (map.length !== opts.mapWidth * opts.mapHeight) {
    throw new RangeError(`overlay: map length ${map.length} does not match mapWidth x mapHeight = ${opts.mapWidth}x${opts.mapHeight}`);
  }
  const resized = opts.mapWidth === width && opts.mapHeight === height ? map : resizeBilinear(map, opts.mapWidth, opts.mapHeight, width, height);
  const heat = heatmapRgb(resized, width, height, opts.vmin, opts.vmax);
  const out = new Uint8Array(rgb.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round((1 - alpha) * rgb.data[i]! + alpha * heat[i]!);
  return out;
}

/**
 * Writes a PNG of the image with a jet heat map of `map` blended on top (see {@link overlayRgb}),
 * atomically (temporary file + rename; parent folders are created).
 * @param outPath destination `.png` path.
 * @param rgb the image, 8-bit RGB HWC.
 * @param map `[mapHeight, mapWidth]` Float32Array anomaly map at its own resolution.
 * @param opts map size, colour range and opacity.
 * @throws RangeError on inconsistent sizes or options; Error naming `outPath` when writing fails.
 */
export async function writeOverlayPng(outPath: string, rgb: RgbImage, map: Float32Array, opts: OverlayOptions): Promise<void> {
  const pixels = overlayRgb(rgb, map, opts);
  const png = await sharp(pixels, { raw: { width: rgb.width, height: rgb.height, channels: 3 } }).png().toBuffer();
  await writeFileAtomic(outPath, png);
}
