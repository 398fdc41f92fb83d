/**
 * Minimal protocol-buffers wire-format writer and reader, enough for ONNX's ModelProto (onnx.proto3 is proto2 syntax:
 * repeated scalars are written unpacked; readers accept both). No dependency: the ONNX messages used are few and
 * their field numbers are listed in src/export/onnx.ts.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

/** Appends protobuf fields to a growing list of byte chunks. */
export class PbWriter {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  get length(): number {
    return this.size;
  }

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.length;
  }

  private rawVarint(v: number | bigint): void {
    let x = typeof v === 'bigint' ? BigInt.asUintN(64, v) : v < 0 ? BigInt.asUintN(64, BigInt(v)) : v;
    const out: number[] = [];
    if (typeof x === 'number') {
      if (!Number.isSafeInteger(x)) throw new RangeError(`protobuf varint: ${x} is not a safe integer`);
      while (x >= 0x80) { out.push((x % 0x80) | 0x80); x = Math.floor(x / 0x80); }
      out.push(x);
    } else {
      while (x >= 0x80n) { out.push(Number(x & 0x7fn) | 0x80); x >>= 7n; }
      out.push(Number(x));
    }
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  /** int32 / int64 / enum / bool field (negative values as 10-byte two's complement, as protobuf's int64). */
  varint(field: number, v: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.rawVarint(v);
    return this;
  }

  /** float field (fixed32, little endian). */
  float(field: number, v: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }

  /** bytes field. */
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_BYTES);
    this.rawVarint(data.length);
    this.push(data);
    return this;
  }

  /** string field (UTF-8). */
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  /** Embedded message field. */
  message(field: number, m: PbWriter): this {
    this.tag(field, WIRE_BYTES);
    this.rawVarint(m.length);
    for (const c of m.chunks) this.push(c);
    return this;
  }

  /** The encoded bytes. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) { out.set(c, o); o += c.length; }
    return out;
  }
}

/** One decoded field: varints as bigint, length-delimited as a byte view, fixed32/64 as raw bytes. */
export interface PbField {
  field: number;
  wire: number;
  varint?: bigint;
  bytes?: Uint8Array;
}

/** Decodes the top-level fields of one message. @throws Error on malformed input. */
export function pbRead(buf: Uint8Array): PbField[] {
  const out: PbField[] = [];
  let p = 0;
  const varint = (): bigint => {
    let r = 0n, shift = 0n;
    for (;;) {
      if (p >= buf.length) throw new Error('protobuf: truncated varint');
      const b = buf[p++]!;
      r |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return r;
      shift += 7n;
      if (shift > 70n) throw new Error('protobuf: varint too long');
    }
  };
  while (p < buf.length) {
    const key = Number(varint());
    const field = key >>> 3, wire = key & 7;
    if (wire === WIRE_VARINT) out.push({ field, wire, varint: varint() });
    else if (wire === WIRE_BYTES) {
      const n = Number(varint());
      if (p + n > buf.length) throw new Error('protobuf: truncated field');
      out.push({ field, wire, bytes: buf.subarray(p, p + n) });
      p += n;
    } else if (wire === WIRE_FIXED32 || wire === WIRE_FIXED64) {
      const n = wire === WIRE_FIXED32 ? 4 : 8;
      out.push({ field, wire, bytes: buf.subarray(p, p + n) });
      p += n;
    } else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
  return out;
}
