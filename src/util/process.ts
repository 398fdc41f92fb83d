/** True when a process with this id exists (also when it belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs a command with stdout and stderr appended to `logFile`, resolving when it exits with 0.
 * @throws Error naming `what`, the exit status or signal, and the log file, when it fails or cannot start.
 */
export async function runLogged(cmd: string, args: readonly string[], logFile: string, what: string, env?: NodeJS.ProcessEnv): Promise<void> {
  const { spawn } = await import('node:child_process');
  const { createWriteStream } = await import('node:fs');
  await new Promise<void>((resolve, reject) => {
    const out = createWriteStream(logFile, { flags: 'a' });
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    child.on('error', (e) => { out.end(); reject(new Error(`${what}: cannot start ${cmd}: ${e.message}`)); });
    child.on('close', (code, signal) => {
      out.end();
      if (code === 0) resolve();
      else reject(new Error(`${what} failed (${signal ?? `exit ${code}`}); see ${logFile}.`));
    });
  });
}
