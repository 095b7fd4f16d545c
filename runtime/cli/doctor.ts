// `facegate doctor`: one line per check with what to do about it; --json for machines. Exit code 1 when
// a check failed (warnings pass).
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.ts';
import { type CheckResult, runDoctor } from '../service/doctor.ts';

const MARK: Record<CheckResult['status'], string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: 'skip' };

export async function doctorCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      board: { type: 'string' },
      json: { type: 'boolean', default: false },
      offline: { type: 'boolean', default: false },
      'timeout-seconds': { type: 'string', default: '15' },
    },
  });
  const timeoutSeconds = Number(values['timeout-seconds']);
  if (!(timeoutSeconds > 0))
    throw new Error(`--timeout-seconds must be a positive number, not "${values['timeout-seconds']}"`);
  const config = loadConfig({ file: values.config, board: values.board, env: process.env });
  const results = await runDoctor(config, { offline: values.offline, timeoutMs: timeoutSeconds * 1000 });
  const ok = results.every((r) => r.status !== 'fail');
  if (values.json) {
    console.log(JSON.stringify({ ok, checks: results }));
  } else {
    const width = Math.max(...results.map((r) => r.name.length));
    for (const r of results)
      console.log(
        `${MARK[r.status]} ${r.name.padEnd(width)}  ${r.detail}${r.fix ? `  -> fix: ${r.fix}` : ''}`,
      );
  }
  return ok ? 0 : 1;
}
