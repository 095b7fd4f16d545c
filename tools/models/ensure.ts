// Builds the models that are missing, from the committed calibration table (no data set), so a fresh
// clone's `npm start` (its prestart step) and the integration tests' setup just work. `npm start` asks
// only for the models its configuration uses; the test setup for all of them.
import { existsSync } from 'node:fs';
import { manifestPathFor, type Precision } from '../../runtime/models/manifest.ts';
import { buildModels } from './build.ts';
import { CALIBRATION_TABLE, readCalibrationTable } from './calibration-table.ts';
import { MODEL_SPECS } from './specs.ts';

/** The models (of `names`, default: every model the toolchain builds) with a manifest missing in `dir`. */
export function missingModels(dir: string, names?: readonly string[]): string[] {
  return MODEL_SPECS.filter(
    (s) =>
      (!names || names.includes(s.name)) &&
      (['fp32', 'int8'] as Precision[]).some((p) => !existsSync(manifestPathFor(dir, s.name, p))),
  ).map((s) => s.name);
}

export async function ensureModels(
  outDir: string,
  log: (line: string) => void,
  names?: readonly string[],
  tablePath = CALIBRATION_TABLE,
): Promise<void> {
  const missing = missingModels(outDir, names);
  if (missing.length === 0) return;
  log(`[models] missing in ${outDir}: ${missing.join(', ')}; building them (npm run models)`);
  const started = performance.now();
  await buildModels({ outDir, table: readCalibrationTable(tablePath), tablePath, log, only: missing });
  log(`[models] built in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
