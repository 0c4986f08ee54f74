import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

interface ProcessRun {
  seconds: number;
  /** Peak resident memory, in MB (the process's high-water mark, sampled every 20 ms). */
  peakRssMb: number;
  exitCode: number | null;
  stderr: string;
}

async function highWaterMarkKb(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs a command to completion, stdout to `stdoutPath` or discarded, and reports its
 * wall time and peak RSS (Linux /proc; 0 elsewhere).
 */
export function runProcess(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    let peakKb = 0;
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 10_000) stderr += chunk.toString();
    });
    const sampler = setInterval(async () => {
      if (child.pid === undefined) return;
      peakKb = Math.max(peakKb, (await highWaterMarkKb(child.pid)) ?? 0);
    }, 20);
    child.once('error', (error) => {
      clearInterval(sampler);
      reject(error);
    });
    child.once('exit', (exitCode) => {
      clearInterval(sampler);
      resolve({ seconds: (performance.now() - started) / 1000, peakRssMb: peakKb / 1024, exitCode, stderr });
    });
  });
}
