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
 *
 * Geometry: any image size is accepted and resized to the model's square input (bilinear, aspect
 * ratio not kept). Images smaller than {@link MIN_IMAGE_SIDE} px are UPSCALED like any other (no
 * error); `ntsnet data check` reports them as a warning because the upscaled input holds no detail.
 *
 * Mask binarisation (see {@link loadMaskFull}): lossless masks (PNG, BMP, TIFF, WebP, ...) count
 * every non-zero pixel as anomalous, so 0/1, 0/255, soft-edged and 200-254 masks all work; lossy
 * JPEG masks count a pixel only from {@link JPEG_MASK_THRESHOLD} (128 of 255) up, because JPEG
 * compression leaves faint non-zero noise around every edge.
 */
import { promises as fsp } from 'node:fs';
import type { Metadata } from 'sharp';
import { imageMetadata, openImage, PixelLimitError, SUPPORTED_FORMATS } from './open.js';

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

/**
 * Smallest image side (px) that carries detail at the network's coarsest compared feature map
 * (ResNet18 stride 32). Smaller images are still loaded (upscaled); `data check` warns about them.
 */
export const MIN_IMAGE_SIDE = 32;

/** 8-bit level from which a pixel of a lossy JPEG mask counts as anomalous (see {@link loadMaskFull}). */
export const JPEG_MASK_THRESHOLD = 128;

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

/** Message of a truncated/corrupt file (shared by the loaders and {@link probeImageFile}). */
function truncatedError(file: string, kind: 'image' | 'mask', msg: string, cause: unknown): DataError {
  return new DataError(
    `${kind === 'mask' ? 'Mask' : 'Image'} file ${file} is truncated or corrupt (${msg.trim()}), probably an interrupted copy or download. Copy it again, re-export it, or remove it.`,
    file,
    { cause },
  );
}

/**
 * Turns a decoder failure into a DataError naming the file. libvips words a cut-off file differently
 * across builds (e.g. "Warning treated as error due to failOn setting"), so when the message is not a
 * known truncation message the file's own end marker decides (`tailIncomplete`).
 */
function decodeError(file: string, kind: 'image' | 'mask', e: unknown, tailIncomplete = false): DataError {
  if (e instanceof PixelLimitError) return new DataError(e.message, file, { cause: e });
  const msg = (e as Error)?.message ?? String(e);
  if (!/permission|EACCES/i.test(msg) && (tailIncomplete || /premature end|truncat|unexpected end|libpng read error|not enough data|end of (file|stream)/i.test(msg))) {
    return truncatedError(file, kind, msg, e);
  }
  let hint = 'Re-export it as PNG or JPEG, or remove it from the dataset folder.';
  if (/unsupported image format|not a decodable BMP/i.test(msg)) hint = `It is not an image in a supported format (${SUPPORTED_FORMATS}). ` + hint;
  else if (/permission|EACCES/i.test(msg)) hint = 'Check its read permissions.';
  return new DataError(`Could not decode ${kind} ${file}: ${msg.trim().replace(/[\s:.]+$/, '')}. ${hint}`, file, { cause: e });
}

/** {@link decodeError} after checking the file's end marker (async; for decode paths). */
async function decodeErrorChecked(file: string, kind: 'image' | 'mask', e: unknown): Promise<DataError> {
  let incomplete = false;
  if (!(e instanceof PixelLimitError)) {
    try {
      const format = (await imageMetadata(file)).format ?? 'unknown';
      incomplete = (await tailLooksComplete(file, format, (await fsp.stat(file)).size)) === false;
    } catch {
      // the header itself is unreadable: keep the decoder's own message
    }
  }
  return decodeError(file, kind, e, incomplete);
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
    let img = (await openImage(file, { autoOrient: true })).img.flatten({ background: { r: 0, g: 0, b: 0 } }).toColourspace('srgb');
    if (size !== undefined) img = img.resize(size, size, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false });
    const { data, info } = await img.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      throw new Error(`unexpected decoded layout (${info.width}x${info.height}, ${info.channels} channels)`);
    }
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (e) {
    throw await decodeErrorChecked(file, 'image', e);
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
 * @param file path of a PNG, JPEG, BMP, TIFF, WebP or GIF file (see data/open.ts).
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
 * Rule: after EXIF orientation, a pixel is anomalous (1) when ANY colour channel is > 0 at the
 * file's native bit depth and it is not fully transparent (alpha 0), otherwise 0 (no colour
 * conversion happens first, see {@link decodeMaskValues}). For the usual
 * single-channel masks this is exactly "grey value > 0"; unlike a luminance conversion it never
 * drops faint or coloured marks (e.g. value 1, pure blue, or 16-bit values below 257), and soft
 * (anti-aliased) edges count as anomalous. Any embedded ICC profile is ignored (mask values are
 * labels, not colours).
 * Exception, lossy JPEG masks (detected from the file's content, not its extension): a pixel is
 * anomalous when any channel is >= {@link JPEG_MASK_THRESHOLD} (128), so JPEG ringing noise
 * around the marks (values of a few grey levels) does not grow the mask.
 * @returns `{ data: [height, width] Uint8Array of 0/1, width, height }`.
 * @throws DataError naming the file when it is missing, empty or not a decodable image.
 */
export async function loadMaskFull(file: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const m = await decodeMaskValues(file);
  const n = m.width * m.height;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = m.values[i]! >= m.threshold ? 1 : 0;
  return { data: out, width: m.width, height: m.height };
}

/** A mask decoded at its native bit depth, before binarisation (see {@link decodeMaskValues}). */
export interface MaskValues {
  /** Per pixel, `[height, width]`: the maximum over the colour channels at native depth, 0 where fully transparent. */
  values: Uint16Array;
  width: number;
  height: number;
  /** 255 for 8-bit files (palette included), 65535 for 16-bit ones. */
  maxValue: number;
  /** True for lossy JPEG masks (format detected from the content). */
  lossy: boolean;
  /** Smallest value counted as anomalous: 1, or 128 (8-bit) / 32896 (16-bit) for JPEG. */
  threshold: number;
}

/**
 * Decodes a mask for {@link loadMaskFull} and for the statistics of `data check`: EXIF orientation
 * applied, embedded ICC profile ignored, NO colour conversion (values are labels): per pixel the
 * maximum over the colour channels at the file's native bit depth (palette entries expanded),
 * forced to 0 where the alpha channel is 0 (fully transparent).
 * @throws DataError naming the file when it is missing, empty, truncated or not a decodable image.
 */
export async function decodeMaskValues(file: string): Promise<MaskValues> {
  await checkFile(file, 'mask');
  try {
    const meta = await imageMetadata(file);
    const wide = meta.depth === 'ushort' || meta.depth === 'short';
    // 8-bit: sharp's default output (sRGB, 8-bit) copies grey/palette values unchanged. 16-bit: an
    // explicit 16-bit colour space, otherwise sharp would reduce it to 8 bits first.
    let img = (await openImage(file, { autoOrient: true, ignoreIcc: true })).img;
    if (wide) img = img.toColourspace((meta.channels ?? 1) <= 2 ? 'grey16' : 'rgb16');
    const { data, info } = await img.raw({ depth: wide ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
    const n = info.width * info.height;
    const ch = info.channels;
    const bytes = wide ? 2 : 1;
    if (data.length !== n * ch * bytes) throw new Error(`unexpected decoded layout (${info.width}x${info.height}, ${ch} channels)`);
    const v: ArrayLike<number> = wide ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)) : data;
    const alpha = info.hasAlpha;
    const colour = alpha ? ch - 1 : ch;
    const values = new Uint16Array(n);
    for (let i = 0, j = 0; i < n; i++, j += ch) {
      if (alpha && v[j + ch - 1] === 0) continue;
      let max = 0;
      for (let c = 0; c < colour; c++) if (v[j + c]! > max) max = v[j + c]!;
      values[i] = max;
    }
    const maxValue = wide ? 65535 : 255;
    const lossy = meta.format === 'jpeg';
    const threshold = lossy ? (wide ? JPEG_MASK_THRESHOLD * 257 : JPEG_MASK_THRESHOLD) : 1;
    return { values, width: info.width, height: info.height, maxValue, lossy, threshold };
  } catch (e) {
    throw await decodeErrorChecked(file, 'mask', e);
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

/** Header facts about one image file, as read by {@link probeImageFile}. */
export interface ImageProbe {
  /** The file, as given. */
  path: string;
  /** File size in bytes. */
  bytes: number;
  /** Container format detected from the content (sharp's name: "png", "jpeg", "tiff", "webp", ...). */
  format: string;
  /** Width in pixels AFTER applying the EXIF orientation (what the loaders return). */
  width: number;
  /** Height in pixels AFTER applying the EXIF orientation. */
  height: number;
  /** Channels stored in the file, alpha included (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA or CMYK). */
  channels: number;
  /** Bits per channel sample (8 or 16 usually; a palette PNG may report 1, 2, 4 or 8). */
  bitDepth: number;
  /** libvips colour space name: "b-w" (grey), "srgb", "grey16", "rgb16", "cmyk", ... */
  space: string;
  /** True when the file has an alpha channel. */
  hasAlpha: boolean;
  /** True for palette (indexed colour) images. */
  isPalette: boolean;
  /** EXIF orientation tag 1-8 (1 when absent). */
  orientation: number;
}

const DEPTH_BITS: Readonly<Record<string, number>> = { uchar: 8, char: 8, ushort: 16, short: 16, uint: 32, int: 32, float: 32, double: 64 };

/**
 * Checks whether the end of a PNG/JPEG/GIF/WebP/BMP file looks complete (end marker or declared
 * size present). Returns undefined for formats without a cheap test (TIFF, ...).
 */
async function tailLooksComplete(file: string, format: string, bytes: number): Promise<boolean | undefined> {
  const fh = await fsp.open(file, 'r');
  try {
    const read = async (pos: number, len: number): Promise<Buffer> => {
      const b = Buffer.alloc(Math.max(0, Math.min(len, bytes - pos)));
      if (b.length > 0) await fh.read(b, 0, b.length, pos);
      return b;
    };
    const tail = async (len: number): Promise<Buffer> => read(Math.max(0, bytes - len), len);
    switch (format) {
      case 'png':
        return (await tail(1024)).includes(Buffer.from('IEND', 'latin1'));
      case 'jpeg':
        return (await tail(1024)).includes(Buffer.from([0xff, 0xd9]));
      case 'gif':
        return (await tail(16)).includes(0x3b);
      case 'webp': {
        const h = await read(0, 12);
        return h.length === 12 ? h.readUInt32LE(4) + 8 <= bytes : false;
      }
      case 'bmp': {
        const h = await read(0, 6);
        if (h.length < 6) return false;
        const declared = h.readUInt32LE(2);
        return declared === 0 || declared <= bytes;
      }
      default:
        return undefined;
    }
  } finally {
    await fh.close();
  }
}

/**
 * Reads an image file's header and checks that the file is complete, without decoding the pixels
 * (unless asked to, or unless the cheap completeness test fails).
 *
 * Completeness: PNG must contain its IEND chunk, JPEG its end-of-image marker (FF D9) near the end,
 * GIF its trailer, WebP/BMP at least their declared size. A file failing this test is fully decoded
 * to confirm (a JPEG with trailing bytes after the image passes); TIFF and other formats are only
 * fully checked with `decode: true`.
 * @param file image or mask path.
 * @param opts.kind "image" (default) or "mask": only changes the wording of errors.
 * @param opts.decode also decode every pixel (slower; catches corruption inside the data).
 * @returns header facts; width/height are after EXIF orientation.
 * @throws DataError naming the file when it is missing, not a regular file, empty (0 bytes),
 *   not a decodable image, truncated or corrupt.
 */
export async function probeImageFile(file: string, opts: { kind?: 'image' | 'mask'; decode?: boolean } = {}): Promise<ImageProbe> {
  const kind = opts.kind ?? 'image';
  await checkFile(file, kind);
  const bytes = (await fsp.stat(file)).size;
  let meta: Metadata;
  try {
    meta = await imageMetadata(file);
  } catch (e) {
    throw decodeError(file, kind, e);
  }
  const format = meta.format ?? 'unknown';
  if (meta.width === undefined || meta.height === undefined) throw decodeError(file, kind, new Error('no image size in the header'));
  let complete = await tailLooksComplete(file, format, bytes);
  if (opts.decode || complete === false) {
    try {
      await (await openImage(file)).img.raw().toBuffer();
      complete = true;
    } catch (e) {
      throw truncatedError(file, kind, (e as Error)?.message ?? String(e), e);
    }
  }
  const oriented = meta.autoOrient ?? { width: meta.width, height: meta.height };
  return {
    path: file,
    bytes,
    format,
    width: oriented.width,
    height: oriented.height,
    channels: meta.channels ?? 0,
    bitDepth: meta.isPalette && meta.bitsPerSample !== undefined ? meta.bitsPerSample : DEPTH_BITS[meta.depth ?? 'uchar'] ?? 8,
    space: meta.space ?? 'unknown',
    hasAlpha: meta.hasAlpha ?? false,
    isPalette: meta.isPalette ?? false,
    orientation: meta.orientation ?? 1,
  };
}

/**
 * How a mask of size `mask` lines up with its image of size `image` (both after EXIF orientation):
 * - "same": identical size;
 * - "scaled": different size but the same aspect ratio (within one mask pixel), e.g. a
 *   half-resolution mask: it is ALIGNED by resizing (nearest neighbour), like every mask is resized
 *   to the model input;
 * - "mismatch": the aspect ratios differ, so the mask cannot belong to this image as is: REFUSED
 *   (error in `data check`, DataError from {@link loadMaskForImage}).
 */
export function maskAlignment(mask: { width: number; height: number }, image: { width: number; height: number }): 'same' | 'scaled' | 'mismatch' {
  if (mask.width === image.width && mask.height === image.height) return 'same';
  if (mask.width < 1 || mask.height < 1 || image.width < 1 || image.height < 1) return 'mismatch';
  // Mask height expected from the image's aspect ratio, tolerance one mask pixel of rounding.
  const expectedH = (mask.width * image.height) / image.width;
  const expectedW = (mask.height * image.width) / image.height;
  return Math.abs(expectedH - mask.height) <= 1 && Math.abs(expectedW - mask.width) <= 1 ? 'scaled' : 'mismatch';
}

/**
 * Loads the mask of a given image at the model size, refusing masks that cannot be aligned with
 * their image. Sizes are compared after EXIF orientation (see {@link maskAlignment}): same size or
 * same aspect ratio -> the mask is resized nearest-neighbour to `size x size` exactly as
 * {@link loadMask} does (the image itself is resized to the same square, so they stay aligned);
 * different aspect ratio -> DataError naming both files.
 * @returns Uint8Array `[size, size]` of 0/1 (binarised as in {@link loadMaskFull}).
 * @throws DataError for a missing/corrupt file or an aspect-ratio mismatch.
 */
export async function loadMaskForImage(maskPath: string, imagePath: string, size: number): Promise<Uint8Array> {
  checkSize(size, 'loadMaskForImage');
  const [m, i] = await Promise.all([probeImageFile(maskPath, { kind: 'mask' }), probeImageFile(imagePath, { kind: 'image' })]);
  if (maskAlignment(m, i) === 'mismatch') {
    throw new DataError(
      `Mask ${maskPath} is ${m.width}x${m.height} px but its image ${imagePath} is ${i.width}x${i.height} px: the aspect ratios differ, so the mask cannot be aligned with the image. Check that the mask belongs to this image, then fix or remove it.`,
      maskPath,
    );
  }
  return loadMask(maskPath, size);
}

/** Start of the dataset warning for each file `skipBad` leaves out; `test` and `data check` pick those warnings out by it. */
export const SKIPPED_BAD = 'Skipped bad ';

/** The dataset warning for a file `skipBad` leaves out: {@link SKIPPED_BAD} + kind + the reason. */
export const skippedBadWarning = (kind: 'image' | 'mask', e: DataError): string => `${SKIPPED_BAD}${kind}: ${e.message}`;

/**
 * Probes many files (4 at a time) with {@link probeImageFile} and returns those that fail.
 * Used by the dataset readers' `skipBad` option.
 * @returns map from file path to the DataError describing it (empty when every file is fine).
 */
export async function findBadFiles(files: readonly string[], kind: 'image' | 'mask', decode = false): Promise<Map<string, DataError>> {
  const bad = new Map<string, DataError>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const f = files[next++]!;
      try {
        await probeImageFile(f, { kind, decode });
      } catch (e) {
        if (e instanceof DataError) bad.set(f, e);
        else throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, files.length) }, worker));
  return bad;
}
