// Builds the models when any is missing, so a fresh clone's `npm start` and `npm test` just work.
import { existsSync } from 'node:fs';
import { manifestPathFor, type Precision } from '../manifest.ts';
import { buildModels } from './main.ts';
import { MODEL_SPECS } from './specs.ts';

export async function ensureModels(
  outDir: string,
  dataDir: string,
  log: (line: string) => void,
): Promise<void> {
  const missing = MODEL_SPECS.flatMap((s) =>
    (['fp32', 'int8'] as Precision[]).map((p) => manifestPathFor(outDir, s.name, p)),
  ).filter((p) => !existsSync(p));
  if (missing.length === 0) return;
  log(`[models] ${missing.length} model manifests missing in ${outDir}: building them (npm run models)`);
  await buildModels({ outDir, dataDir, log });
}
