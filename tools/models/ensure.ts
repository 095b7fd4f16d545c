// Builds the models when any is missing, so a fresh clone's `npm start` and `npm test` just work.
// The runtime asks only for the models its config uses; the test setup for all of them.
import { existsSync } from 'node:fs';
import { manifestPathFor, type Precision } from '../manifest.ts';
import { buildModels } from './main.ts';
import { MODEL_SPECS } from './specs.ts';

export async function ensureModels(
  outDir: string,
  dataDir: string,
  log: (line: string) => void,
  /** Model names to check (default: every model the toolchain builds); others are not its to build. */
  names?: readonly string[],
): Promise<void> {
  const missing = MODEL_SPECS.filter(
    (s) =>
      (!names || names.includes(s.name)) &&
      (['fp32', 'int8'] as Precision[]).some((p) => !existsSync(manifestPathFor(outDir, s.name, p))),
  ).map((s) => s.name);
  if (missing.length === 0) return;
  log(`[models] missing in ${outDir}: ${missing.join(', ')}; building them (npm run models)`);
  await buildModels({ outDir, dataDir, log, only: missing });
}
