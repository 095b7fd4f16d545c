// Power cuts, not just kills: each durable operation is traced under strace, every crash state the
// POSIX rules allow (see powercut/crashfs.ts) is written to a directory, and the real start-up code must
// come up on the old or the new version, never a mix, without losing what it had confirmed.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CrashModel, crashStates, materialize, readTree } from './powercut/crashfs.ts';
import { traceWorkload } from './powercut/trace.ts';
import { NEGATIVE_CONTROL, WORKLOADS, type Workload } from './powercut/workloads.ts';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./powercut/workloads.ts', import.meta.url));
const SEED = Number(process.env.FACEGATE_CRASH_SEED ?? 12);
const work = realpathSync(mkdtempSync(join(tmpdir(), 'facegate-powercut-')));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Traces `name`, checks every crash state; returns the states checked and the first failures. */
async function checkWorkload(name: string, workload: Workload) {
  const root = join(work, name, 'root');
  mkdirSync(root, { recursive: true });
  await run(process.execPath, ['--import', 'tsx', SCRIPT, name, 'setup', root]);
  const before = readTree(root);
  const trace = await traceWorkload(SCRIPT, [name, 'run', root], join(work, name, 'strace.log'));
  const model = new CrashModel(root, before, trace);
  let checked = 0;
  let failed = 0;
  const failures: string[] = [];
  for (const state of crashStates(model, {
    seed: SEED,
    exhaustiveUpTo: 6,
    randomPerPoint: 8,
    tornPerPoint: 3,
  })) {
    const dir = join(work, name, `state-${checked}`);
    mkdirSync(dir);
    materialize(state, dir);
    const problems = await workload.check(dir, state.marks).catch((e: Error) => [`threw: ${e.stack}`]);
    if (problems.length > 0 && failed++ < 20) {
      const lost = [...state.fates].filter(([, f]) => f !== 'kept').map(([i, f]) => `${i}:${f}`);
      failures.push(
        `cut before op ${state.prefix} (not on disk: ${lost.join(' ') || 'none'}): ${problems.join('; ')}`,
      );
    }
    rmSync(dir, { recursive: true, force: true });
    checked++;
  }
  console.log(
    `[powercut] ${name}: ${model.ops.length} operations traced, ${checked} crash states checked, ${failed} failed`,
  );
  return { checked, failed, failures };
}

describe('power cuts during durable writes', () => {
  for (const [name, workload] of Object.entries(WORKLOADS)) {
    it(`${name}: every crash state starts on the old or the new version and keeps what was confirmed`, async () => {
      const { checked, failures } = await checkWorkload(name, workload);
      expect(failures).toEqual([]);
      expect(checked).toBeGreaterThan(10);
    });
  }

  it('catches the classic bug (rename without fsyncs): the checker is not vacuous', async () => {
    const { failed, failures } = await checkWorkload('unsafe', NEGATIVE_CONTROL);
    expect(failed).toBeGreaterThan(0);
    expect(failures.join('\n')).toMatch(/unreadable|found 1/);
  });
});
