// `npx facegate eval lfw --json` end to end on one LFW dev fold (the full run is a measurement, not a test).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { DATA_SET_DIR, dataPath, dataSetSuite } from '../../helpers/paths.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'facegate-eval-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Fold 1 of pairs-dev.txt (300 same + 300 different), trimmed to 60 + 60, as its own 1-fold file
 * duplicated into two folds so the k-fold protocol has a fold to choose thresholds on. */
function smallPairs(): string {
  const lines = readFileSync(dataPath('lfw', 'pairs-dev.txt'), 'utf8').trim().split('\n');
  const same = lines.slice(1, 61);
  const diff = lines.slice(301, 361);
  const fold = [...same.slice(0, 30), ...diff.slice(0, 30)];
  const fold2 = [...same.slice(30), ...diff.slice(30)];
  const path = join(dir, 'pairs.txt');
  writeFileSync(path, ['2\t30', ...fold, ...fold2].join('\n'));
  return path;
}

describe.skipIf(!DATA_SET_DIR)(dataSetSuite('facegate eval lfw'), () => {
  it('prints one JSON object with the documented keys and writes a ROC PNG', async () => {
    const roc = join(dir, 'roc.png');
    const { stdout, stderr } = await run(
      'npx',
      [
        'facegate',
        'eval',
        'lfw',
        '--images',
        dataPath('lfw', 'dev'),
        '--pairs',
        smallPairs(),
        '--precision',
        'int8',
        '--json',
        '--roc',
        roc,
      ],
      { maxBuffer: 16 << 20 },
    );
    const report = JSON.parse(stdout);
    for (const key of [
      'accuracy',
      'accuracy_std',
      'tpr_at_far',
      'pairs',
      'no_face',
      'model',
      'precision',
      'engine',
      'images_per_s',
    ]) {
      expect(report).toHaveProperty(key);
    }
    expect(Object.keys(report.tpr_at_far).sort()).toEqual(['0.001', '0.01']);
    expect(report.pairs).toBe(120);
    expect(report.precision).toBe('int8');
    expect(report.engine).toBe('ort');
    expect(report.accuracy).toBeGreaterThan(0.9);
    expect(report.images_per_s).toBeGreaterThan(0);
    expect(stderr).toMatch(/\[eval lfw\] .* done/);
    expect(existsSync(roc)).toBe(true);
    expect((await sharp(roc).metadata()).format).toBe('png');
  });

  it('rejects a bad --precision with a clear error', async () => {
    const result = run('npx', [
      'facegate',
      'eval',
      'lfw',
      '--images',
      dir,
      '--pairs',
      smallPairs(),
      '--precision',
      'int4',
    ]);
    await expect(result).rejects.toMatchObject({
      stderr: expect.stringMatching(/--precision must be fp32 or int8, not "int4"/),
    });
  });
});

describe.skipIf(!DATA_SET_DIR)(dataSetSuite('facegate eval sweep'), () => {
  it('scores ORT, the dense kernels and the gated kernels at each threshold, and plots the trade-off', async () => {
    const png = join(dir, 'sweep.png');
    const { stdout } = await run(
      'npx',
      [
        'facegate',
        'eval',
        'sweep',
        '--images',
        dataPath('lfw', 'dev'),
        '--pairs',
        smallPairs(),
        '--thresholds',
        '0,1',
        '--json',
        '--png',
        png,
      ],
      { maxBuffer: 16 << 20 },
    );
    const { points } = JSON.parse(stdout) as {
      points: {
        name: string;
        relu_zero: boolean;
        threshold: number | null;
        skip_ratio: number;
        input_dependent_share: number | null;
        accuracy: number;
        ms_per_run: number;
      }[];
    };
    expect(points.map((p) => p.name)).toEqual([
      'ORT int8',
      'kernels dense',
      'kernels ReLU-zero t=0',
      'kernels ReLU-zero t=1',
    ]);
    const [ort, dense, trained, higher] = points;
    expect(Math.abs(ort.accuracy - dense.accuracy)).toBeLessThan(0.02);
    expect(dense.skip_ratio).toBe(0);
    expect(dense.input_dependent_share).toBeNull();
    for (const gated of [trained, higher]) {
      expect(gated.input_dependent_share).toBeGreaterThan(0);
      expect(gated.input_dependent_share).toBeLessThanOrEqual(1);
    }
    expect(trained.skip_ratio).toBeGreaterThan(0.2);
    // A higher threshold closes at least as many gates.
    expect(higher.skip_ratio).toBeGreaterThanOrEqual(trained.skip_ratio);
    for (const p of points) expect(p.ms_per_run).toBeGreaterThan(0);
    expect((await sharp(png).metadata()).format).toBe('png');
  });
});
