import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEngine } from '../../../runtime/engine/open.ts';
import { OrtEngine } from '../../../runtime/engine/ort.ts';
import { checkCompatibility } from '../../../runtime/model-update/compat.ts';
import {
  GOLDEN_DIR,
  loadGoldenSet,
  type SelfTestReport,
  selfTest,
} from '../../../runtime/model-update/selftest.ts';
import type { LoadedModel } from '../../../runtime/models/manifest.ts';
import type { Graph } from '../../../runtime/models/onnx/graph.ts';
import { buildFaceRecGraph, loadFaceRecWeights } from '../../../tools/models/facerec/build.ts';
import { serializeModel } from '../../../tools/models/onnx/writer.ts';
import { FACE_API, sourceFile, sourcePackage } from '../../../tools/models/sources.ts';
import { MODEL_SPECS } from '../../../tools/models/specs.ts';
import { builtModel, manifestFor, tinyEmbedder } from '../../helpers/model-update.ts';

/** The self-test on the engine a device runs by default (configs/default.yaml: models.engine kernels). */
async function run(model: Pick<LoadedModel, 'manifest' | 'onnx'>): Promise<SelfTestReport> {
  const engine = await openEngine(model.onnx, { engine: 'kernels', label: model.manifest.name });
  try {
    return await selfTest(engine, model.manifest);
  } finally {
    await engine.close();
  }
}

/** The same architecture with every weight tensor permuted: loads, runs, has the right shapes, is useless. */
function scrambled(graph: Graph): Uint8Array {
  let seed = 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (const t of graph.initializers.values()) {
    if (t.type !== 'float32' || t.data.length < 16) continue;
    const data = t.data as Float32Array;
    for (let i = data.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [data[i], data[j]] = [data[j], data[i]];
    }
  }
  return serializeModel(graph, { producerName: 'facegate-test', producerVersion: '0' });
}

describe('self-test', () => {
  it('passes the shipped int8 embedder, with the margin to spare', async () => {
    const report = await run(builtModel('facerec'));
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.sameMin).toBeGreaterThan(builtModel('facerec').manifest.thresholds?.far['0.01'] as number);
    expect((report.sameMin as number) - (report.differentMax as number)).toBeGreaterThan(0.08);
    expect(report.latencyMs).toBeGreaterThan(0);
  });

  it('fails the shipped embedder claiming thresholds of -1, beside the running model and on its own', async () => {
    const running = builtModel('facerec');
    const lying = {
      ...running.manifest,
      version: '1.0.1',
      thresholds: { ...running.manifest.thresholds, far: { '0.01': -1, '0.001': -1 } },
    } as LoadedModel['manifest'];
    const candidate = await OrtEngine.create(running.onnx);
    const reference = await OrtEngine.create(running.onnx);
    try {
      const alone = await selfTest(candidate, lying);
      expect(alone.ok).toBe(false);
      expect(alone.failures.join('\n')).toMatch(
        /different people .* is not at or below the FAR 1e-3 threshold -1/,
      );
      const beside = await selfTest(candidate, lying, {
        reference: { engine: reference, manifest: running.manifest },
      });
      expect(beside.failures.join('\n')).toMatch(
        /: the candidate matches them \(cosine [\d.-]+ > -1\), the running 1\.0\.0 does not/,
      );
      // Its own honest thresholds pass beside the running model.
      const honest = await selfTest(candidate, running.manifest, {
        reference: { engine: reference, manifest: running.manifest },
      });
      expect(honest.failures).toEqual([]);
    } finally {
      await candidate.close();
      await reference.close();
    }
  });

  it('fails a loadable, compatible embedder with scrambled weights', async () => {
    const weights = loadFaceRecWeights(
      sourceFile(sourcePackage(FACE_API), 'model/face_recognition_model-weights_manifest.json'),
    );
    const onnx = scrambled(buildFaceRecGraph(weights));
    const candidate = {
      onnx,
      manifest: manifestFor(builtModel('facerec', 'fp32').manifest, onnx, { version: '6.6.6' }),
    };
    expect(await checkCompatibility(candidate, builtModel('facerec').manifest)).toEqual({
      ok: true,
      reasons: [],
    });
    const report = await run(candidate);
    expect(report.ok).toBe(false);
    expect(report.failures.join('\n')).toMatch(
      /same-person pairs \(lowest [\d.]+\) are not 0.05 above different-person pairs/,
    );
  });

  it('fails an embedder that maps every face to nearly the same point, and one that outputs zeros', async () => {
    const tiny = tinyEmbedder();
    const report = await run({ onnx: tiny, manifest: manifestFor(builtModel('facerec').manifest, tiny) });
    expect(report.ok).toBe(false);
    expect(report.failures.join('\n')).toMatch(/are not 0.05 above/);
    const dead = tinyEmbedder({ weightScale: 0 });
    const zeroed = await run({ onnx: dead, manifest: manifestFor(builtModel('facerec').manifest, dead) });
    expect(zeroed.failures.join('\n')).toMatch(/embedding is not finite and unit-length \(norm 0\)/);
  });

  it('passes the shipped int8 detector: one face per golden photo, where the reference found it', async () => {
    const report = await run(builtModel('blazeface'));
    expect(report.failures).toEqual([]);
    expect(report.faceScores?.every((s) => s > 0.7)).toBe(true);
  });

  it('fails a detector with scrambled weights', async () => {
    const spec = MODEL_SPECS.find((s) => s.task === 'face-detection');
    const onnx = scrambled(spec?.build() as Graph);
    const report = await run({ onnx, manifest: manifestFor(builtModel('blazeface').manifest, onnx) });
    expect(report.ok).toBe(false);
    expect(report.failures[0]).toMatch(/photo-\w+\.jpg: \d+ faces found, expected exactly 1/);
  });

  it('checks the other models for finite outputs of the declared shapes', async () => {
    for (const name of ['antispoof', 'liveness']) expect((await run(builtModel(name))).failures).toEqual([]);
  });
});

describe('golden set', () => {
  const golden = loadGoldenSet();
  const size = (files: string[]) => files.reduce((sum, f) => sum + statSync(join(GOLDEN_DIR, f)).size, 0);

  it('stays small: under 200 KB, photos under 100 KB', () => {
    expect(size(readdirSync(GOLDEN_DIR))).toBeLessThan(200 * 1024);
    expect(size(golden.photos.map((p) => p.file))).toBeLessThan(100 * 1024);
  });

  it('has two crops of each of four people, every pair labelled, and the MIT notice', () => {
    expect(golden.crops).toHaveLength(8);
    expect(new Set(golden.crops.map((c) => c.person)).size).toBe(4);
    expect(golden.pairs.same).toHaveLength(4);
    expect(golden.pairs.different).toHaveLength(24);
    const attribution = readFileSync(join(GOLDEN_DIR, 'ATTRIBUTION.md'), 'utf8');
    expect(attribution).toContain('Copyright (c) 2021, Adam Geitgey');
    expect(attribution).toContain('MIT License');
  });
});
