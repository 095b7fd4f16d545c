// The embedder on each engine the native-kernels issue compares: ORT fp32, ORT int8, the kernels dense
// and the kernels with ReLU-zero prediction (the gated embedder, docs/relu-zero.md), at 1 and 2
// threads, all interleaved in one process over real aligned faces.
import { join } from 'node:path';
import { KernelsEngine } from '../engine/kernels.ts';
import { type LoweredModel, lowerQdqModel } from '../engine/lower.ts';
import { openModel } from '../engine/registry.ts';
import {
  loadModel,
  MODEL_NAMES,
  type ModelManifest,
  manifestPathFor,
  type OpenedModel,
  type Precision,
} from '../models/manifest.ts';
import { TRAIN_FACES_DIR } from '../paths.ts';
import type { EngineKind, InferenceEngine, TensorIn } from '../types.ts';
import { listFaceFolder } from '../util/face-folder.ts';
import type { Logger } from '../util/log.ts';
import { interleaved } from '../util/timing.ts';
import { DEFAULT_DETECTION, FaceDetector } from '../vision/detector.ts';
import { mirrorRgb } from '../vision/embedder.ts';
import { alignedFaceCrop } from '../vision/face-crop.ts';
import { decodeImage } from '../vision/image.ts';
import { rgbToNchw } from '../vision/tensor.ts';

export interface EmbedderBenchRow {
  engine: EngineKind;
  precision: Precision;
  /** The gated embedder: convs skip the outputs its ReLU-zero predictors mark as zero. */
  relu_zero: boolean;
  /** Images per run: 1 (a face), or 2 (a face and its mirror, as the embedder runs them). */
  batch: number;
  threads: number;
  p50_ms: number;
  p95_ms: number;
  /** Fraction of the dense conv MACs not executed (mean over the faces; predictors not counted). */
  skip_ratio: number;
  /** Multiply-accumulates executed per embedding (mean): convs where computed, predictors, fc. */
  macs: number;
  /** Share of the skipped conv MACs that depends on the face: skipped at a pixel that some bench
   * face computes (the rest is closed for every face, i.e. static). Null without gates. */
  input_dependent_share: number | null;
}

type Variant = Pick<EmbedderBenchRow, 'engine' | 'precision' | 'relu_zero' | 'batch'>;

const ORT_FP32: Variant = { engine: 'ort', precision: 'fp32', relu_zero: false, batch: 1 };
const ORT_INT8: Variant = { engine: 'ort', precision: 'int8', relu_zero: false, batch: 1 };
const KERNELS_DENSE: Variant = { engine: 'kernels', precision: 'int8', relu_zero: false, batch: 1 };
const KERNELS_RELU0: Variant = { engine: 'kernels', precision: 'int8', relu_zero: true, batch: 1 };
const mirrored = (v: Variant): Variant => ({ ...v, batch: 2 });

/** `X_vs_Y` = p50(Y) / p50(X): above 1, X is faster. */
const RATIOS = {
  kernels_dense_vs_ort_int8_1t: [KERNELS_DENSE, ORT_INT8, 1],
  kernels_relu0_vs_kernels_dense_1t: [KERNELS_RELU0, KERNELS_DENSE, 1],
  kernels_relu0_vs_kernels_dense_2t: [KERNELS_RELU0, KERNELS_DENSE, 2],
  kernels_relu0_vs_ort_int8_1t: [KERNELS_RELU0, ORT_INT8, 1],
  kernels_relu0_vs_ort_int8_2t: [KERNELS_RELU0, ORT_INT8, 2],
  kernels_relu0_vs_kernels_dense_mirror_2t: [mirrored(KERNELS_RELU0), mirrored(KERNELS_DENSE), 2],
  kernels_relu0_vs_ort_int8_mirror_2t: [mirrored(KERNELS_RELU0), mirrored(ORT_INT8), 2],
  ort_int8_vs_fp32_1t: [ORT_INT8, ORT_FP32, 1],
} as const satisfies Record<string, readonly [Variant, Variant, number]>;

/** Null where a row is missing (no kernels rows without the addon or the gated model). */
export type EmbedderRatios = Record<keyof typeof RATIOS, number | null>;

export function embedderRatios(rows: EmbedderBenchRow[]): EmbedderRatios {
  const p50 = (v: Variant, threads: number) =>
    rows.find(
      (r) =>
        r.engine === v.engine &&
        r.precision === v.precision &&
        r.relu_zero === v.relu_zero &&
        r.batch === v.batch &&
        r.threads === threads,
    )?.p50_ms;
  const ratio = ([x, y, threads]: readonly [Variant, Variant, number]) => {
    const px = p50(x, threads);
    const py = p50(y, threads);
    return px && py ? Math.round((py / px) * 100) / 100 : null;
  };
  return Object.fromEntries(
    Object.entries(RATIOS).map(([name, spec]) => [name, ratio(spec)]),
  ) as EmbedderRatios;
}

/** Every photo of the MIT-licensed face_recognition examples' training set, detected and aligned as
 * the pipeline does (the benchmark's faces, and the engine tests'). */
export async function alignedFaces(modelsDir: string): Promise<Buffer[]> {
  const photos = listFaceFolder(TRAIN_FACES_DIR).map((photo) => join(TRAIN_FACES_DIR, photo.file));
  const detectorModel = await openModel({ dir: modelsDir, name: MODEL_NAMES.detector, precision: 'fp32' });
  const detector = new FaceDetector(detectorModel.engine, DEFAULT_DETECTION);
  const crops: Buffer[] = [];
  for (const photo of photos) {
    const { crop, face } = await alignedFaceCrop(detector, await decodeImage(photo));
    if (!face) throw new Error(`benchmark photo ${photo} without a detectable face`);
    crops.push(crop);
  }
  await detectorModel.engine.close();
  return crops;
}

/** Median wall time per embedder site (the stem or a residual block, with its gate; the rest under
 * the op's own name), dense kernels vs ReLU-zero kernels, 1 thread. */
export interface LayerTime {
  site: string;
  dense_us: number;
  relu0_us: number | null;
}

/** The ReLU-zero gates the relu_zero kernels rows ran: the model's files, its manifest's gate design
 * (null where the manifest does not state it) and the convs the kernels gate. */
export interface GatesInUse {
  model: string;
  granularity: string | null;
  threshold: number | null;
  convs: string[];
}

function gatesInUse(manifest: ModelManifest, engine: KernelsEngine): GatesInUse {
  const design = manifest.gates ?? {};
  const { granularity, threshold } = design;
  return {
    model: `${manifest.name}.${manifest.precision}`,
    granularity:
      typeof granularity === 'object' && granularity !== null && 'name' in granularity
        ? String(granularity.name)
        : null,
    threshold: typeof threshold === 'number' ? threshold : null,
    convs: engine.model.gates.map((g) => g.conv),
  };
}

export async function benchEmbedder(opts: {
  modelsDir: string;
  rounds: number;
  log: Logger;
}): Promise<{ rows: EmbedderBenchRow[]; layers: LayerTime[]; gates: GatesInUse | null }> {
  const crops = await alignedFaces(opts.modelsDir);
  const open = (v: Variant, threads: number) =>
    openModel({
      dir: opts.modelsDir,
      name: v.relu_zero ? MODEL_NAMES.gatedEmbedder : MODEL_NAMES.embedder,
      precision: v.precision,
      threads,
      engine: v.engine,
    });
  const opened: { variant: Variant; threads: number; model: OpenedModel }[] = [];
  const variants = (threads: number) => [
    ORT_FP32,
    ORT_INT8,
    KERNELS_DENSE,
    KERNELS_RELU0,
    // How the embedder runs a face: with its mirror in one batch (docs/kernels.md, Threading).
    ...(threads > 1 ? [ORT_INT8, KERNELS_DENSE, KERNELS_RELU0].map(mirrored) : []),
  ];
  for (const threads of [1, 2]) {
    for (const variant of variants(threads)) {
      const model = await open(variant, threads);
      // Without the addon 'kernels' falls back to ORT, which must not be reported as the kernels.
      if (model.engine.name !== variant.engine) {
        opts.log.info(`bench embedder: no ${variant.engine} rows (the model opened on ${model.engine.name})`);
        await model.engine.close();
        continue;
      }
      opened.push({ variant, threads, model });
    }
  }
  const { manifest } = opened[0].model;
  const size = manifest.input.shape[3];
  const feedsOf = (batch: number) =>
    crops.map((c) => {
      const images = batch === 1 ? [c] : [c, mirrorRgb(c, size)];
      const data = new Float32Array(images.length * 3 * size * size);
      images.forEach((img, n) => {
        rgbToNchw(img, size, manifest.input.mean, manifest.input.std, data, n * 3 * size * size);
      });
      return { [manifest.input.name]: { data, dims: [images.length, 3, size, size] } };
    });
  const feedsByBatch = new Map([1, 2].map((b) => [b, feedsOf(b)]));
  const feeds = feedsOf(1);
  // The dense count on the kernels' terms (convs and fc), so every row's macs compare.
  const lowered = lowerQdqModel(
    loadModel(manifestPathFor(opts.modelsDir, MODEL_NAMES.embedder, 'int8')).onnx,
  );
  const denseMacs =
    lowered.macs + lowered.plan.ops.reduce((sum, op) => sum + (op.op === 'fc' ? op.cin * op.cout : 0), 0);
  const cases = opened.map(({ model, variant }, k) => {
    let i = 0;
    const engine: InferenceEngine = model.engine;
    const batchFeeds = feedsByBatch.get(variant.batch) ?? feeds;
    return {
      name: String(k),
      run: () => engine.run(batchFeeds[i++ % batchFeeds.length]),
    };
  });
  opts.log.info(
    `bench embedder: ${cases.length} cases x ${opts.rounds} rounds over ${crops.length} aligned faces`,
  );
  const timings = await interleaved(cases, { warmup: 5, rounds: opts.rounds });
  const rows: EmbedderBenchRow[] = [];
  for (const [k, { variant, threads, model }] of opened.entries()) {
    const work = model.engine instanceof KernelsEngine ? await executedMacs(model.engine, feeds) : undefined;
    rows.push({
      ...variant,
      threads,
      p50_ms: round(timings[k].p50),
      p95_ms: round(timings[k].p95),
      skip_ratio: work ? Math.round(work.skipped * 10000) / 10000 : 0,
      macs: work ? Math.round(work.executed) : denseMacs,
      input_dependent_share:
        work && variant.relu_zero ? Math.round(work.inputDependentShare * 10000) / 10000 : null,
    });
  }
  const profiled = (relu0: boolean) =>
    opened.find((o) => o.threads === 1 && o.variant === (relu0 ? KERNELS_RELU0 : KERNELS_DENSE))?.model;
  const denseEngine = profiled(false)?.engine;
  const relu0Model = profiled(true);
  const relu0Engine = relu0Model?.engine;
  const gates =
    relu0Model && relu0Engine instanceof KernelsEngine ? gatesInUse(relu0Model.manifest, relu0Engine) : null;
  const layers =
    denseEngine instanceof KernelsEngine
      ? await layerTimes(
          denseEngine,
          relu0Engine instanceof KernelsEngine ? relu0Engine : undefined,
          feeds,
          Math.max(1, Math.ceil(opts.rounds / 10)),
        )
      : [];
  await Promise.all(opened.map((o) => o.model.engine.close()));
  return { rows, layers, gates };
}

/** Per-site median op times (lastRunProfile) over `rounds` passes over the faces. Medians per op,
 * then summed per site: robust to the preemptions a shared machine adds to whole-run times. */
async function layerTimes(
  dense: KernelsEngine,
  relu0: KernelsEngine | undefined,
  feeds: Record<string, TensorIn>[],
  rounds: number,
): Promise<LayerTime[]> {
  const profile = async (engine: KernelsEngine) => {
    const samples = new Map<string, number[]>();
    for (let r = 0; r < rounds; r++)
      for (const feed of feeds) {
        await engine.run(feed);
        for (const { op, micros } of engine.lastRunProfile())
          samples.set(op, [...(samples.get(op) ?? []), micros]);
      }
    const bySite = new Map<string, number>();
    for (const [op, us] of samples) {
      const site = (op.split(':')[1] ?? op).split('/')[0];
      const sorted = us.sort((a, b) => a - b);
      bySite.set(site, (bySite.get(site) ?? 0) + sorted[sorted.length >> 1]);
    }
    return bySite;
  };
  const d = await profile(dense);
  const g = relu0 ? await profile(relu0) : undefined;
  const r1 = (v: number) => Math.round(v * 10) / 10;
  return [...new Set([...d.keys(), ...(g?.keys() ?? [])])].map((site) => ({
    site,
    dense_us: r1(d.get(site) ?? 0),
    relu0_us: g ? r1(g.get(site) ?? 0) : null,
  }));
}

/** Mean multiply-accumulates the kernels executed per face, the mean fraction of conv MACs they
 * skipped, and the share of the skipped MACs that depends on the face (see inputDependentShare). */
async function executedMacs(
  engine: KernelsEngine,
  feeds: Record<string, TensorIn>[],
): Promise<{ executed: number; skipped: number; inputDependentShare: number }> {
  let executed = 0;
  let skipped = 0;
  const masks: ReturnType<KernelsEngine['lastGateMasks']>[] = [];
  for (const feed of feeds) {
    await engine.run(feed);
    const macs = engine.lastRunMacs();
    executed += macs.executed;
    skipped += 1 - macs.conv / macs.convDense;
    masks.push(engine.lastGateMasks());
  }
  return {
    executed: executed / feeds.length,
    skipped: skipped / feeds.length,
    inputDependentShare: inputDependentShare(engine.model, masks),
  };
}

/**
 * Of the conv MACs the faces skipped, the share skipped at pixels that at least one of the faces
 * computes: what the predictors decide per face, as opposed to pixels (or whole convs) closed for
 * every face, which a statically pruned model would skip as well. `masks[face][gate]` as
 * KernelsEngine.lastGateMasks returns them.
 */
export function inputDependentShare(
  model: LoweredModel,
  masks: { mask: Uint8Array; dilate: number }[][],
): number {
  let skipped = 0;
  let dependent = 0;
  for (const [g, gate] of model.gates.entries()) {
    const conv = model.plan.ops.find(
      (op) => op.op === 'conv' && op.mask === gate.mask && (op.maskDilate ?? 1) === gate.dilate,
    );
    if (conv?.op !== 'conv') throw new Error(`no conv reads the mask of gate ${gate.conv}`);
    const macsPerPixel = conv.kh * conv.kw * conv.cin * conv.cout;
    const { w } = maskShape(model, gate.mask);
    const open = masks.map((face) => dilate(face[g].mask, w, face[g].dilate));
    for (let p = 0; p < open[0].length; p++) {
      const closedIn = open.reduce((n, m) => n + (m[p] ? 0 : 1), 0);
      skipped += closedIn * macsPerPixel;
      if (closedIn < open.length) dependent += closedIn * macsPerPixel;
    }
  }
  return skipped > 0 ? dependent / skipped : 0;
}

function maskShape(model: LoweredModel, id: number): { h: number; w: number } {
  const gate = model.plan.ops.find((op) => op.op === 'gate' && op.output === id);
  if (gate?.op !== 'gate') throw new Error(`no gate produces tensor ${id}`);
  return { h: gate.outH, w: gate.outW };
}

/** The mask widened by a k x k max (k odd, centred), as the conv widens it. */
function dilate(mask: Uint8Array, w: number, k: number): Uint8Array {
  if (k === 1) return mask;
  const h = mask.length / w;
  const r = k >> 1;
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (mask[y * w + x])
        for (let yy = Math.max(0, y - r); yy <= Math.min(h - 1, y + r); yy++)
          out.fill(1, yy * w + Math.max(0, x - r), yy * w + Math.min(w - 1, x + r) + 1);
  return out;
}

const round = (v: number) => Math.round(v * 1000) / 1000;
