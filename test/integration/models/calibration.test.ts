// The calibration table stands for the calibration run: measuring it again on lfw/calib gives the
// committed file, and the models built with the data set (--calibrate) are byte-identical to the ones
// `npm run models` builds from the committed table alone. One full calibration build (minutes).
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ortInt8Saturates } from '../../../runtime/engine/ort.ts';
import { sha256 } from '../../../runtime/models/manifest.ts';
import { CALIBRATION_TABLE } from '../../../tools/models/calibration-table.ts';
import { MODEL_SPECS } from '../../../tools/models/specs.ts';
import { DATA_DIR, dataPath, dataSetSuite, FIXTURES_DIR, REPO_ROOT } from '../../helpers/paths.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'facegate-calibration-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function models(args: string[], env: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  const out = join(dir, args.length > 0 ? 'with-data' : 'without-data');
  await run('node', ['--import', 'tsx', 'tools/models/main.ts', '--out', out, ...args], {
    cwd: REPO_ROOT,
    env,
    maxBuffer: 16 << 20,
  });
  return new Map(
    readdirSync(out)
      .sort()
      .map((f) => [f, sha256(readFileSync(join(out, f)))]),
  );
}

// The table's int8 figures come from ONNX Runtime's int8, exact only where it does not saturate.
const saturates = ortInt8Saturates();

describe.skipIf(!DATA_DIR || saturates)(
  saturates
    ? 'calibration table (skipped: ONNX Runtime int8 saturates on this CPU, x86 without VNNI; the measurement refuses to run here)'
    : dataSetSuite('calibration table'),
  () => {
    it('is reproduced by recalibrating on lfw/calib, and models built with and without the data set are identical', async () => {
      const { FACEGATE_DATA, FACEGATE_CALIB_LIMIT, ...withoutData } = process.env;
      const table = join(dir, 'calibration.json');
      const withData = await models(['--calibrate', dataPath('lfw', 'calib'), '--table', table], {
        ...withoutData,
        FACEGATE_DATA,
      });
      expect(readFileSync(table, 'utf8')).toBe(readFileSync(CALIBRATION_TABLE, 'utf8'));
      const dataFree = await models([], withoutData);
      expect([...withData.keys()].filter((f) => f.endsWith('.onnx'))).toHaveLength(2 * MODEL_SPECS.length);
      expect([...dataFree.entries()]).toEqual([...withData.entries()]);
    }, 3_600_000);
  },
);

it.runIf(saturates)('refuses to calibrate where ONNX Runtime int8 saturates, saying why', async () => {
  const out = join(dir, 'refused');
  const failure = await run(
    'node',
    [
      '--import',
      'tsx',
      'tools/models/main.ts',
      '--out',
      out,
      '--table',
      join(dir, 'refused.json'),
      '--calibrate',
      FIXTURES_DIR,
    ],
    { cwd: REPO_ROOT },
  ).then(
    () => null,
    (err: { stderr: string }) => err.stderr,
  );
  expect(failure).toMatch(
    /calibration needs exact int8 in ONNX Runtime, and this CPU \(x86 without VNNI\) saturates it/,
  );
});
