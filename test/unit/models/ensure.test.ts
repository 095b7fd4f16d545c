// ensureModels builds only what is asked for: the runtime passes the models its config uses.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureModels } from '../../../runtime/models/build/ensure.ts';
import { manifestPathFor } from '../../../runtime/models/manifest.ts';
import { MODEL_NAMES } from '../../../runtime/models/registry.ts';
import { DATA_DIR, MODELS_DIR } from '../../helpers/paths.ts';

const dir = mkdtempSync(join(tmpdir(), 'facegate-ensure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const used = [MODEL_NAMES.detector, MODEL_NAMES.embedder, MODEL_NAMES.antispoof, MODEL_NAMES.liveness];
for (const name of used)
  for (const p of ['fp32', 'int8'] as const)
    copyFileSync(manifestPathFor(MODELS_DIR, name, p), manifestPathFor(dir, name, p));

// ensureModels logs before it builds: a log that throws stops it there and says what it would build.
const refuseToBuild = (line: string) => {
  throw new Error(line);
};

describe('ensureModels', () => {
  it('builds nothing when every model the config uses is there, even if others are missing', async () => {
    await expect(ensureModels(dir, DATA_DIR, refuseToBuild, used)).resolves.toBeUndefined();
  });

  it('builds a missing model that is asked for, and every missing one by default', async () => {
    await expect(
      ensureModels(dir, DATA_DIR, refuseToBuild, [...used, MODEL_NAMES.gatedEmbedder]),
    ).rejects.toThrow(/missing in .*: facerec-gated; building them/);
    await expect(ensureModels(dir, DATA_DIR, refuseToBuild)).rejects.toThrow(/missing in .*: facerec-gated;/);
  });
});
