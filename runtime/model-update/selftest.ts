// The last check before a candidate model goes live: run it through the pipeline's own pre- and
// post-processing on a small golden set shipped with the runtime and check that it still does its job.
// Loading and shape checks (compat.ts) cannot tell a good model from one with scrambled weights; this can.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { ModelManifest } from '../models/manifest.ts';
import type { InferenceEngine } from '../types.ts';
import { iou } from '../vision/blazeface.ts';
import { DEFAULT_DETECTION, FaceDetector } from '../vision/detector.ts';
import { cosine, FaceEmbedder } from '../vision/embedder.ts';
import { decodeImage } from '../vision/image.ts';

export const GOLDEN_DIR = fileURLToPath(new URL('./golden/', import.meta.url));

/** golden/golden.json, written by make-golden.ts. */
export interface GoldenSet {
  /** Aligned face crops (PNG) as the embedder sees them. */
  crops: { file: string; person: string; source: string }[];
  pairs: { same: [string, string][]; different: [string, string][] };
  /** Downscaled photos with exactly one face, and the box the reference detector found. */
  photos: { file: string; source: string; box: [number, number, number, number] }[];
}

export function loadGoldenSet(dir = GOLDEN_DIR): GoldenSet {
  return JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as GoldenSet;
}

export interface SelfTestOptions {
  goldenDir?: string;
  /** How far the least similar same-person pair must stay above the most similar different-person pair. */
  margin?: number;
  /** Score the single detected face must reach on each golden photo. */
  minFaceScore?: number;
  /**
   * The running model: an embedder candidate must reject every golden pair the running model rejects
   * at its FAR 1e-3 threshold, judged by each one's own threshold.
   */
  reference?: { engine: InferenceEngine; manifest: ModelManifest };
}

const SELFTEST_DEFAULTS = { margin: 0.05, minFaceScore: 0.7 };

export interface SelfTestReport {
  ok: boolean;
  failures: string[];
  /** Median time of one input (after a warm-up run, which is not counted), ms. */
  latencyMs: number;
  /** Embedders: lowest same-person and highest different-person cosine. */
  sameMin?: number;
  differentMax?: number;
  /** Detectors: the score of the face found in each photo (0 when not exactly one face). */
  faceScores?: number[];
}

export async function selfTest(
  engine: InferenceEngine,
  manifest: ModelManifest,
  opts: SelfTestOptions = {},
): Promise<SelfTestReport> {
  const dir = opts.goldenDir ?? GOLDEN_DIR;
  const golden = loadGoldenSet(dir);
  if (manifest.task === 'face-embedding')
    return testEmbedder(
      engine,
      manifest,
      golden,
      dir,
      opts.margin ?? SELFTEST_DEFAULTS.margin,
      opts.reference,
    );
  if (manifest.task === 'face-detection')
    return testDetector(engine, golden, dir, opts.minFaceScore ?? SELFTEST_DEFAULTS.minFaceScore);
  return testOutputs(engine, manifest, golden, dir);
}

/** Runs `fn` once untimed (ORT allocates on the first run), then once per input, timed. */
async function timed<T, R>(
  inputs: T[],
  fn: (input: T) => Promise<R>,
): Promise<{ results: R[]; latencyMs: number }> {
  await fn(inputs[0]);
  const results: R[] = [];
  const times: number[] = [];
  for (const input of inputs) {
    const start = performance.now();
    results.push(await fn(input));
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { results, latencyMs: times[Math.floor(times.length / 2)] };
}

async function readCrop(path: string, size: number): Promise<Buffer> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size)
    throw new Error(`golden crop ${path} is ${info.width}x${info.height}, the model takes ${size}x${size}`);
  return data;
}

async function testEmbedder(
  engine: InferenceEngine,
  manifest: ModelManifest,
  golden: GoldenSet,
  dir: string,
  margin: number,
  reference?: SelfTestOptions['reference'],
): Promise<SelfTestReport> {
  const embedder = new FaceEmbedder(engine, manifest);
  const crops = await Promise.all(golden.crops.map((c) => readCrop(join(dir, c.file), embedder.size)));
  const { results, latencyMs } = await timed(crops, async (crop) => (await embedder.embed([crop]))[0]);
  const failures: string[] = [];
  const byFile = new Map(golden.crops.map((c, i) => [c.file, results[i]]));
  if (reference) failures.push(...(await disagreements(reference, manifest, golden, crops, byFile)));
  results.forEach((e, i) => {
    const norm = Math.sqrt(cosine(e, e));
    if (!e.every(Number.isFinite) || Math.abs(norm - 1) > 1e-3)
      failures.push(`${golden.crops[i].file}: embedding is not finite and unit-length (norm ${norm})`);
  });
  const score = ([a, b]: [string, string]) =>
    cosine(byFile.get(a) as Float32Array, byFile.get(b) as Float32Array);
  const same = golden.pairs.same.map(score);
  const different = golden.pairs.different.map(score);
  const sameMin = Math.min(...same);
  const differentMax = Math.max(...different);
  const threshold = manifest.thresholds?.far['0.01'];
  if (threshold === undefined) failures.push('the manifest has no FAR 1e-2 threshold to test against');
  else {
    golden.pairs.same.forEach((pair, i) => {
      if (!(same[i] > threshold))
        failures.push(
          `same person ${pair.join(' / ')}: cosine ${same[i].toFixed(4)} is not above the FAR 1e-2 threshold ${threshold}`,
        );
    });
  }
  const strict = manifest.thresholds?.far['0.001'];
  golden.pairs.different.forEach((pair, i) => {
    if (strict === undefined || !(different[i] <= strict))
      failures.push(
        `different people ${pair.join(' / ')}: cosine ${different[i].toFixed(4)} is not at or below the FAR 1e-3 threshold ${strict}`,
      );
  });
  if (!(sameMin - differentMax >= margin)) {
    failures.push(
      `same-person pairs (lowest ${sameMin.toFixed(4)}) are not ${margin} above different-person pairs (highest ${differentMax.toFixed(4)})`,
    );
  }
  return { ok: failures.length === 0, failures, latencyMs, sameMin, differentMax };
}

/** Golden pairs the running model rejects and the candidate would accept, each by its own FAR 1e-3 threshold. */
async function disagreements(
  reference: NonNullable<SelfTestOptions['reference']>,
  manifest: ModelManifest,
  golden: GoldenSet,
  crops: Buffer[],
  byFile: Map<string, Float32Array>,
): Promise<string[]> {
  const ours = reference.manifest.thresholds?.far['0.001'];
  const theirs = manifest.thresholds?.far['0.001'];
  if (ours === undefined || theirs === undefined) return [];
  const embedder = new FaceEmbedder(reference.engine, reference.manifest);
  const refByFile = new Map<string, Float32Array>();
  for (const [i, crop] of crops.entries())
    refByFile.set(golden.crops[i].file, (await embedder.embed([crop]))[0]);
  const pairScore = (m: Map<string, Float32Array>, [a, b]: [string, string]) =>
    cosine(m.get(a) as Float32Array, m.get(b) as Float32Array);
  return [...golden.pairs.same, ...golden.pairs.different].flatMap((pair) => {
    const running = pairScore(refByFile, pair);
    const candidate = pairScore(byFile, pair);
    return running <= ours && candidate > theirs
      ? [
          `${pair.join(' / ')}: the candidate matches them (cosine ${candidate.toFixed(4)} > ${theirs}), the running ${reference.manifest.version} does not (${running.toFixed(4)} <= ${ours})`,
        ]
      : [];
  });
}

async function testDetector(
  engine: InferenceEngine,
  golden: GoldenSet,
  dir: string,
  minScore: number,
): Promise<SelfTestReport> {
  const detector = new FaceDetector(engine, DEFAULT_DETECTION);
  const photos = await Promise.all(golden.photos.map((p) => decodeImage(join(dir, p.file))));
  const { results, latencyMs } = await timed(photos, (photo) => detector.detect(photo));
  const failures: string[] = [];
  const faceScores = results.map((faces, i) => {
    const { file, box } = golden.photos[i];
    if (faces.length !== 1) {
      failures.push(`${file}: ${faces.length} faces found, expected exactly 1`);
      return 0;
    }
    const [face] = faces;
    if (!(face.score > minScore))
      failures.push(`${file}: face score ${face.score.toFixed(3)} is not above ${minScore}`);
    const overlap = iou(face.box, box);
    if (!(overlap >= 0.5))
      failures.push(
        `${file}: face found at the wrong place (IoU ${overlap.toFixed(2)} with the reference box)`,
      );
    return face.score;
  });
  return { ok: failures.length === 0, failures, latencyMs, faceScores };
}

/** Models without a task-level check (anti-spoof, liveness): finite outputs of the declared shapes on real faces. */
async function testOutputs(
  engine: InferenceEngine,
  manifest: ModelManifest,
  golden: GoldenSet,
  dir: string,
): Promise<SelfTestReport> {
  const { name, shape, mean, std } = manifest.input;
  const [, , height, width] = shape;
  const inputs = await Promise.all(
    golden.crops.map(async (c) => {
      const rgb = await sharp(join(dir, c.file)).removeAlpha().resize(width, height).raw().toBuffer();
      const plane = width * height;
      const data = new Float32Array(3 * plane);
      for (let ch = 0; ch < 3; ch++)
        for (let p = 0; p < plane; p++) data[ch * plane + p] = (rgb[p * 3 + ch] - mean[ch]) / std[ch];
      return { data, dims: [1, 3, height, width] };
    }),
  );
  const { results, latencyMs } = await timed(inputs, (input) => engine.run({ [name]: input }));
  const failures: string[] = [];
  results.forEach((out, i) => {
    for (const o of manifest.outputs) {
      const t = out[o.name];
      const dimsOk =
        t &&
        t.dims.length === o.shape.length &&
        t.dims.every((d, k) => o.shape[k] === -1 || d === o.shape[k]);
      if (!t || !dimsOk || !t.data.every(Number.isFinite))
        failures.push(`${golden.crops[i].file}: output ${o.name} is missing, misshapen or not finite`);
    }
  });
  return { ok: failures.length === 0, failures, latencyMs };
}
