import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, readFile, realpath, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, extname, join, resolve as resolvePath } from 'node:path';
import { parsePth } from './pth.js';
import { parseSafetensors, serializeSafetensors, type RawStateDict } from './safetensors.js';

/** torchvision ResNet18 IMAGENET1K_V1 weights (the standard online location). */
export const RESNET18_URL = 'https://download.pytorch.org/models/resnet18-f37072fd.pth';
/** File name of those weights; torchvision names files after the first 8 hex digits of their SHA-256. */
export const RESNET18_FILE = 'resnet18-f37072fd.pth';
/** Name of the same weights converted by {@link convertToSafetensors}. */
export const RESNET18_SAFETENSORS_FILE = 'resnet18-f37072fd.safetensors';
/** SHA-256 prefix of the genuine IMAGENET1K_V1 file. */
export const RESNET18_SHA256_PREFIX = 'f37072fd';

/** Which form of torchvision's ImageNet ResNet18 a teacher file holds (see ../shared/weights/README.md). */
export type TeacherForm = 'torchvision-full' | 'imagenet-trunk' | 'imagenet-trunk-bnfolded' | 'unknown' | 'random';

/** What a teacher is: recorded in every checkpoint, results.json, report and benchmark output. */
export interface TeacherIdentity {
  /** File name only (never an absolute path), or `random`. */
  source: string;
  /** SHA-256 (hex) of the file, null for a random teacher. */
  sha256: string | null;
  /** True for torchvision's ImageNet ResNet18 in any known form (full file, re-split or folded trunk). */
  imagenet: boolean;
  /** Which known file it is; `unknown` for a file whose SHA-256 is not one of them. Absent in older checkpoints. */
  form?: TeacherForm;
  /** One-line description for people. */
  description?: string;
}

/**
 * The known ImageNet teacher files, by SHA-256 (../shared/weights/README.md): the trunk of torchvision's
 * IMAGENET1K_V1 ResNet18 (conv1..layer3) with its BatchNorms re-split from the folded ONNX export (recommended),
 * the same tensors as a .pth, and the raw BatchNorm-folded trunk.
 */
export const KNOWN_TEACHER_FILES: ReadonlyMap<string, { form: TeacherForm; description: string }> = new Map([
  ['45516f2c25137e4a5323eca977b6bfd0b8f9996220b7a84a839b59fe20771054', { form: 'imagenet-trunk', description: 'ImageNet ResNet18 trunk, BatchNorm re-split (resnet18-imagenet-trunk.safetensors)' }],
  ['cb26164b8330eafe33ad1f5b4a16cabaf530de2e9eb66662cd758bc4f5c67ad7', { form: 'imagenet-trunk', description: 'ImageNet ResNet18 trunk, BatchNorm re-split (resnet18-imagenet-trunk.pth)' }],
  ['df5e017b2ede4163921eb01ade42ae3583b0b59470e163acbad6bc7e2d24931a', { form: 'imagenet-trunk-bnfolded', description: 'ImageNet ResNet18 trunk, BatchNorm folded (resnet18-imagenet-trunk-bnfolded.safetensors)' }],
]);

/** File name of the recommended teacher (the re-split trunk); see ../shared/weights/README.md. */
export const TRUNK_FILE = 'resnet18-imagenet-trunk.safetensors';
/** Environment variable naming a teacher weights file (after --teacher-weights, before the cache folder). */
export const TEACHER_WEIGHTS_ENV = 'NTSNET_TEACHER_WEIGHTS';

/**
 * Identifies a teacher file by its SHA-256 (and, for converted safetensors, the SHA-256 of its source file).
 * @returns form `torchvision-full` for torchvision's resnet18-f37072fd.pth (or a conversion of it), the known trunk
 *   forms, else `unknown`.
 */
export function identifyTeacher(sha256: string, sourceSha256: string | undefined, file: string): TeacherIdentity {
  const source = basename(file);
  for (const h of [sha256, sourceSha256]) {
    if (!h) continue;
    const known = KNOWN_TEACHER_FILES.get(h.toLowerCase());
    if (known) return { source, sha256, imagenet: true, form: known.form, description: known.description };
    if (isImagenetSha256(h)) return { source, sha256, imagenet: true, form: 'torchvision-full', description: `torchvision ResNet18 IMAGENET1K_V1 (${source})` };
  }
  return { source, sha256, imagenet: false, form: 'unknown', description: `unrecognised weights ${source} (SHA-256 ${sha256.slice(0, 16)}...)` };
}

/** Identity of the seeded random teacher (tests, and runs that chose `--teacher random` knowingly). */
export const RANDOM_TEACHER: TeacherIdentity = { source: 'random', sha256: null, imagenet: false, form: 'random', description: 'seeded random ResNet18 (not ImageNet)' };

/** Short human label of a teacher for tables and titles. */
export function teacherLabel(t: Pick<TeacherIdentity, 'imagenet' | 'source' | 'form'>): string {
  if (t.form === 'imagenet-trunk') return 'ImageNet ResNet18 (trunk)';
  if (t.form === 'imagenet-trunk-bnfolded') return 'ImageNet ResNet18 (BN-folded trunk)';
  if (t.imagenet) return 'ImageNet ResNet18';
  return t.source === 'random' ? 'random ResNet18' : t.source;
}

/**
 * Refuses the BatchNorm-folded trunk with a teacher norm that replaces the teacher's statistics (`eman`, `self_ema`):
 * folding merged statistics and affine parameters into the convolution, so moving "statistics" of an identity
 * BatchNorm is not the operation the method defines.
 * @throws Error naming the file and the re-split file to use instead.
 */
export function checkTeacherForNorm(t: Pick<TeacherIdentity, 'form' | 'source'>, teacherNorm: string): void {
  if (t.form !== 'imagenet-trunk-bnfolded' || teacherNorm === 'frozen_bn') return;
  throw new Error(
    `${t.source} is the BatchNorm-FOLDED ImageNet trunk: its BatchNorms are identities with the statistics folded into the ` +
      `convolutions, so --teacher-norm ${teacherNorm} (which replaces the teacher's BatchNorm statistics) is not defined for it.\n` +
      `  Fix: use the re-split trunk ${TRUNK_FILE} (same network, statistics and affine parameters separate; ` +
      `../shared/weights/${TRUNK_FILE}), or --teacher-norm frozen_bn with the folded file.`,
  );
}

/** Options of {@link resolveResnet18Weights}. */
export interface ResolveWeightsOptions {
  /** Explicit weights file (.pth from torch>=1.6, or .safetensors); when set, nothing else is tried. */
  path?: string;
  /** Folder holding cached weight files (default: `${NTSNET_CACHE ?? ~/.cache/ntsnet}/weights`). */
  cacheDir?: string;
  /** Download {@link RESNET18_URL} into the cache folder when nothing is found (default true). */
  download?: boolean;
  /** Receives human-readable progress and warning lines. */
  onProgress?: (msg: string) => void;
}

/** Weights found by {@link resolveResnet18Weights}. */
export interface ResolvedWeights {
  /** State dict with `module.` / `backbone.` / `model.` prefixes removed; validated for the trunk up to layer3. */
  state: RawStateDict;
  /** Path of the file read. */
  source: string;
  /** SHA-256 (hex) of that file. */
  sha256: string;
  /** True for torchvision's ImageNet ResNet18 in a known form (see {@link identifyTeacher}). */
  imagenet: boolean;
  /** What the file is, by SHA-256. */
  identity: TeacherIdentity;
}

/** Contents of a weights file as read by {@link readWeightsFile}. */
export interface WeightsFile {
  state: RawStateDict;
  format: 'pth' | 'safetensors';
  /** SHA-256 (hex) of the file itself. */
  sha256: string;
  /** For safetensors converted from a .pth: SHA-256 of that original file (`__metadata__.source_sha256`). */
  sourceSha256?: string;
}

/** Default cache folder for weight files: `${NTSNET_CACHE ?? ~/.cache/ntsnet}/weights`. */
export function defaultWeightsCacheDir(): string {
  return join(process.env.NTSNET_CACHE || join(homedir(), '.cache', 'ntsnet'), 'weights');
}

/** True when `sha256` (hex) is that of the genuine torchvision ResNet18 IMAGENET1K_V1 file. */
export function isImagenetSha256(sha256: string | undefined): boolean {
  return typeof sha256 === 'string' && /^[0-9a-f]{64}$/i.test(sha256) && sha256.toLowerCase().startsWith(RESNET18_SHA256_PREFIX);
}

/** SHA-256 (lower-case hex) of a file, streamed. @throws Error naming the file if it cannot be read. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (e) {
    throw new Error(`Cannot read ${path}: ${(e as Error).message}`);
  }
  return hash.digest('hex');
}

function safetensorsMetadata(buf: Buffer): Record<string, string> {
  try {
    const len = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as { __metadata__?: Record<string, string> };
    return header.__metadata__ ?? {};
  } catch {
    return {};
  }
}

/**
 * Reads a weights file, detecting the format by magic bytes: a safetensors header (u64 length, then `{`) is read
 * as safetensors; a zip (`PK\x03\x04`) or anything else not named `.safetensors` as a PyTorch checkpoint ({@link parsePth}).
 * @throws Error naming the file if it is missing, unreadable, corrupt or in an unsupported format.
 */
export async function readWeightsFile(path: string): Promise<WeightsFile> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new Error(`Cannot read weights file ${path}: ${(e as Error).message}`);
  }
  const sha256 = createHash('sha256').update(buf).digest('hex');
  const zip = buf.length >= 4 && buf.readUInt32LE(0) === 0x04034b50;
  const safetensors = !zip && buf.length > 8 && buf[8] === 0x7b && Number(buf.readBigUInt64LE(0)) + 8 <= buf.length;
  if (!safetensors && (zip || extname(path).toLowerCase() !== '.safetensors')) {
    return { state: parsePth(buf, path), format: 'pth', sha256 };
  }
  const meta = safetensorsMetadata(buf);
  return { state: parseSafetensors(buf, path), format: 'safetensors', sha256, sourceSha256: meta.source_sha256 };
}

/** Removes the `module.`, `backbone.` and `model.` prefixes (repeatedly) when every key carries them. */
export function stripCommonPrefixes(state: RawStateDict): RawStateDict {
  let out = state;
  for (let changed = true; changed && out.size > 0;) {
    changed = false;
    for (const p of ['module.', 'backbone.', 'model.']) {
      if ([...out.keys()].every((k) => k.startsWith(p))) {
        out = new Map([...out].map(([k, v]) => [k.slice(p.length), v]));
        changed = true;
      }
    }
  }
  return out;
}

/** Keys and torchvision shapes of the ResNet18 trunk up to layer3 (`num_batches_tracked` is optional). */
export function resnet18TrunkShapes(): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const bn = (p: string, c: number): void => { for (const s of ['weight', 'bias', 'running_mean', 'running_var']) m.set(`${p}.${s}`, [c]); };
  m.set('conv1.weight', [64, 3, 7, 7]);
  bn('bn1', 64);
  const widths = [64, 128, 256];
  widths.forEach((c, li) => {
    const cin = li === 0 ? 64 : widths[li - 1]!;
    for (const b of [0, 1]) {
      const p = `layer${li + 1}.${b}`;
      m.set(`${p}.conv1.weight`, [c, b === 0 ? cin : c, 3, 3]);
      bn(`${p}.bn1`, c);
      m.set(`${p}.conv2.weight`, [c, c, 3, 3]);
      bn(`${p}.bn2`, c);
    }
    if (li > 0) {
      m.set(`layer${li + 1}.0.downsample.0.weight`, [c, cin, 1, 1]);
      bn(`layer${li + 1}.0.downsample.1`, c);
    }
  });
  return m;
}

/**
 * Checks that `state` holds every ResNet18 trunk tensor up to layer3 with the torchvision shape.
 * @throws Error naming `source`, the missing and misshapen keys, and the fix.
 */
export function validateResnet18Trunk(state: RawStateDict, source: string): void {
  const missing: string[] = [], misshapen: string[] = [];
  for (const [key, shape] of resnet18TrunkShapes()) {
    const t = state.get(key);
    if (!t) missing.push(key);
    else if (t.shape.join(',') !== shape.join(',')) misshapen.push(`${key} [${t.shape}] (expected [${shape}])`);
  }
  if (missing.length === 0 && misshapen.length === 0) return;
  const list = (xs: string[]): string => xs.slice(0, 8).join(', ') + (xs.length > 8 ? `, ... (${xs.length} in all)` : '');
  throw new Error(
    `${source} is not a torchvision ResNet18 state dict.` +
      (missing.length ? `\n  Missing keys: ${list(missing)}` : '') +
      (misshapen.length ? `\n  Wrong shapes: ${list(misshapen)}` : '') +
      `\n  Keys found (${state.size}): ${[...state.keys()].slice(0, 5).join(', ')}${state.size > 5 ? ', ...' : ''}` +
      `\n  Fix: pass torchvision's ResNet18 IMAGENET1K_V1 weights (${RESNET18_URL}) with --teacher-weights PATH, ` +
      `or a torch.save(model.state_dict()) of torchvision.models.resnet18 (keys may be prefixed by module./backbone./model.).`,
  );
}

/**
 * Downloads `url` to `dest` atomically: streams into a temporary file in the same folder while hashing, checks
 * that the SHA-256 starts with `sha256Prefix`, then renames. Aborts when no data arrives for `stallMs`.
 * @returns the SHA-256 (hex) of the downloaded file.
 * @throws Error (temporary file removed) on HTTP/network failure, stall, or SHA-256 mismatch.
 */
export async function downloadVerified(url: string, dest: string, sha256Prefix: string, onProgress?: (msg: string) => void, stallMs = 60_000): Promise<string> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = join(dirname(dest), `.${basename(dest)}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
  const ctl = new AbortController();
  let timer = setTimeout(() => ctl.abort(), stallMs);
  try {
    const res = await fetch(url, { signal: ctl.signal });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    const total = Number(res.headers.get('content-length')) || 0;
    const hash = createHash('sha256');
    const fh = await open(tmp, 'wx');
    let got = 0, shown = 0;
    try {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        clearTimeout(timer);
        timer = setTimeout(() => ctl.abort(), stallMs);
        hash.update(value);
        await fh.write(value);
        got += value.length;
        if (onProgress && total > 0 && got / total >= shown + 0.1) {
          shown = Math.floor((got / total) * 10) / 10;
          onProgress(`  downloaded ${(got / 2 ** 20).toFixed(1)} / ${(total / 2 ** 20).toFixed(1)} MiB`);
        }
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    const sha = hash.digest('hex');
    if (!sha.startsWith(sha256Prefix)) throw new Error(`downloaded file has SHA-256 ${sha}, expected it to start with ${sha256Prefix}`);
    await rename(tmp, dest);
    return sha;
  } catch (e) {
    await rm(tmp, { force: true });
    throw ctl.signal.aborted ? new Error(`no data received for ${stallMs / 1000} s`) : e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Converts a weights file (.pth or .safetensors) to float32 safetensors, keeping its keys, and records the
 * source's SHA-256 as `__metadata__.source_sha256` (propagated when the input is itself a converted file), so the
 * converted file still counts as ImageNet weights. Writes atomically (temporary file + rename).
 * @throws Error if `outPath` is the input file, or the input cannot be read/parsed, or the write fails.
 */
export async function convertToSafetensors(inPath: string, outPath: string): Promise<{ outPath: string; sourceSha256: string; tensors: number }> {
  const inReal = await realpath(inPath).catch(() => resolvePath(inPath));
  const outReal = existsSync(outPath) ? await realpath(outPath) : resolvePath(outPath);
  if (inReal === outReal) throw new Error(`Refusing to convert ${inPath} onto itself; choose a different output path.`);
  const w = await readWeightsFile(inPath);
  const sourceSha256 = w.sourceSha256 ?? w.sha256;
  const bytes = serializeSafetensors(w.state, { format: 'pt', source_sha256: sourceSha256, source_file: basename(inPath), converted_by: 'ntsnet' });
  await mkdir(dirname(resolvePath(outPath)), { recursive: true });
  const tmp = join(dirname(resolvePath(outPath)), `.${basename(outPath)}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, outPath);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new Error(`Cannot write ${outPath}: ${(e as Error).message}`);
  }
  return { outPath, sourceSha256, tensors: w.state.size };
}

async function load(path: string, say: (msg: string) => void): Promise<ResolvedWeights> {
  const w = await readWeightsFile(path);
  const state = stripCommonPrefixes(w.state);
  validateResnet18Trunk(state, path);
  const identity = identifyTeacher(w.sha256, w.format === 'safetensors' ? w.sourceSha256 : undefined, path);
  if (!identity.imagenet) {
    say(`warning: ${path} (SHA-256 ${w.sha256.slice(0, 16)}...) is not a known ImageNet ResNet18 file (torchvision's ` +
      `resnet18-${RESNET18_SHA256_PREFIX}.pth or the trunk files of ../shared/weights); a teacher without ImageNet features will give poor anomaly maps.`);
  }
  return { state, source: path, sha256: w.sha256, imagenet: identity.imagenet, identity };
}

/**
 * Finds, validates and loads the ResNet18 teacher weights. Order: `opts.path` (.pth or .safetensors, detected
 * by magic bytes); else the file named by `$NTSNET_TEACHER_WEIGHTS`; else `resnet18-f37072fd.pth` / `.safetensors`
 * or {@link TRUNK_FILE} in the cache folder; else, when allowed, an atomic, SHA-256-checked download of
 * {@link RESNET18_URL} into the cache folder.
 * @throws Error naming the file when it is unreadable, corrupt, or lacks ResNet18 trunk tensors; or, when no
 *   file is found and download is off or fails, an Error listing where it looked, the URL, and the fix.
 */
export async function resolveResnet18Weights(opts: ResolveWeightsOptions = {}): Promise<ResolvedWeights> {
  const say = opts.onProgress ?? ((): void => {});
  if (opts.path !== undefined) {
    if (!existsSync(opts.path)) {
      throw new Error(`Teacher weights file ${opts.path} does not exist.\n  Fix: pass the path of ${RESNET18_FILE} (download: ${RESNET18_URL}) with --teacher-weights PATH.`);
    }
    return load(opts.path, say);
  }
  const env = process.env[TEACHER_WEIGHTS_ENV];
  if (env) {
    if (!existsSync(env)) throw new Error(`Teacher weights file ${env} (from $${TEACHER_WEIGHTS_ENV}) does not exist.\n  Fix: point ${TEACHER_WEIGHTS_ENV} at ${TRUNK_FILE} or ${RESNET18_FILE}, or unset it.`);
    return load(env, say);
  }
  const dir = opts.cacheDir ?? defaultWeightsCacheDir();
  const candidates = [join(dir, RESNET18_FILE), join(dir, RESNET18_SAFETENSORS_FILE), join(dir, TRUNK_FILE)];
  for (const c of candidates) if (existsSync(c)) return load(c, say);
  let why = 'download disabled';
  if (opts.download ?? true) {
    const dest = join(dir, RESNET18_FILE);
    say(`Downloading ResNet18 ImageNet weights from ${RESNET18_URL} to ${dest}`);
    try {
      await downloadVerified(RESNET18_URL, dest, RESNET18_SHA256_PREFIX, say);
      return await load(dest, say);
    } catch (e) {
      why = `download failed: ${(e as Error).message}`;
    }
  }
  throw new Error(
    `ResNet18 teacher weights not found (${why}).\n` +
      `  Looked for: ${candidates.join(', ')}\n` +
      `  URL: ${RESNET18_URL}\n` +
      `  Fix: pass --teacher-weights PATH with torchvision's ${RESNET18_FILE} (download it on a machine with internet access) ` +
      `or the ImageNet trunk ${TRUNK_FILE} (in this project: ../shared/weights/${TRUNK_FILE}); or set ${TEACHER_WEIGHTS_ENV}=PATH; ` +
      `or copy the file into ${dir}/ (set NTSNET_CACHE to move the cache folder).\n` +
      `  Or pass --teacher random to train with a seeded RANDOM teacher knowingly (tests only: it detects far less).`,
  );
}
