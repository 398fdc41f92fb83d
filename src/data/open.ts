/**
 * Opening image files for decoding: one place that knows which formats are read and how.
 *
 * - PNG, JPEG, TIFF, WebP and GIF are decoded by sharp (libvips); GIF and multi-page TIFF use page 1.
 * - BMP (Windows bitmap: 1/4/8-bit palette, 16/24/32-bit, RLE, bottom-up and top-down) is decoded by `bmp-ts`
 *   (libvips in sharp's prebuilt binaries has no BMP loader), then handed to sharp as raw pixels, so every later
 *   step (resize, colour conversion, masks) is the same for every format.
 * - Pixel limit: images above {@link maxInputPixels} pixels (width x height) are refused with a message that states
 *   the limit and how to change it (`NTSNET_MAX_PIXELS`), before anything is decoded.
 */
import { promises as fsp } from 'node:fs';
import { decode as decodeBmp } from 'bmp-ts';
import sharp, { type Metadata, type Sharp, type SharpOptions } from 'sharp';

/** Default pixel limit: sharp's own default (0x3FFF x 0x3FFF = 268,402,689 pixels, e.g. 16383 x 16383). */
export const DEFAULT_MAX_PIXELS = 0x3fff * 0x3fff;

/** The file formats ntsnet decodes, by name (for messages and docs). */
export const SUPPORTED_FORMATS = 'PNG, JPEG, BMP, TIFF, WebP, GIF';

/**
 * Largest accepted image in pixels (width x height): `$NTSNET_MAX_PIXELS` when set to a positive integer, else
 * {@link DEFAULT_MAX_PIXELS}. @throws Error when the variable is set to something else.
 */
export function maxInputPixels(): number {
  const v = process.env.NTSNET_MAX_PIXELS;
  if (v === undefined || v === '') return DEFAULT_MAX_PIXELS;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`NTSNET_MAX_PIXELS must be a positive integer number of pixels (got "${v}").`);
  return n;
}

/** Message for an image above the pixel limit (names the file, its size, the limit and how to change it). */
export function pixelLimitMessage(file: string, width: number, height: number, limit = maxInputPixels()): string {
  return `Image ${file} is ${width} x ${height} = ${(width * height).toLocaleString('en-US')} pixels, above ntsnet's limit of ${limit.toLocaleString('en-US')} pixels ` +
    `(NTSNET_MAX_PIXELS; default ${DEFAULT_MAX_PIXELS.toLocaleString('en-US')}, i.e. 16383 x 16383). Downscale the image, or raise the limit, ` +
    `e.g. NTSNET_MAX_PIXELS=${Math.ceil((width * height) / 1e6) * 1e6} (decoding needs about ${Math.ceil((width * height * 3) / 2 ** 20)} MiB of memory per image).`;
}

/** Raised for an image above the pixel limit; `width` / `height` are the image's. */
export class PixelLimitError extends Error {
  override readonly name = 'PixelLimitError';
  constructor(readonly file: string, readonly width: number, readonly height: number) {
    super(pixelLimitMessage(file, width, height));
  }
}

/** True when the bytes start like a Windows bitmap ("BM"). */
export function looksLikeBmp(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x42 && head[1] === 0x4d;
}

async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await fsp.open(file, 'r');
  try {
    const b = Buffer.alloc(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A decoded BMP as raw 8-bit pixels (RGB, or RGBA when the file has a real alpha channel). */
export interface DecodedBmp {
  data: Buffer;
  width: number;
  height: number;
  channels: 3 | 4;
  /** Bits per pixel stored in the file (1, 4, 8, 16, 24, 32). */
  bitsPerPixel: number;
  /** True for 1/4/8-bit (palette) files. */
  isPalette: boolean;
}

/**
 * Decodes a BMP file with bmp-ts. 32-bit files keep their alpha channel unless it is 0 everywhere (the "reserved"
 * byte of BI_RGB files), which means opaque.
 * @throws Error (bmp-ts's message, or "truncated") when the file is not a decodable BMP.
 */
export async function decodeBmpFile(file: string): Promise<DecodedBmp> {
  const buf = await fsp.readFile(file);
  const limit = maxInputPixels();
  const declared = buf.length >= 6 ? buf.readUInt32LE(2) : 0;
  if (buf.length < 54 || (declared > 0 && declared > buf.length)) throw new Error(`truncated BMP file (${buf.length} bytes${declared ? `, its header declares ${declared}` : ''})`);
  if (buf.length >= 26) {
    const w = buf.readInt32LE(18), h = Math.abs(buf.readInt32LE(22));
    if (w > 0 && h > 0 && w * h > limit) throw new PixelLimitError(file, w, h);
  }
  let img;
  try {
    img = decodeBmp(buf); // ABGR byte order (bmp-ts's toRGBA mode mis-decodes palette files)
  } catch (e) {
    throw new Error(`not a decodable BMP file (${(e as Error).message || 'truncated'})`);
  }
  const { width, height } = img;
  const bpp = img.bitPP ?? 24;
  const n = width * height;
  if (!(width > 0 && height > 0) || img.data.length < n * 4) throw new Error('not a decodable BMP file (bad size)');
  let hasAlpha = false;
  if (bpp === 32) for (let i = 0; i < n && !hasAlpha; i++) if (img.data[i * 4]! !== 0) hasAlpha = true;
  const channels = hasAlpha ? 4 : 3;
  const data = Buffer.alloc(n * channels);
  for (let i = 0, j = 0; i < n; i++, j += channels) {
    data[j] = img.data[i * 4 + 3]!;
    data[j + 1] = img.data[i * 4 + 2]!;
    data[j + 2] = img.data[i * 4 + 1]!;
    if (hasAlpha) data[j + 3] = img.data[i * 4]!;
  }
  return { data, width, height, channels, bitsPerPixel: bpp, isPalette: bpp <= 8 };
}

/** libvips sample formats that do not convert to 8-bit RGB without a value range ntsnet cannot know. */
const UNSUPPORTED_DEPTHS: Readonly<Record<string, string>> = {
  float: '32-bit floating-point', double: '64-bit floating-point', complex: 'complex', dpcomplex: 'complex', uint: '32-bit integer', int: '32-bit integer',
};

/** An opened image: a sharp pipeline, and for BMP files the facts sharp cannot report for raw input. */
export interface OpenedImage {
  img: Sharp;
  /** Set for BMP files (decoded by bmp-ts). */
  bmp?: DecodedBmp;
}

/**
 * Opens an image file as a sharp pipeline with the pixel limit applied: BMP through {@link decodeBmpFile}, any
 * other format directly. @throws PixelLimitError above the limit; Error when a BMP cannot be decoded.
 */
export async function openImage(file: string, options: SharpOptions = {}): Promise<OpenedImage> {
  const limit = maxInputPixels();
  if (looksLikeBmp(await readHead(file, 2))) {
    const bmp = await decodeBmpFile(file);
    return { img: sharp(bmp.data, { raw: { width: bmp.width, height: bmp.height, channels: bmp.channels }, limitInputPixels: limit }), bmp };
  }
  // Header only (cheap): refuse an oversized image with a clear message before anything is decoded.
  const meta = await sharp(file, { limitInputPixels: false }).metadata();
  if (meta.width !== undefined && meta.height !== undefined && meta.width * meta.height > limit) throw new PixelLimitError(file, meta.width, meta.height);
  // libvips would cast float / 32-bit samples to 8 bits by clipping (0..1 floats become a black image): refuse instead.
  const bits = UNSUPPORTED_DEPTHS[meta.depth ?? ''];
  if (bits) throw new Error(`it holds ${bits} samples; ntsnet reads 8- and 16-bit integer images only (their values are not rescaled), and casting these would silently give a wrong, e.g. black, image. Convert it to an 8- or 16-bit PNG or TIFF with the value range you mean (e.g. 0..1 floats scaled to 0..65535)`);
  return { img: sharp(file, { ...options, limitInputPixels: limit }) };
}

/**
 * Header facts of an image file (sharp's metadata; for BMP, the same fields filled from the decoded file).
 * @throws PixelLimitError when the image is above the limit; Error when it is not a decodable image.
 */
export async function imageMetadata(file: string): Promise<Metadata> {
  const { img, bmp } = await openImage(file);
  const meta = await img.metadata();
  if (bmp) {
    return { ...meta, format: 'bmp' as Metadata['format'], channels: bmp.isPalette ? 3 : bmp.channels, isPalette: bmp.isPalette, bitsPerSample: bmp.bitsPerPixel <= 8 ? bmp.bitsPerPixel : 8, hasAlpha: bmp.channels === 4, space: 'srgb' };
  }
  if (meta.width !== undefined && meta.height !== undefined && meta.width * meta.height > maxInputPixels()) throw new PixelLimitError(file, meta.width, meta.height);
  return meta;
}
