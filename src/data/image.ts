/**
 * Image and mask decoding with sharp (libvips).
 *
 * Conventions used throughout ntsnet:
 * - Images are RGB, layout HWC (row-major `[H, W, 3]`, i.e. one slice of an NHWC batch).
 * - Model inputs are float32, ImageNet-normalised: `(v / 255 - mean[c]) / std[c]` with
 *   mean = [0.485, 0.456, 0.406] and std = [0.229, 0.224, 0.225].
 * - Masks are `[H, W]` Uint8Array of 0 (normal) / 1 (anomalous).
 *
 * Colour handling for images: EXIF orientation is applied; greyscale, palette, CMYK and 16-bit
 * inputs are converted to 8-bit sRGB (16-bit values are scaled to 8 bits, i.e. about v / 257);
 * an alpha channel is flattened onto BLACK (a fully transparent pixel becomes (0, 0, 0), a
 * half-transparent one is blended half-way to black). Multi-page files (TIFF, GIF) use page 1.
 */
import { promises as fsp } from 'node:fs';
import sharp from 'sharp';

/**
 * A problem with the user's data (missing/unreadable/corrupt files, wrong folder layout).
 * The message always names the offending path and says what to do about it.
 */
export class DataError extends Error {
  override readonly name = 'DataError';
  /** The file or folder the problem is about. */
  readonly path: string;
  constructor(message: string, path: string, options?: { cause?: unknown }) {
    super(message, options);
    this.path = path;
  }
}

/** ImageNet channel means (RGB) applied to values in [0, 1]. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet channel standard deviations (RGB) applied to values in [0, 1]. */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** An 8-bit RGB image, layout HWC: `data.length === width * height * 3`. */
export interface Rgb8Image {
  /** Pixels, row-major `[height, width, 3]`, RGB order, 0..255. */
  data: Uint8Array;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}

function checkSize(size: number, what: string): void {
  if (!Number.isInteger(size) || size < 1 || size > 16384) {
    throw new RangeError(`${what}: size must be an integer in [1, 16384] pixels, got ${size}`);
  }
}

/** Throws a DataError when `file` does not exist, is not a regular file, is empty or unreadable. */
async function checkFile(file: string, kind: 'image' | 'mask'): Promise<void> {
  let st;
  try {
    st = await fsp.stat(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new DataError(`${kind === 'mask' ? 'Mask' : 'Image'} file not found: ${file}. Check the path (and the dataset layout).`, file, { cause: e });
    }
    throw new DataError(`Cannot access ${kind} file ${file}: ${(e as Error).message}. Check its permissions.`, file, { cause: e });
  }
  if (!st.isFile()) throw new DataError(`${file} is not a regular file (expected a ${kind} image). Remove it from the dataset folder or fix the path.`, file);
  if (st.size === 0) {
    throw new DataError(`${kind === 'mask' ? 'Mask' : 'Image'} file ${file} is empty (0 bytes), probably an interrupted copy or download. Copy it again or delete it.`, file);
  }
}

function decodeError(file: string, kind: 'image' | 'mask', e: unknown): DataError {
  const msg = (e as Error)?.message ?? String(e);
  let hint = 'Re-export it as PNG or JPEG, or remove it from the dataset folder.';
  if (/unsupported image format/i.test(msg)) hint = 'It is not an image in a supported format (PNG, JPEG, BMP, TIFF, WebP). ' + hint;
  else if (/permission|EACCES/i.test(msg)) hint = 'Check its read permissions.';
  return new DataError(`Could not decode ${kind} ${file}: ${msg}. ${hint}`, file, { cause: e });
}

/**
 * Decodes a file to 8-bit sRGB HWC, optionally resized (bilinear) to `size x size`.
 * Resampling: libvips `resize` with the `linear` kernel and `fit: 'fill'` (aspect ratio NOT kept,
 * like torchvision `Resize((size, size))`). When downscaling, libvips widens the kernel with the
 * scale factor, i.e. it is anti-aliased like PIL's BILINEAR filter used by torchvision on PIL images
 * (measured on MVTec bottle, 900 -> 256: mean |difference| 0.15 grey levels, max 2, versus PIL).
 * JPEG shrink-on-load is disabled so results do not depend on the file format.
 */
async function decodeRgb8(file: string, size: number | undefined): Promise<Rgb8Image> {
  await checkFile(file, 'image');
  try {
    let img = sharp(file, { autoOrient: true }).flatten({ background: { r: 0, g: 0, b: 0 } }).toColourspace('srgb');
    if (size !== undefined) img = img.resize(size, size, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false });
    const { data, info } = await img.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      throw new Error(`unexpected decoded layout (${info.width}x${info.height}, ${info.channels} channels)`);
    }
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (e) {
    throw decodeError(file, 'image', e);
  }
}

/**
 * ImageNet-normalises 8-bit RGB HWC pixels: `out[i] = (rgb8[i] / 255 - mean[c]) / std[c]` with
 * `c = i % 3`.
 * @param rgb8 `[H, W, 3]` Uint8Array (any length divisible by 3).
 * @param out optional destination of the same length (e.g. a slice of a batch buffer).
 * @returns float32 `[H, W, 3]`.
 * @throws RangeError when the length is not a multiple of 3 or `out` has the wrong length.
 */
export function normalizeImagenet(rgb8: Uint8Array, out?: Float32Array): Float32Array {
  if (rgb8.length % 3 !== 0) throw new RangeError(`normalizeImagenet: length ${rgb8.length} is not a multiple of 3 (expected RGB HWC)`);
  const dst = out ?? new Float32Array(rgb8.length);
  if (dst.length !== rgb8.length) throw new RangeError(`normalizeImagenet: out has length ${dst.length}, expected ${rgb8.length}`);
  // Per-channel lookup tables (computed in float64, stored once as float32).
  const lut = new Float32Array(256 * 3);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
  }
  for (let i = 0; i < rgb8.length; i += 3) {
    dst[i] = lut[rgb8[i]!]!;
    dst[i + 1] = lut[256 + rgb8[i + 1]!]!;
    dst[i + 2] = lut[512 + rgb8[i + 2]!]!;
  }
  return dst;
}

/**
 * Loads an image as a model input: RGB, resized to `size x size` (bilinear, aspect ratio not
 * kept), ImageNet-normalised float32, layout HWC.
 * See the module notes for orientation, greyscale/alpha/palette/16-bit handling (alpha is
 * flattened onto black).
 * @param file path of a PNG, JPEG, BMP, TIFF or WebP file.
 * @param size output height and width in pixels.
 * @returns Float32Array of length `size * size * 3`, `[size, size, 3]` RGB.
 * @throws DataError naming the file when it is missing, empty, unreadable or not a decodable image.
 * @throws RangeError on an invalid size.
 */
export async function loadImage(file: string, size: number): Promise<Float32Array> {
  checkSize(size, 'loadImage');
  const img = await decodeRgb8(file, size);
  return normalizeImagenet(img.data);
}

/**
 * Loads an image as 8-bit RGB (for overlays and reports), with the same decoding rules as
 * {@link loadImage}.
 * @param file image path.
 * @param size when given, the image is resized (bilinear) to `size x size`; otherwise it keeps
 *   its own size (after EXIF orientation).
 * @returns `{ data: [height, width, 3] Uint8Array, width, height }`.
 * @throws DataError naming the file when it is missing, empty, unreadable or not a decodable image.
 */
export async function loadImageRgb8(file: string, size?: number): Promise<Rgb8Image> {
  if (size !== undefined) checkSize(size, 'loadImageRgb8');
  return decodeRgb8(file, size);
}

/**
 * Nearest-neighbour resampling of a single-channel `[inH, inW]` array to `[outH, outW]`, sampling
 * at pixel centres like PIL's NEAREST: `src = floor((dst + 0.5) * in / out)`.
 */
export function resizeNearest(src: Uint8Array, inW: number, inH: number, outW: number, outH: number): Uint8Array {
  if (src.length !== inW * inH) throw new RangeError(`resizeNearest: src length ${src.length} != ${inW}x${inH}`);
  const out = new Uint8Array(outW * outH);
  const xs = new Int32Array(outW);
  for (let x = 0; x < outW; x++) xs[x] = Math.min(inW - 1, Math.floor(((2 * x + 1) * inW) / (2 * outW)));
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(inH - 1, Math.floor(((2 * y + 1) * inH) / (2 * outH)));
    const row = sy * inW;
    const o = y * outW;
    for (let x = 0; x < outW; x++) out[o + x] = src[row + xs[x]!]!;
  }
  return out;
}

/**
 * Decodes a ground-truth mask at its own size, binarised: 1 where the pixel is non-zero.
 * Rule: after EXIF orientation and flattening alpha onto black (fully transparent = 0), a pixel is
 * anomalous (1) when ANY channel is > 0 at the file's native bit depth, otherwise 0. For the usual
 * single-channel masks this is exactly "grey value > 0"; unlike a luminance conversion it never
 * drops faint or coloured marks (e.g. value 1, pure blue, or 16-bit values below 257). Any embedded
 * ICC profile is ignored (mask values are labels, not colours).
 * @returns `{ data: [height, width] Uint8Array of 0/1, width, height }`.
 * @throws DataError naming the file when it is missing, empty or not a decodable image.
 */
export async function loadMaskFull(file: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  await checkFile(file, 'mask');
  try {
    const { data, info } = await sharp(file, { autoOrient: true, ignoreIcc: true })
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .toColourspace('rgb16')
      .removeAlpha()
      .raw({ depth: 'ushort' })
      .toBuffer({ resolveWithObject: true });
    const n = info.width * info.height;
    const ch = info.channels;
    if (data.length !== n * ch * 2) throw new Error(`unexpected decoded layout (${info.width}x${info.height}, ${ch} channels)`);
    const v = new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
    const out = new Uint8Array(n);
    for (let i = 0, j = 0; i < n; i++, j += ch) {
      let any = 0;
      for (let c = 0; c < ch; c++) any |= v[j + c]!;
      out[i] = any > 0 ? 1 : 0;
    }
    return { data: out, width: info.width, height: info.height };
  } catch (e) {
    throw decodeError(file, 'mask', e);
  }
}

/**
 * Loads a ground-truth mask resized to `size x size` with nearest-neighbour sampling (pixel
 * centres, see {@link resizeNearest}) and binarised with the rule of {@link loadMaskFull}
 * (1 where any channel > 0; binarising and nearest resampling commute).
 * @param file mask image path (PNG usually; any format sharp reads).
 * @param size output height and width in pixels.
 * @returns Uint8Array of length `size * size`, `[size, size]`, values 0/1.
 * @throws DataError naming the file when it is missing, empty or not a decodable image.
 * @throws RangeError on an invalid size.
 */
export async function loadMask(file: string, size: number): Promise<Uint8Array> {
  checkSize(size, 'loadMask');
  const m = await loadMaskFull(file);
  if (m.width === size && m.height === size) return m.data;
  return resizeNearest(m.data, m.width, m.height, size, size);
}
