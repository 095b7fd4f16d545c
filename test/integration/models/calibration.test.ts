// The calibration table stands for the calibration run: measuring it again on lfw/calib gives the
// committed file, and the models built with the data set (--calibrate) are byte-identical to the ones
// `npm run models` builds from the committed table alone. One full calibration build (minutes).
// The FAR thresholds are cosines from float inference, whose last digits move between CPUs (ONNX
// Runtime's fp32 kernels differ per ISA, and so do the aligned crops a hair): they must agree within
// THRESHOLD_TOLERANCE, everything else byte for byte.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ortInt8Saturates } from '../../../runtime/engine/ort.ts';
import { sha256 } from '../../../runtime/models/manifest.ts';
import {
  CALIBRATION_TABLE,
  type CalibrationTable,
  readCalibrationTable,
} from '../../../tools/models/calibration-table.ts';
import { MODEL_SPECS } from '../../../tools/models/specs.ts';
import { DATA_SET_DIR, dataPath, dataSetSuite, FIXTURES_DIR, REPO_ROOT } from '../../helpers/paths.ts';

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
  // The .onnx bytes; the manifests beside them carry the thresholds, compared through the table.
  return new Map(
    readdirSync(out)
      .filter((f) => f.endsWith('.onnx'))
      .sort()
      .map((f) => [f, sha256(readFileSync(join(out, f)))]),
  );
}

/** A cosine's worth of float noise between CPUs; far below what moves a decision (thresholds ~0.91). */
const THRESHOLD_TOLERANCE = 1e-4;

/** `measured` equals `committed`: thresholds within THRESHOLD_TOLERANCE, everything else exactly. */
function expectSameTable(measured: CalibrationTable, committed: CalibrationTable): void {
  const thresholds = (t: CalibrationTable) =>
    Object.entries(t.models).flatMap(([name, m]) =>
      Object.entries(m.thresholds ?? {}).map(([precision, th]) => ({ name, precision, th })),
    );
  const strip = (t: CalibrationTable) => ({
    ...t,
    models: Object.fromEntries(Object.entries(t.models).map(([n, { thresholds: _, ...m }]) => [n, m])),
  });
  expect(strip(measured)).toEqual(strip(committed));
  const mine = thresholds(measured);
  const theirs = thresholds(committed);
  expect(mine.map(({ name, precision }) => `${name} ${precision}`)).toEqual(
    theirs.map(({ name, precision }) => `${name} ${precision}`),
  );
  mine.forEach(({ name, precision, th }, i) => {
    const want = theirs[i].th;
    const what = `${name} ${precision}`;
    expect([th.impostorPairs, th.genuinePairs], what).toEqual([want.impostorPairs, want.genuinePairs]);
    expect(
      th.curve.map(([far]) => far),
      what,
    ).toEqual(want.curve.map(([far]) => far));
    const values = [th.far['0.01'], th.far['0.001'], ...th.curve.map(([, t]) => t)];
    const wanted = [want.far['0.01'], want.far['0.001'], ...want.curve.map(([, t]) => t)];
    values.forEach((v, j) => {
      expect(Math.abs(v - wanted[j]), `${what} threshold ${j}: ${v} vs ${wanted[j]}`).toBeLessThanOrEqual(
        THRESHOLD_TOLERANCE,
      );
    });
  });
}

// Choosing the methods needs exact int8: ONNX Runtime's is not on x86 without VNNI, so there the
// methods are judged on the native kernels, which run the embedders but not the detector or the
// anti-spoof models; the whole table is then not reproducible here, the thresholds and an embedder are.
const saturates = ortInt8Saturates();

describe.skipIf(!DATA_SET_DIR)(dataSetSuite('calibration table'), () => {
  const { FACEGATE_DATA, FACEGATE_CALIB_LIMIT, ...withoutData } = process.env;
  const committed = readCalibrationTable(CALIBRATION_TABLE);

  it.skipIf(saturates)(
    'is reproduced by recalibrating on lfw/calib, and models built with and without the data set are identical',
    async () => {
      const table = join(dir, 'calibration.json');
      const withData = await models(['--calibrate', dataPath('lfw', 'calib'), '--table', table], {
        ...withoutData,
        FACEGATE_DATA,
      });
      expectSameTable(readCalibrationTable(table), committed);
      const dataFree = await models([], withoutData);
      expect([...withData.keys()]).toHaveLength(2 * MODEL_SPECS.length);
      expect([...dataFree.entries()]).toEqual([...withData.entries()]);
    },
    3_600_000,
  );

  it.runIf(saturates)(
    'has its thresholds reproduced by --thresholds-only on lfw/calib, calibrates an embedder on the kernels and refuses a full calibration on this CPU',
    async () => {
      const table = join(dir, 'thresholds.json');
      await run('cp', [CALIBRATION_TABLE, table]);
      const embedders = MODEL_SPECS.filter((s) => s.task === 'face-embedding').map((s) => s.name);
      const args = ['--calibrate', dataPath('lfw', 'calib'), '--thresholds-only', '--table', table];
      await models([...args, ...embedders], { ...withoutData, FACEGATE_DATA });
      expectSameTable(readCalibrationTable(table), committed);

      // 400 images: enough impostor pairs for the FAR 1e-3 threshold, a minute of work.
      const embedderTable = join(dir, 'facerec.json');
      await models(['--calibrate', dataPath('lfw', 'calib'), '--table', embedderTable, 'facerec'], {
        ...withoutData,
        FACEGATE_DATA,
        FACEGATE_CALIB_LIMIT: '400',
      });
      const facerec = readCalibrationTable(embedderTable).models.facerec;
      // Exact int8 keeps the chosen method within 1e-3 of fp32; ORT's saturating int8 reaches ~0.997.
      expect(facerec.methodFidelity[facerec.method]).toBeGreaterThan(0.999);
      expect(facerec.thresholds?.int8.far['0.001']).toBeGreaterThan(0);

      const failure = await run(
        'node',
        [
          '--import',
          'tsx',
          'tools/models/main.ts',
          '--out',
          join(dir, 'refused'),
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
        /blazeface: calibration needs exact int8 to compare the methods; ONNX Runtime's int8 saturates on this CPU \(x86 without VNNI\) and the native kernels cannot run it/,
      );
    },
    3_600_000,
  );
});
