// Crash-safety harness: runs a writer script in a child process that prints `ready`, then one
// `<tag> <n>` line per durable step, and SIGKILLs it `killAfterMs` after `ready`. Each line goes to
// `onStep`; the promise resolves once the child is dead from the kill.
import { spawn } from 'node:child_process';

export function runWriterUntilKilled(
  script: string,
  args: string[],
  killAfterMs: number,
  onStep: (tag: string, n: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffered = '';
    let stderr = '';
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer never became ready: ${stderr}`));
    }, 30_000);
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const [tag, n] = line.split(' ');
        if (tag === 'ready') {
          clearTimeout(guard);
          setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        } else onStep(tag, Number(n));
      }
    });
    child.on('exit', (_code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited by itself (${signal}): ${stderr}`));
      else resolve();
    });
  });
}
