// Measures a calibration table from a folder of face photos (one sub-folder per person, e.g. lfw/calib):
// the project's own fp32 detector finds and aligns the faces exactly as the runtime will, each model is
// calibrated with every method and the most faithful one kept, and the embedders' FAR thresholds are
// measured over every different-person pair. The alignment template is re-derived from the committed
// dlib chips with the same detector.
import { openEngine } from '../../runtime/engine/open.ts';
import { OrtEngine } from '../../runtime/engine/ort.ts';
import { thresholdForFar } from '../../runtime/eval/metrics.ts';
import { allPairScores } from '../../runtime/eval/pair-scores.ts';
import type { ModelManifest } from '../../runtime/models/manifest.ts';
import { sha256 } from '../../runtime/models/manifest.ts';
import { DLIB_CHIPS_DIR } from '../../runtime/paths.ts';
import type { EngineKind } from '../../runtime/types.ts';
import { DEFAULT_DETECTION, FaceDetector } from '../../runtime/vision/detector.ts';
import { cosine, FaceEmbedder } from '../../runtime/vision/embedder.ts';
import { FACEREC_TEMPLATE } from '../../runtime/vision/face-template.ts';
import { PRODUCER, quantizedModel, selectSpecs } from './build.ts';
import { buildCalibrationSet, type CalibrationSample, listCalibrationImages } from './calibration-set.ts';
import type { CalibrationTable, MeasuredThresholds, ModelCalibration } from './calibration-table.ts';
import { deriveTemplatePoints } from './derive-template.ts';
import { serializeModel } from './onnx/writer.ts';
import { PERCENTILE } from './quantize/calibrate.ts';
import { planQuantization, quantizeGraph } from './quantize/qdq.ts';
import { calibrateBest, exactInt8Judge } from './quantize-model.ts';
import { MODEL_SPECS, type ModelSpec } from './specs.ts';

export interface CalibrateOptions {
  /** Folder of calibration faces, one sub-folder per person. */
  dir: string;
  /** How manifests name the folder (e.g. lfw/calib). */
  dataset: string;
  /** Use only the first N images (smoke runs). */
  limit?: number;
  /** Models to calibrate (default: all). */
  only?: readonly string[];
  log: (line: string) => void;
}

/** The calibration faces of `opts.dir`, found and aligned by the fp32 detector as the runtime does. */
async function calibrationFaces(opts: CalibrateOptions) {
  const detectorSpec = MODEL_SPECS.find((s) => s.task === 'face-detection') as ModelSpec;
  const detector = new FaceDetector(
    await OrtEngine.create(serializeModel(detectorSpec.build(), PRODUCER)),
    DEFAULT_DETECTION,
  );
  const files = listCalibrationImages(opts.dir, opts.limit);
  opts.log(`[calibrate] ${files.length} images from ${opts.dir}`);
  const { samples, noFace } = await buildCalibrationSet(opts.dir, files, detector, {
    antispoof: specSize('anti-spoof'),
    liveness: specSize('liveness'),
  });
  opts.log(`[calibrate] faces: ${samples.length - noFace} found, ${noFace} centre-cropped`);
  return { detector, files, samples, noFace };
}

/**
 * `table` with its embedders' thresholds measured again, on the models its ranges build: the ranges, and
 * so every model's bytes, stay as they are (a full recalibration on another CPU moves them by float noise).
 */
export async function measureThresholds(
  opts: CalibrateOptions,
  table: CalibrationTable,
  tablePath: string,
): Promise<CalibrationTable> {
  const { samples } = await calibrationFaces(opts);
  const models = { ...table.models };
  for (const spec of selectSpecs(opts.only).filter((s) => s.task === 'face-embedding')) {
    const calibration = models[spec.name];
    const fp32 = serializeModel(spec.build(), PRODUCER);
    if (!calibration || calibration.fp32Sha256 !== sha256(fp32))
      throw new Error(
        `${tablePath}: ${spec.name} has no calibration of this fp32 graph; calibrate it in full`,
      );
    const { int8 } = quantizedModel(spec, calibration, tablePath);
    opts.log(`[calibrate] ${spec.name}: thresholds over every impostor pair`);
    models[spec.name] = {
      ...calibration,
      thresholds: await embedderThresholds(fp32, int8, spec, samples),
    };
  }
  return { ...table, models };
}

/** The table for the models in `only` (default: all). */
export async function measureCalibration(opts: CalibrateOptions): Promise<CalibrationTable> {
  const { log } = opts;
  const specs = selectSpecs(opts.only);
  const graphs = specs.map((spec) => spec.build());
  const judges = await Promise.all(specs.map((spec, i) => exactInt8Judge(graphs[i], spec.name)));
  const { detector, files, samples, noFace } = await calibrationFaces(opts);
  const points = await deriveTemplatePoints(detector, FACEREC_TEMPLATE.indices, DLIB_CHIPS_DIR);

  const models: Record<string, ModelCalibration> = {};
  for (const [i, spec] of specs.entries()) {
    const graph = graphs[i];
    const fp32 = serializeModel(graph, PRODUCER);
    const inputs = spec.calibrationInputs(samples);
    log(`[calibrate] ${spec.name}: ${inputs.length} samples`);
    const best = await calibrateBest(judges[i], graph, fp32, inputs, spec, log);
    let thresholds: ModelCalibration['thresholds'];
    if (spec.task === 'face-embedding') {
      const int8 = serializeModel(quantizeGraph(graph, planQuantization(graph), best.ranges).graph, PRODUCER);
      thresholds = await embedderThresholds(fp32, int8, spec, samples);
    }
    models[spec.name] = {
      fp32Sha256: sha256(fp32),
      method: best.method,
      samples: best.calibrationSamples,
      heldOut: best.heldOutSamples,
      methodFidelity: best.fidelity,
      ranges: Object.fromEntries([...best.ranges].map(([t, r]) => [t, [r.lo, r.hi]])),
      ...(thresholds ? { thresholds } : {}),
    };
  }
  return {
    format: 'facegate-calibration/1',
    dataset: opts.dataset,
    images: files.length,
    noFace,
    percentile: PERCENTILE,
    alignmentTemplate: { indices: [...FACEREC_TEMPLATE.indices], points: points as [number, number][] },
    models,
  };
}

function specSize(task: ModelSpec['task']): number {
  return (MODEL_SPECS.find((s) => s.task === task) as ModelSpec).input.shape[3];
}

/** FARs measured per decade on the curve: 10^(-i/4), so 1e-2 and 1e-3 are points of it. */
const CURVE_STEPS_PER_DECADE = 4;
/** The curve stops where fewer impostor pairs than this lie above the threshold: below, it is noise. */
const MIN_PAIRS_ABOVE = 10;

/** The curve's FARs: 0.1, 0.056, 0.032, ... down to the last one with MIN_PAIRS_ABOVE impostor pairs. */
export function curveFars(impostorPairs: number): number[] {
  const fars: number[] = [];
  for (let i = CURVE_STEPS_PER_DECADE; ; i++) {
    const far = Number((10 ** (-i / CURVE_STEPS_PER_DECADE)).toPrecision(6));
    if (far * impostorPairs < MIN_PAIRS_ABOVE) return fars;
    fars.push(far);
  }
}

/**
 * An embedder's thresholds at both precisions: fp32 on ONNX Runtime, int8 on the native kernels (the
 * engine devices run, and exact int8 on every CPU where ORT's saturates on x86 without VNNI, so the
 * thresholds do not depend on where they were measured).
 */
async function embedderThresholds(
  fp32: Uint8Array,
  int8: Uint8Array,
  spec: ModelSpec,
  samples: CalibrationSample[],
): Promise<NonNullable<ModelCalibration['thresholds']>> {
  return {
    fp32: await measuredThresholds(fp32, 'ort', spec, samples),
    int8: await measuredThresholds(int8, 'kernels', spec, samples),
  };
}

/** Cosine thresholds for FAR 1e-2, 1e-3 and the curve over every different-person pair of calibration faces. */
async function measuredThresholds(
  onnx: Uint8Array,
  engineKind: EngineKind,
  spec: ModelSpec,
  samples: CalibrationSample[],
): Promise<MeasuredThresholds> {
  const engine = await openEngine(onnx, { engine: engineKind, label: spec.name });
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
    impostorPairs: impostor.length,
    genuinePairs: genuine.length,
    curve: curveFars(impostor.length).map((far) => [far, round(thresholdForFar(impostor, far))]),
  };
}
