// `npm run models`: builds every face model as fp32 and int8 ONNX with manifests, from the pinned npm
// packages' TensorFlow.js weights and the lfw/calib calibration faces.
//   FACEGATE_MODELS_DIR   output folder (default: models)
//   FACEGATE_DATA         shared data folder (default: ../shared/data)
//   FACEGATE_CALIB_LIMIT  use only the first N calibration images (smoke tests)
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { OrtEngine } from '../../engine/ort.ts';
import { thresholdForFar } from '../../eval/metrics.ts';
import { allPairScores } from '../../eval/pair-scores.ts';
import { writeFileAtomic } from '../../util/atomic-file.ts';
import { DEFAULT_DETECTION, FaceDetector } from '../../vision/detector.ts';
import { cosine, FaceEmbedder } from '../../vision/embedder.ts';
import {
  type ModelManifest,
  manifestPathFor,
  type Precision,
  sha256,
  validateManifest,
} from '../manifest.ts';
import type { Graph } from '../onnx/graph.ts';
import { buildCalibrationSet, type CalibrationSample, listCalibrationImages } from './calibration-set.ts';
import { quantizeBest } from './quantize-model.ts';
import { MODEL_SPECS, MODELS_VERSION, type ModelSpec } from './specs.ts';

const PRODUCER = { producerName: 'facegate', producerVersion: MODELS_VERSION };

export interface BuildOptions {
  outDir: string;
  dataDir: string;
  calibLimit?: number;
  /** Names of the models to build (default: all). */
  only?: string[];
  log?: (line: string) => void;
}

export async function buildModels(opts: BuildOptions): Promise<ModelManifest[]> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  mkdirSync(opts.outDir, { recursive: true });
  const calibDir = join(opts.dataDir, 'lfw', 'calib');

  const unknown = opts.only?.filter((n) => !MODEL_SPECS.some((s) => s.name === n)) ?? [];
  if (unknown.length > 0)
    throw new Error(`unknown model ${unknown.join(', ')} (${MODEL_SPECS.map((s) => s.name).join(', ')})`);
  const specs = MODEL_SPECS.filter((s) => !opts.only || opts.only.includes(s.name));
  log('[models] converting fp32 graphs from the npm packages');
  const graphs = new Map<string, Graph>(specs.map((s) => [s.name, s.build()]));
  const fp32Bytes = new Map<string, Uint8Array>();
  for (const spec of specs) fp32Bytes.set(spec.name, (graphs.get(spec.name) as Graph).serialize(PRODUCER));

  // The calibration faces come from our own fp32 detector, built or not.
  const detectorSpec = MODEL_SPECS.find((s) => s.task === 'face-detection') as ModelSpec;
  const detector = new FaceDetector(
    await OrtEngine.create(fp32Bytes.get(detectorSpec.name) ?? detectorSpec.build().serialize(PRODUCER)),
    DEFAULT_DETECTION,
  );
  const files = listCalibrationImages(calibDir, opts.calibLimit);
  log(`[models] calibration set: ${files.length} images from ${calibDir}`);
  const { samples, noFace } = await buildCalibrationSet(calibDir, files, detector, {
    antispoof: specSize('anti-spoof'),
    liveness: specSize('liveness'),
  });
  log(`[models] calibration faces: ${samples.length - noFace} found, ${noFace} centre-cropped`);

  const manifests: ModelManifest[] = [];
  for (const spec of specs) {
    const inputs = spec.calibrationInputs(samples);
    const fp32 = fp32Bytes.get(spec.name) as Uint8Array;
    manifests.push(await writeModel(opts.outDir, spec, 'fp32', fp32, undefined, samples));
    log(`[models] ${spec.name}: quantizing on ${inputs.length} samples`);
    const q = await quantizeBest(graphs.get(spec.name) as Graph, fp32, inputs, spec, log);
    manifests.push(
      await writeModel(
        opts.outDir,
        spec,
        'int8',
        q.graph.serialize(PRODUCER),
        {
          format: 'QDQ',
          weights: 'int8 symmetric per-channel',
          activations: 'uint8 asymmetric per-tensor',
          method: q.method,
          ...(q.method === 'percentile' ? { percentile: q.percentile } : {}),
          calibration: { dataset: 'lfw/calib', samples: q.calibrationSamples, heldOut: q.heldOutSamples },
          methodFidelity: q.fidelity,
          quantizedTensors: q.quantizedTensors,
        },
        samples,
      ),
    );
  }
  return manifests;
}

function specSize(task: ModelSpec['task']): number {
  return (MODEL_SPECS.find((s) => s.task === task) as ModelSpec).input.shape[3];
}

async function writeModel(
  outDir: string,
  spec: ModelSpec,
  precision: Precision,
  onnx: Uint8Array,
  quantization: ModelManifest['quantization'],
  samples: CalibrationSample[],
): Promise<ModelManifest> {
  const file = `${spec.name}.${precision}.onnx`;
  const manifest: ModelManifest = {
    schemaVersion: 1,
    name: spec.name,
    version: MODELS_VERSION,
    task: spec.task,
    file,
    sha256: sha256(onnx),
    bytes: onnx.length,
    precision,
    input: spec.input,
    outputs: spec.outputs,
    ...(quantization ? { quantization } : {}),
    ...(spec.task === 'face-embedding' ? { thresholds: await embedderThresholds(onnx, spec, samples) } : {}),
    source: spec.source(),
    ...(spec.gates ? { gates: spec.gates() } : {}),
  };
  const errors = validateManifest(manifest);
  if (errors.length > 0) throw new Error(`built manifest for ${file} is invalid: ${errors.join('; ')}`);
  writeFileAtomic(join(outDir, file), onnx);
  writeFileAtomic(manifestPathFor(outDir, spec.name, precision), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Cosine thresholds for FAR 1e-2 and 1e-3 over every different-person pair of calib faces. */
async function embedderThresholds(
  onnx: Uint8Array,
  spec: ModelSpec,
  samples: CalibrationSample[],
): Promise<NonNullable<ModelManifest['thresholds']>> {
  const engine = await OrtEngine.create(onnx);
  const stub = {
    task: spec.task,
    name: spec.name,
    input: spec.input,
    outputs: spec.outputs,
  } as ModelManifest;
  const embedder = new FaceEmbedder(engine, stub);
  const embeddings: Float32Array[] = [];
  for (let i = 0; i < samples.length; i += 16)
    embeddings.push(...(await embedder.embed(samples.slice(i, i + 16).map((s) => s.aligned))));
  await engine.close();
  const { genuine, impostor } = allPairScores(
    samples.map((s) => s.person),
    embeddings,
    cosine,
  );
  const round = (v: number) => Number(v.toFixed(6));
  return {
    far: { '0.01': round(thresholdForFar(impostor, 0.01)), '0.001': round(thresholdForFar(impostor, 0.001)) },
    measuredOn: 'lfw/calib',
    impostorPairs: impostor.length,
    genuinePairs: genuine.length,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const started = performance.now();
  ort.env.logLevel = 'error';
  const manifests = await buildModels({
    outDir: resolve(process.env.FACEGATE_MODELS_DIR ?? 'models'),
    dataDir: resolve(process.env.FACEGATE_DATA ?? '../shared/data'),
    calibLimit: process.env.FACEGATE_CALIB_LIMIT ? Number(process.env.FACEGATE_CALIB_LIMIT) : undefined,
    // `npm run models -- facerec-gated` rebuilds only that one.
    only: process.argv.length > 2 ? process.argv.slice(2) : undefined,
  });
  for (const m of manifests) {
    const extra = m.quantization ? ` method=${m.quantization.method}` : '';
    const thr = m.thresholds
      ? ` thr@1e-2=${m.thresholds.far['0.01']} thr@1e-3=${m.thresholds.far['0.001']}`
      : '';
    console.log(
      `${m.file.padEnd(24)} ${String(m.bytes).padStart(9)} bytes sha256=${m.sha256.slice(0, 12)}${extra}${thr}`,
    );
  }
  console.log(`[models] done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
