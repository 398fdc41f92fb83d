import { readFile } from 'node:fs/promises';

/** One tensor read from a weights file, in the file's own layout (PyTorch: NCHW / OIHW). */
export interface RawTensor {
  /** Shape as stored, e.g. [out, in, kh, kw] for a torchvision convolution. */
  shape: number[];
  /** Values as float32, row-major. */
  data: Float32Array;
}

/** A named set of raw tensors (state dict). */
export type RawStateDict = Map<string, RawTensor>;

const DTYPE_BYTES: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1 };

function halfToFloat(h: number): number {
  const s = (h & 0x8000) >> 15, e = (h & 0x7c00) >> 10, f = h & 0x03ff;
  if (e === 0) return (s ? -1 : 1) * 2 ** -14 * (f / 1024);
  if (e === 0x1f) return f ? NaN : (s ? -1 : 1) * Infinity;
  return (s ? -1 : 1) * 2 ** (e - 15) * (1 + f / 1024);
}

/**
 * Parses a safetensors buffer (https://github.com/huggingface/safetensors, format: u64 little-endian
 * header length, JSON header, raw little-endian data). Every tensor is converted to float32.
 * @param source - file name used in error messages.
 * @throws Error naming `source` if the buffer is not a valid safetensors file.
 */
export function parseSafetensors(buf: Buffer, source = '<buffer>'): RawStateDict {
  const bad = (why: string): Error => new Error(`${source}: not a valid safetensors file (${why}).`);
  if (buf.length < 8) throw bad('shorter than 8 bytes');
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen <= 0 || 8 + headerLen > buf.length) throw bad('header length out of range');
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  } catch {
    throw bad('header is not JSON');
  }
  const base = 8 + headerLen;
  const out: RawStateDict = new Map();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const width = DTYPE_BYTES[info.dtype];
    if (width === undefined) throw bad(`tensor ${name} has unsupported dtype ${info.dtype}`);
    const [begin, end] = info.data_offsets;
    const n = info.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== n * width || base + end > buf.length) throw bad(`tensor ${name} has inconsistent offsets`);
    const bytes = buf.subarray(base + begin, base + end);
    const data = new Float32Array(n);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) {
      switch (info.dtype) {
        case 'F32': data[i] = dv.getFloat32(i * 4, true); break;
        case 'F64': data[i] = dv.getFloat64(i * 8, true); break;
        case 'F16': data[i] = halfToFloat(dv.getUint16(i * 2, true)); break;
        case 'BF16': data[i] = new Float32Array(new Uint32Array([dv.getUint16(i * 2, true) << 16]).buffer)[0]!; break;
        case 'I64': data[i] = Number(dv.getBigInt64(i * 8, true)); break;
        case 'I32': data[i] = dv.getInt32(i * 4, true); break;
        default: data[i] = dv.getUint8(i); break;
      }
    }
    out.set(name, { shape: info.shape, data });
  }
  return out;
}

/** Reads a safetensors file; see {@link parseSafetensors}. @throws Error naming the file if unreadable or invalid. */
export async function readSafetensors(path: string): Promise<RawStateDict> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new Error(`Cannot read weights file ${path}: ${(e as Error).message}`);
  }
  return parseSafetensors(buf, path);
}

/**
 * Serialises float32 tensors as safetensors bytes (keys sorted, F32, little-endian).
 * @param metadata - optional string map stored under `__metadata__`.
 */
export function serializeSafetensors(tensors: RawStateDict, metadata?: Record<string, string>): Buffer {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header so the data starts 8-byte aligned, as the reference implementation does.
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const headerBuf = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBuf.length + offset);
  out.writeBigUInt64LE(BigInt(headerBuf.length), 0);
  headerBuf.copy(out, 8);
  let pos = 8 + headerBuf.length;
  for (const name of names) {
    const t = tensors.get(name)!;
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
  }
  return out;
}
