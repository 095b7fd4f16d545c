// `eval lfw --engine kernels` runs the embedder on the native kernels (a few LFW dev pairs; the full
// run is a measurement, not a test).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evalLfw } from '../../../runtime/eval/lfw.ts';
import { kernelsOrBuild } from '../../helpers/kernels.ts';
import { DATA_SET_DIR, dataPath, dataSetSuite, MODELS_DIR } from '../../helpers/paths.ts';

const dir = mkdtempSync(join(tmpdir(), 'facegate-eval-kernels-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 20 same + 20 different pairs of fold 1, as two folds so thresholds are chosen on the other fold. */
function smallPairs(): string {
  const lines = readFileSync(dataPath('lfw', 'pairs-dev.txt'), 'utf8').trim().split('\n');
  const same = lines.slice(1, 21);
  const diff = lines.slice(301, 321);
  const path = join(dir, 'pairs.txt');
  writeFileSync(
    path,
    ['2\t10', ...same.slice(0, 10), ...diff.slice(0, 10), ...same.slice(10), ...diff.slice(10)].join('\n'),
  );
  return path;
}

describe.skipIf(!DATA_SET_DIR || !kernelsOrBuild())(dataSetSuite('eval lfw on the kernels engine'), () => {
  it('embeds with the kernels and scores like ORT does', async () => {
    const pairs = smallPairs();
    const run = (engine: 'ort' | 'kernels') =>
      evalLfw({
        images: dataPath('lfw', 'dev'),
        pairs,
        modelsDir: MODELS_DIR,
        precision: 'int8',
        detectorPrecision: 'fp32',
        engine,
        threads: 1,
      });
    const kernels = await run('kernels');
    const ort = await run('ort');
    expect(kernels.engine).toBe('kernels');
    expect(ort.engine).toBe('ort');
    expect(kernels.pairs).toBe(40);
    expect(kernels.accuracy).toBeGreaterThan(0.85);
    expect(Math.abs(kernels.accuracy - ort.accuracy)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(kernels.auc - ort.auc)).toBeLessThan(0.02);
  });
});
