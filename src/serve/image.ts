/**
 * Uploaded images: size checks on the header (before anything is decoded), decoding with exactly the rules of
 * `ntsnet predict` (data/image.ts, through a private temporary file, so a file and its upload give identical model
 * inputs), and the optional map outputs (16-bit PNG map, overlay PNG).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { loadImage, loadImageRgb8, type Rgb8Image } from '../data/image.js';
import { encodeMapPng16, maskAndOverlay, type EffectiveThresholds } from '../engine/inspect.js';

/** An HTTP-level problem with a request: status, a stable code and a message that says how to fix it. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(readonly statusCode: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/** Media types accepted as a raw request body (the formats `ntsnet predict` reads). */
export const IMAGE_MEDIA_TYPES = ['image/png', 'image/jpeg', 'image/bmp', 'image/x-ms-bmp', 'image/tiff', 'image/webp', 'image/gif', 'application/octet-stream'] as const;

/** Width and height declared by the image header, without decoding pixels. @throws HttpError 400 when unreadable. */
export async function headerSize(bytes: Buffer): Promise<{ width: number; height: number; format: string }> {
  if (bytes.length >= 26 && bytes[0] === 0x42 && bytes[1] === 0x4d) return { width: bytes.readInt32LE(18), height: Math.abs(bytes.readInt32LE(22)), format: 'bmp' };
  try {
    const m = await sharp(bytes, { limitInputPixels: false }).metadata();
    if (!m.width || !m.height) throw new Error('no image size in the header');
    return { width: m.width, height: m.pages && m.pages > 1 && m.pageHeight ? m.pageHeight : m.height, format: m.format ?? 'unknown' };
  } catch (e) {
    throw new HttpError(400, 'undecodable_image', `The request body is not a decodable image (${(e as Error).message.split('\n')[0]}). Send the bytes of a PNG, JPEG, BMP, TIFF, WebP or GIF file.`);
  }
}

/** A decoded upload: the model input and, when asked for, the 8-bit image at its own size. */
export interface DecodedUpload {
  input: Float32Array;
  width: number;
  height: number;
  rgb?: Rgb8Image;
}

/**
 * Decodes uploads through per-request temporary files in one private folder (removed by {@link close}), with the
 * same decoder as `ntsnet predict`.
 */
export class UploadDecoder {
  private readonly dir = mkdtempSync(path.join(tmpdir(), 'ntsnet-serve-'));
  private n = 0;

  constructor(private readonly maxPixels: number) {}

  /**
   * Checks the declared size, then decodes.
   * @throws HttpError 400 (undecodable or truncated), 413 (more than maxPixels pixels).
   */
  async decode(bytes: Buffer, size: number, keepRgb: boolean): Promise<DecodedUpload> {
    if (!bytes.length) throw new HttpError(400, 'empty_body', 'The request has no image: send the image bytes as the body (Content-Type: image/png, image/jpeg, ...) or as a multipart file field.');
    const h = await headerSize(bytes);
    if (!(h.width > 0 && h.height > 0)) throw new HttpError(400, 'undecodable_image', 'The image header declares no size. Send a valid PNG, JPEG, BMP, TIFF, WebP or GIF file.');
    if (h.width * h.height > this.maxPixels)
      throw new HttpError(413, 'image_too_large', `The image is ${h.width} x ${h.height} = ${(h.width * h.height).toLocaleString('en-US')} pixels, above this service's limit of ${this.maxPixels.toLocaleString('en-US')} pixels (ntsnet serve --max-pixels). Downscale it before sending.`);
    const file = path.join(this.dir, `${process.pid}-${this.n++}.${h.format === 'jpeg' ? 'jpg' : h.format}`);
    await fsp.writeFile(file, bytes);
    try {
      const input = await loadImage(file, size);
      const rgb = keepRgb ? await loadImageRgb8(file) : undefined;
      return { input, width: rgb?.width ?? h.width, height: rgb?.height ?? h.height, rgb };
    } catch (e) {
      const msg = (e as Error).message.split(file).join('(upload)');
      if ((e as { cause?: { name?: string } }).cause?.name === 'PixelLimitError') throw new HttpError(413, 'image_too_large', msg);
      throw new HttpError(400, 'undecodable_image', msg);
    } finally {
      await fsp.rm(file, { force: true });
    }
  }

  /** Removes the temporary folder. */
  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The 16-bit PNG anomaly map at model resolution, as `ntsnet predict` writes `<stem>_map.png`. */
export function mapPng16(map: Float32Array, size: number, th: EffectiveThresholds): Promise<Buffer> {
  return encodeMapPng16(map, size, size, th.fullScale);
}

/** The overlay PNG at the image's own size, as `ntsnet predict` writes `<stem>_overlay.png` (heat map + mask contour). */
export function overlayPng(rgb: Rgb8Image, map: Float32Array, size: number, th: EffectiveThresholds): Promise<Buffer> {
  const { width, height } = rgb;
  const { over } = maskAndOverlay(rgb, map, size, th);
  return sharp(over, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
