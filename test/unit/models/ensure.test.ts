// ensureModels builds only what is missing of what is asked for: npm start's prestart passes the models
// its configuration uses, the integration tests' setup asks for all of them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MODEL_NAMES, manifestPathFor } from '../../../runtime/models/manifest.ts';
import { ensureModels, missingModels } from '../../../tools/models/ensure.ts';

const dir = mkdtempSync(join(tmpdir(), 'facegate-ensure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Presence is all ensureModels looks at: empty manifests stand for built models.
const used = [MODEL_NAMES.detector, MODEL_NAMES.embedder, MODEL_NAMES.antispoof, MODEL_NAMES.liveness];
for (const name of used)
  for (const p of ['fp32', 'int8'] as const) writeFileSync(manifestPathFor(dir, name, p), '');
writeFileSync(manifestPathFor(dir, MODEL_NAMES.gatedEmbedder, 'fp32'), '');

// ensureModels logs before it builds: a log that throws stops it there and says what it would build.
const refuseToBuild = (line: string) => {
  throw new Error(line);
};

describe('ensureModels', () => {
  it('counts a model with either precision missing as missing', () => {
    expect(missingModels(dir)).toEqual([MODEL_NAMES.gatedEmbedder]);
    expect(missingModels(dir, used)).toEqual([]);
  });

  it('builds nothing when every model asked for is there, even if others are missing', async () => {
    await expect(ensureModels(dir, refuseToBuild, used)).resolves.toBeUndefined();
  });

  it('builds a missing model that is asked for, and every missing one by default', async () => {
    await expect(ensureModels(dir, refuseToBuild, [...used, MODEL_NAMES.gatedEmbedder])).rejects.toThrow(
      /missing in .*: facerec-gated; building them/,
    );
    await expect(ensureModels(dir, refuseToBuild)).rejects.toThrow(/missing in .*: facerec-gated;/);
  });
});
