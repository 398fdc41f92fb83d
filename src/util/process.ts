/** True when a process with this id exists (also when it belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A child of {@link runLogged} that failed; `interrupted` when this process passed it a SIGINT / SIGTERM first. */
export class ChildFailedError extends Error {
  constructor(message: string, readonly interrupted: boolean) {
    super(message);
  }
}

/**
 * Runs a command with stdout and stderr appended to `logFile`, resolving when it exits with 0. A SIGINT or SIGTERM
 * sent to this process alone (not only Ctrl-C, which reaches the whole process group) is passed on to the child, and
 * this process waits for it, so that no child outlives it; a second signal kills the child at once.
 * @throws ChildFailedError naming `what`, the exit status or signal, and the log file, when it fails or cannot start.
 */
export async function runLogged(cmd: string, args: readonly string[], logFile: string, what: string, env?: NodeJS.ProcessEnv): Promise<void> {
  const { spawn } = await import('node:child_process');
  const { createWriteStream } = await import('node:fs');
  await new Promise<void>((resolve, reject) => {
    const out = createWriteStream(logFile, { flags: 'a' });
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let signals = 0;
    const pass = (sig: NodeJS.Signals): void => void child.kill(++signals > 1 ? 'SIGKILL' : sig);
    const signalsIn = ['SIGINT', 'SIGTERM'] as const;
    for (const sig of signalsIn) process.on(sig, pass);
    const done = (): void => { for (const sig of signalsIn) process.removeListener(sig, pass); out.end(); };
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    child.on('error', (e) => { done(); reject(new ChildFailedError(`${what}: cannot start ${cmd}: ${e.message}`, false)); });
    child.on('close', (code, signal) => {
      done();
      if (code === 0) resolve();
      else reject(new ChildFailedError(`${what} failed (${signal ?? `exit ${code}`}); see ${logFile}.`, signals > 0));
    });
  });
}
