/**
 * Helpers for tests that run the real `ntsnet` command line as child processes (signals, concurrent runs, exit
 * codes): spawn it, wait for a line, and train a tiny checkpoint once per test file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { makeMvtecCategory, makeTempDir, repoRoot } from './helpers.js';

/** The compiled CLI entry point. */
export const CLI = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

/** Result of {@link runCli}. */
export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `ntsnet ARGS...` to completion (timeout `timeoutMs`, default 120 s). */
export function runCli(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI(), ...args], {
    encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, cwd: opts.cwd, killSignal: 'SIGKILL',
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** A running `ntsnet` child with its output collected so far. */
export interface CliChild {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  /** Resolves when the process exits. */
  done: Promise<{ status: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when stderr (or stdout) matches `re`; rejects after `timeoutMs` or when the process exits first. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
}

/** Starts `ntsnet ARGS...` in the background. */
export function startCli(args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): CliChild {
  const child = spawn(process.execPath, [CLI(), ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => { out.stdout += d.toString(); for (const l of listeners) l(); });
  child.stderr!.on('data', (d: Buffer) => { out.stderr += d.toString(); for (const l of listeners) l(); });
  const done = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (status, signal) => resolve({ status, signal })));
  let exited = false;
  void done.then(() => { exited = true; for (const l of listeners) l(); });
  const waitFor = (re: RegExp, timeoutMs = 60_000): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { listeners.delete(check); reject(new Error(`timed out waiting for ${re}; stderr so far:\n${out.stderr}`)); }, timeoutMs);
      const check = (): void => {
        if (re.test(out.stderr) || re.test(out.stdout)) { clearTimeout(timer); listeners.delete(check); resolve(); }
        else if (exited) { clearTimeout(timer); listeners.delete(check); reject(new Error(`process exited before ${re}; stderr:\n${out.stderr}`)); }
      };
      listeners.add(check);
      check();
    });
  return { child, out, done, waitFor };
}

/** Flags of a fast training run (tiny preset, 64 px, seeded random teacher, basic student). */
export const FAST_FIT = ['--preset', 'tiny', '--teacher', 'random', '--student-block', 'basic', '--teacher-norm', 'frozen_bn'] as const;

/** A small MVTec-layout category (64 x 64 px) in a fresh temporary folder. */
export async function tinyCategory(train = 8): Promise<string> {
  return makeMvtecCategory(path.join(makeTempDir('cat'), 'widget'), { train, good: 2, defective: 2, width: 64, height: 64, half: 6, defectAt: (i) => ({ x: 20 + 10 * i, y: 30 }) });
}

/** Trains a tiny checkpoint with the CLI and returns { data, checkpoint }. @throws Error with the CLI's stderr when fit fails. */
export async function tinyCheckpoint(extra: readonly string[] = []): Promise<{ data: string; checkpoint: string }> {
  const data = await tinyCategory();
  const checkpoint = path.join(makeTempDir('ckpt'), 'run');
  const r = runCli(['fit', '--data', data, '--out', checkpoint, ...FAST_FIT, ...extra]);
  if (r.status !== 0) throw new Error(`tiny fit failed (${r.status}):\n${r.stderr}`);
  return { data, checkpoint };
}
