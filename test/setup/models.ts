// Vitest global setup: the suites run the real models, so build them first when they are missing
// (a fresh clone), exactly as `npm run models` would.
import { existsSync } from 'node:fs';
import { buildModels } from '../../runtime/models/build/main.ts';
import { MODEL_SPECS } from '../../runtime/models/build/specs.ts';
import { manifestPathFor } from '../../runtime/models/manifest.ts';
import { DATA_DIR, MODELS_DIR } from '../helpers/paths.ts';

export default async function setup(): Promise<void> {
  const missing = MODEL_SPECS.flatMap((s) =>
    ['fp32', 'int8'].map((p) => manifestPathFor(MODELS_DIR, s.name, p as 'fp32' | 'int8')),
  ).filter((p) => !existsSync(p));
  if (missing.length === 0) return;
  process.stderr.write(
    `[test setup] ${missing.length} model files missing in ${MODELS_DIR}: building them (npm run models)\n`,
  );
  await buildModels({ outDir: MODELS_DIR, dataDir: DATA_DIR });
}
