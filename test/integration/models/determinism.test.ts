// Reproducible builds: two separate `npm run models` processes (weights + the committed calibration
// table, no data set) write byte-identical .onnx files and manifests.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../../runtime/models/manifest.ts';
import { MODEL_SPECS } from '../../../tools/models/specs.ts';
import { REPO_ROOT } from '../../helpers/paths.ts';

const run = promisify(execFile);
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function build(): Promise<Map<string, string>> {
  const out = mkdtempSync(join(tmpdir(), 'facegate-build-'));
  dirs.push(out);
  await run('node', ['--import', 'tsx', 'tools/models/main.ts', '--out', out], {
    cwd: REPO_ROOT,
    maxBuffer: 16 << 20,
  });
  return new Map(
    readdirSync(out)
      .sort()
      .map((f) => [f, sha256(readFileSync(join(out, f)))]),
  );
}

describe('model build', () => {
  it('is byte-for-byte reproducible', async () => {
    const [a, b] = [await build(), await build()];
    expect([...a.keys()].filter((f) => f.endsWith('.onnx'))).toHaveLength(2 * MODEL_SPECS.length);
    expect([...b.entries()]).toEqual([...a.entries()]);
  }, 600_000);
});
