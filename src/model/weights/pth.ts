import { readFile } from 'node:fs/promises';
import type { RawStateDict, RawTensor } from './safetensors.js';

// Reader for PyTorch checkpoints written by `torch.save` in the zip format (torch >= 1.6):
// a stored (uncompressed) zip archive holding `<prefix>/data.pkl` (a pickle of the object, tensors
// referring to storages by persistent id) and `<prefix>/data/<key>` (raw storages, little-endian).
// Only what state dicts need is implemented: a small pickle virtual machine plus a few torch globals.

/** Byte width and decoder of each torch storage class, by class name. */
const STORAGES: Record<string, { width: number; get: (dv: DataView, i: number, le: boolean) => number }> = {
  FloatStorage: { width: 4, get: (dv, i, le) => dv.getFloat32(i * 4, le) },
  DoubleStorage: { width: 8, get: (dv, i, le) => dv.getFloat64(i * 8, le) },
  HalfStorage: { width: 2, get: (dv, i, le) => halfToFloat(dv.getUint16(i * 2, le)) },
  BFloat16Storage: { width: 2, get: (dv, i, le) => bf16ToFloat(dv.getUint16(i * 2, le)) },
  LongStorage: { width: 8, get: (dv, i, le) => Number(dv.getBigInt64(i * 8, le)) },
  IntStorage: { width: 4, get: (dv, i, le) => dv.getInt32(i * 4, le) },
  ShortStorage: { width: 2, get: (dv, i, le) => dv.getInt16(i * 2, le) },
  CharStorage: { width: 1, get: (dv, i) => dv.getInt8(i) },
  ByteStorage: { width: 1, get: (dv, i) => dv.getUint8(i) },
  BoolStorage: { width: 1, get: (dv, i) => (dv.getUint8(i) ? 1 : 0) },
};

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h & 0x7c00) >> 10, f = h & 0x03ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 0x1f) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

const bf16Scratch = new DataView(new ArrayBuffer(4));
function bf16ToFloat(h: number): number {
  bf16Scratch.setUint32(0, h << 16);
  return bf16Scratch.getFloat32(0);
}

// ---------------------------------------------------------------------------------------------
// Zip (central directory only; stored entries, optional ZIP64 fields)

interface ZipEntry { offset: number; size: number; method: number }

function readZipDirectory(buf: Buffer, bad: (why: string) => Error): Map<string, ZipEntry> {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw bad('zip end-of-central-directory record not found; the file is truncated or corrupt');
  let count = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if ((count === 0xffff || cdOffset === 0xffffffff) && eocd >= 20 && buf.readUInt32LE(eocd - 20) === 0x07064b50) {
    const z64 = Number(buf.readBigUInt64LE(eocd - 20 + 8));
    if (z64 + 56 > buf.length || buf.readUInt32LE(z64) !== 0x06064b50) throw bad('bad ZIP64 end-of-central-directory record');
    count = Number(buf.readBigUInt64LE(z64 + 32));
    cdOffset = Number(buf.readBigUInt64LE(z64 + 48));
  }
  const entries = new Map<string, ZipEntry>();
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw bad('corrupt zip central directory');
    const method = buf.readUInt16LE(p + 10);
    let size = buf.readUInt32LE(p + 20);
    let uncompressed = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28), extraLen = buf.readUInt16LE(p + 30), commentLen = buf.readUInt16LE(p + 32);
    let local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    // ZIP64 extended information: the 64-bit values present are those whose 32-bit field is 0xffffffff.
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen;) {
      const id = buf.readUInt16LE(e), len = buf.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (uncompressed === 0xffffffff) { uncompressed = Number(buf.readBigUInt64LE(q)); q += 8; }
        if (size === 0xffffffff) { size = Number(buf.readBigUInt64LE(q)); q += 8; }
        if (local === 0xffffffff) { local = Number(buf.readBigUInt64LE(q)); }
      }
      e += 4 + len;
    }
    if (local + 30 > buf.length || buf.readUInt32LE(local) !== 0x04034b50) throw bad(`corrupt zip local header for ${name}`);
    const offset = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    if (offset + size > buf.length) throw bad(`zip entry ${name} extends past the end of the file (truncated download?)`);
    entries.set(name, { offset, size, method });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Pickle

class Global { constructor(readonly module: string, readonly name: string) {} get full(): string { return `${this.module}.${this.name}`; } }
class StorageRef { constructor(readonly cls: string, readonly key: string, readonly numel: number) {} }
class TensorRef { constructor(readonly storage: StorageRef, readonly offset: number, readonly size: number[], readonly stride: number[]) {} }
/** An instance of an unsupported class that only appears as an opaque marker (e.g. `torch.Tensor` type). */
class Opaque { constructor(readonly cls: Global) {} }

type Callable = (args: unknown[]) => unknown;

function asInts(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new Error(`${what} is not a tuple of ints`);
  return v as number[];
}

function rebuildTensor(args: unknown[]): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef) || typeof offset !== 'number') throw new Error('_rebuild_tensor: bad arguments');
  return new TensorRef(storage, offset, asInts(size, 'tensor size'), asInts(stride, 'tensor stride'));
}

const CALLABLES: Record<string, Callable> = {
  'collections.OrderedDict': (args) => new Map(Array.isArray(args[0]) ? (args[0] as [unknown, unknown][]) : []),
  'builtins.dict': () => new Map(),
  'torch._utils._rebuild_tensor_v2': rebuildTensor,
  'torch._utils._rebuild_tensor': rebuildTensor,
  'torch._utils._rebuild_parameter': (args) => args[0],
  'torch._utils._rebuild_parameter_with_state': (args) => args[0],
  'torch._tensor._rebuild_from_type_v2': (args) => call(args[0], asArray(args[2])),
};
/** Globals accepted only as values (never called): tensor types passed to `_rebuild_from_type_v2`. */
const TYPE_GLOBALS = new Set(['torch.Tensor', 'torch.nn.parameter.Parameter']);

function asArray(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw new Error('expected a tuple');
  return v;
}

function call(fn: unknown, args: unknown[]): unknown {
  if (!(fn instanceof Global)) throw new Error('REDUCE on a non-callable object');
  const f = CALLABLES[fn.full];
  if (f) return f(args);
  if (TYPE_GLOBALS.has(fn.full)) return new Opaque(fn);
  throw new Error(`unsupported pickle global '${fn.full}' (called)`);
}

/** Runs the pickle program in `buf` (protocols 0-5 opcodes that torch.save emits). */
function unpickle(buf: Buffer, persistentLoad: (pid: unknown) => unknown, fail: (why: string) => Error): unknown {
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const need = (n: number): void => { if (p + n > buf.length) throw fail('data.pkl ends unexpectedly (truncated)'); };
  const u8 = (): number => { need(1); return buf[p++]!; };
  const u16 = (): number => { need(2); p += 2; return buf.readUInt16LE(p - 2); };
  const u32 = (): number => { need(4); p += 4; return buf.readUInt32LE(p - 4); };
  const u64 = (): number => { need(8); p += 8; return Number(buf.readBigUInt64LE(p - 8)); };
  const bytes = (n: number): Buffer => { need(n); p += n; return buf.subarray(p - n, p); };
  const line = (): string => { const e = buf.indexOf(0x0a, p); if (e < 0) throw fail('data.pkl ends unexpectedly'); const s = buf.toString('latin1', p, e); p = e + 1; return s; };
  const pop = (): unknown => { if (stack.length === 0) throw fail('pickle stack underflow'); return stack.pop(); };
  const top = (): unknown => { if (stack.length === 0) throw fail('pickle stack underflow'); return stack[stack.length - 1]; };
  const popMark = (): unknown[] => { const m = marks.pop(); if (m === undefined) throw fail('pickle MARK missing'); return stack.splice(m); };
  const signedLE = (b: Buffer): number => {
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b.length > 0 && b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return Number(v);
  };
  const global = (module: string, name: string): Global => {
    const g = new Global(module, name);
    const storage = module === 'torch' && name in STORAGES;
    if (!storage && !(g.full in CALLABLES) && !TYPE_GLOBALS.has(g.full)) {
      throw fail(`unsupported pickle global '${g.full}' (only PyTorch state dicts of tensors can be read; save model.state_dict() rather than the model object)`);
    }
    return g;
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Map)) throw fail('SETITEMS on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x8f: stack.push([]); break; // EMPTY_SET (as a list)
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET / LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) throw fail(`pickle memo key ${k} missing`);
        stack.push(memo.get(k));
        break;
      }
      case 0x8c: stack.push(bytes(u8()).toString('utf8')); break; // SHORT_BINUNICODE
      case 0x58: stack.push(bytes(u32()).toString('utf8')); break; // BINUNICODE
      case 0x8d: stack.push(bytes(u64()).toString('utf8')); break; // BINUNICODE8
      case 0x55: stack.push(bytes(u8()).toString('latin1')); break; // SHORT_BINSTRING
      case 0x54: stack.push(bytes(u32()).toString('latin1')); break; // BINSTRING
      case 0x43: stack.push(Uint8Array.from(bytes(u8()))); break; // SHORT_BINBYTES
      case 0x42: stack.push(Uint8Array.from(bytes(u32()))); break; // BINBYTES
      case 0x8e: stack.push(Uint8Array.from(bytes(u64()))); break; // BINBYTES8
      case 0x4a: stack.push(bytes(4).readInt32LE(0)); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(signedLE(bytes(u8()))); break; // LONG1
      case 0x8b: stack.push(signedLE(bytes(u32()))); break; // LONG4
      case 0x47: stack.push(bytes(8).readDoubleBE(0)); break; // BINFLOAT
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x4e: stack.push(null); break; // NONE
      case 0x63: { const m = line(); stack.push(global(m, line())); break; } // GLOBAL
      case 0x93: { const n = pop(), m = pop(); stack.push(global(String(m), String(n))); break; } // STACK_GLOBAL
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { const items = popMark(); const d = new Map(); setItems(d, items); stack.push(d); break; } // DICT
      case 0x51: stack.push(persistentLoad(pop())); break; // BINPERSID
      case 0x52: case 0x81: { // REDUCE / NEWOBJ
        const args = pop(), fn = pop();
        try { stack.push(call(fn, asArray(args))); } catch (e) { throw fail((e as Error).message); }
        break;
      }
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) throw fail('APPEND on a non-list'); l.push(v); break; } // APPEND
      case 0x65: case 0x90: { // APPENDS / ADDITEMS
        const items = popMark(); const l = top();
        if (!Array.isArray(l)) throw fail('APPENDS on a non-list');
        l.push(...items);
        break;
      }
      case 0x91: stack.push(popMark()); break; // FROZENSET
      case 0x62: pop(); break; // BUILD: object state (e.g. OrderedDict._metadata) is not needed
      case 0x32: stack.push(top()); break; // DUP
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x2e: return pop(); // STOP
      default:
        throw fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${p - 1} of data.pkl`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tensors

function gather(t: TensorRef, storage: Float32Array, name: string, fail: (why: string) => Error): RawTensor {
  const { size, stride, offset } = t;
  if (size.length !== stride.length) throw fail(`tensor ${name}: size and stride ranks differ`);
  const n = size.reduce((a, b) => a * b, 1);
  const shape = [...size];
  if (n === 0) return { shape, data: new Float32Array(0) };
  let last = offset;
  for (let d = 0; d < size.length; d++) last += (size[d]! - 1) * stride[d]!;
  if (offset < 0 || last >= storage.length || size.some((s) => s < 0) || stride.some((s) => s < 0)) {
    throw fail(`tensor ${name} (size [${size}], stride [${stride}], offset ${offset}) lies outside its storage of ${storage.length} elements`);
  }
  let contiguous = true;
  for (let d = size.length - 1, expect = 1; d >= 0; d--) {
    if (size[d]! !== 1 && stride[d]! !== expect) contiguous = false;
    expect *= size[d]!;
  }
  if (contiguous) return { shape, data: storage.slice(offset, offset + n) };
  const data = new Float32Array(n);
  const idx = new Array<number>(size.length).fill(0);
  let src = offset;
  for (let i = 0; i < n; i++) {
    data[i] = storage[src]!;
    for (let d = size.length - 1; d >= 0; d--) {
      if (++idx[d]! < size[d]!) { src += stride[d]!; break; }
      src -= (size[d]! - 1) * stride[d]!;
      idx[d] = 0;
    }
  }
  return { shape, data };
}

/** Picks the state dict inside a checkpoint object: itself, or its `state_dict` / `model` entry. */
function selectStateDict(obj: unknown, fail: (why: string) => Error): Map<unknown, unknown> {
  if (!(obj instanceof Map)) throw fail('the checkpoint is not a dict of tensors');
  for (const key of ['state_dict', 'model']) {
    const inner = obj.get(key);
    if (inner instanceof Map && [...inner.values()].some((v) => v instanceof TensorRef)) return inner;
  }
  if (![...obj.values()].some((v) => v instanceof TensorRef)) {
    throw fail(`no tensors found at the top level or under 'state_dict'/'model' (top-level keys: ${[...obj.keys()].slice(0, 10).join(', ')})`);
  }
  return obj;
}

/** PyTorch's legacy (pre-1.6) serialisation starts with a pickled magic number (protocol 2, LONG1). */
function isLegacyPth(buf: Buffer): boolean {
  return buf.length >= 2 && buf[0] === 0x80 && buf[1]! <= 5;
}

/**
 * Parses a PyTorch zip checkpoint held in memory; see {@link readPth}.
 * @param source - file name used in error messages.
 * @throws Error naming `source` for legacy/non-zip files, truncated or corrupt archives, compressed
 *   entries, unsupported pickle opcodes/globals, or tensors that do not fit their storage.
 */
export function parsePth(buf: Buffer, source = '<buffer>'): RawStateDict {
  const fail = (why: string): Error => new Error(`${source}: cannot read PyTorch checkpoint: ${why}.`);
  if (buf.length < 4 || buf.readUInt32LE(0) !== 0x04034b50) {
    if (isLegacyPth(buf)) {
      throw fail('this is a legacy (pre-1.6, non-zip) PyTorch file, which is not supported. Fix: re-save it with torch>=1.6 ' +
        '(torch.save(torch.load(PATH), NEW_PATH)) or convert it to safetensors (safetensors.torch.save_file)');
    }
    throw fail('not a zip archive (expected a torch.save file written by torch>=1.6, or a .safetensors file)');
  }
  const entries = readZipDirectory(buf, fail);
  const pklName = [...entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pklName) throw fail('the zip archive has no <name>/data.pkl record (not a torch.save checkpoint)');
  const prefix = pklName.slice(0, -'data.pkl'.length);
  const record = (name: string): Buffer => {
    const e = entries.get(prefix + name);
    if (!e) throw fail(`record ${prefix + name} is missing`);
    if (e.method !== 0) throw fail(`record ${prefix + name} is compressed (method ${e.method}); torch.save writes stored entries only`);
    return buf.subarray(e.offset, e.offset + e.size);
  };
  const byteorder = entries.has(prefix + 'byteorder') ? record('byteorder').toString('latin1').trim() : 'little';
  if (byteorder !== 'little' && byteorder !== 'big') throw fail(`unknown byteorder '${byteorder}'`);
  const le = byteorder === 'little';

  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: unknown): StorageRef => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof Global)) throw fail('unsupported persistent id in data.pkl');
    const cls = pid[1].name, key = String(pid[2]), numel = Number(pid[4]);
    if (!(cls in STORAGES) || pid[1].module !== 'torch') throw fail(`unsupported storage type '${pid[1].full}'`);
    let s = storages.get(key);
    if (!s) { s = new StorageRef(cls, key, numel); storages.set(key, s); }
    return s;
  };
  const root = unpickle(record('data.pkl'), persistentLoad, fail);
  const dict = selectStateDict(root, fail);

  const decoded = new Map<string, Float32Array>();
  const decode = (s: StorageRef): Float32Array => {
    let out = decoded.get(s.key);
    if (out) return out;
    const { width, get } = STORAGES[s.cls]!;
    const bytes = record(`data/${s.key}`);
    if (bytes.length < s.numel * width) throw fail(`storage data/${s.key} holds ${bytes.length} bytes, expected ${s.numel * width}`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    out = new Float32Array(s.numel);
    if (s.cls === 'FloatStorage' && le && bytes.byteOffset % 4 === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, s.numel));
    else for (let i = 0; i < s.numel; i++) out[i] = get(dv, i, le);
    decoded.set(s.key, out);
    return out;
  };
  const out: RawStateDict = new Map();
  for (const [k, v] of dict) {
    if (!(v instanceof TensorRef)) continue; // non-tensor entries (e.g. extra state) are not weights
    if (typeof k !== 'string') throw fail('state dict has a non-string key');
    out.set(k, gather(v, decode(v.storage), k, fail));
  }
  return out;
}

/**
 * Reads a PyTorch checkpoint written by `torch.save` in the zip format (torch >= 1.6): a state dict
 * (`OrderedDict` of tensors), or a dict holding one under `state_dict` or `model`. Storage offsets,
 * strides (views, transposes) and shared storages are honoured; every dtype (float16/bfloat16/float64,
 * int64 `num_batches_tracked`, ...) is converted to float32. Non-tensor entries are skipped.
 * @throws Error naming `path` if the file cannot be read, is a legacy (pre-1.6) checkpoint, is truncated
 *   or corrupt, or uses a pickle opcode or global outside what state dicts need.
 */
export async function readPth(path: string): Promise<RawStateDict> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new Error(`Cannot read weights file ${path}: ${(e as Error).message}`);
  }
  return parsePth(buf, path);
}
