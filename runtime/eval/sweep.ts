// `facegate eval sweep`: the ReLU-zero speed/accuracy trade-off on LFW. Faces are detected and aligned
// once; then the int8 embedder runs on ONNX Runtime, on the kernels densely, and gated on the kernels
// with the gates' threshold moved (higher: more pixels closed, faster, further from the dense network),
// each scored with the eval protocol; finally all of them are timed side by side, interleaved, at one
// thread (per-configuration wall time over the whole set would measure the machine's load instead).
import { join } from 'node:path';
import { inputDependentShare } from '../bench/embedder.ts';
import { KernelsEngine } from '../engine/kernels.ts';
import { loadKernels } from '../engine/kernels-addon.ts';
import { openModel } from '../engine/registry.ts';
import { findGates } from '../models/gated/pattern.ts';
import { loadModel, MODEL_NAMES, manifestPathFor } from '../models/manifest.ts';
import { type OnnxModel, readOnnx } from '../models/onnx/reader.ts';
import { type LineChartSpec, renderLineChart } from '../report/plot.ts';
import { Progress } from '../report/progress.ts';
import type { InferenceEngine, TensorIn } from '../types.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { interleaved } from '../util/timing.ts';
import { FaceDetector } from '../vision/detector.ts';
import { FaceEmbedder } from '../vision/embedder.ts';
import { alignedFaceCrop } from '../vision/face-crop.ts';
import { decodeImage } from '../vision/image.ts';
import { rgbToNchw } from '../vision/tensor.ts';
import { scoreLfw } from './lfw.ts';
import { readLfwPairs } from './lfw-pairs.ts';

export interface SweepOptions {
  images: string;
  pairs: string;
  modelsDir: string;
  /** Gate thresholds to try on the gated embedder (the trained one is 0). */
  thresholds: number[];
  /** More gated embedders to sweep side by side (one curve each): a name and the models folder holding
   * its facerec-gated.int8 model. The one in `modelsDir` is always swept, named 'kernels ReLU-zero'. */
  candidates?: { name: string; modelsDir: string }[];
  pngPath?: string;
  log?: Logger;
}

export interface SweepPoint {
  name: string;
  engine: 'ort' | 'kernels';
  relu_zero: boolean;
  /** Which gated embedder (null: no gates). */
  candidate: string | null;
  /** The gates' threshold (null: no gates). */
  threshold: number | null;
  /** Median time of one embedder network run (one aligned face), 1 thread, interleaved with the others. */
  ms_per_run: number;
  /** Mean fraction of the dense conv MACs not executed. */
  skip_ratio: number;
  /** Of those, the share that some face computes (inputDependentShare over the first face of every
   * batch, ~480 of LFW dev's faces); the rest is closed for every face (static). Null without gates. */
  input_dependent_share: number | null;
  accuracy: number;
  accuracy_std: number;
  tpr_at_far: { '0.01': number; '0.001': number };
  /** Over every genuine and impostor combination of the dev images (tighter at low FAR). */
  tpr_at_far_all_pairs: { '0.01': number; '0.001': number };
}

/** Counts the conv MACs the kernels skipped in every run of the engine it wraps, and keeps each
 * batch's gate masks (of its first item). */
class SkipCounter implements InferenceEngine {
  items = 0;
  skipped = 0;
  private readonly masks: ReturnType<KernelsEngine['lastGateMasks']>[] = [];
  constructor(private readonly inner: InferenceEngine) {}
  get name() {
    return this.inner.name;
  }
  get inputNames() {
    return this.inner.inputNames;
  }
  get outputNames() {
    return this.inner.outputNames;
  }
  async run(inputs: Record<string, TensorIn>) {
    const out = await this.inner.run(inputs);
    const n = Object.values(inputs)[0].dims[0];
    this.items += n;
    // The kernels report MACs summed over the batch: the ratio is the batch's skipped share.
    if (this.inner instanceof KernelsEngine) {
      const macs = this.inner.lastRunMacs();
      this.skipped += n * (1 - macs.conv / macs.convDense);
      if (this.inner.model.gates.length > 0) this.masks.push(this.inner.lastGateMasks());
    }
    return out;
  }
  /** The input-dependent share of the skipped MACs over the kept masks; null without gates. */
  inputDependentShare(): number | null {
    return this.inner instanceof KernelsEngine && this.masks.length > 0
      ? inputDependentShare(this.inner.model, this.masks)
      : null;
  }
  close() {
    return this.inner.close();
  }
}

/** The gated model with every gate's threshold set to `t`. */
function withThreshold(onnx: Uint8Array, t: number): OnnxModel {
  const model = readOnnx(onnx);
  for (const site of findGates(model.graph)) {
    const init = model.graph.initializers.get(site.open.inputs[1]);
    if (!init) throw new Error(`gate of ${site.conv.name} has no threshold initializer`);
    model.graph.initializers.set(site.open.inputs[1], { ...init, data: Float32Array.of(t) });
  }
  return model;
}

const BATCH = 8;
/** Timing rounds: each configuration runs once per round, on the next of the first faces in turn. */
const TIMING_ROUNDS = 300;
const TIMING_FACES = 50;

export async function sweepLfw(opts: SweepOptions): Promise<SweepPoint[]> {
  const log = opts.log ?? silentLogger;
  const binding = loadKernels({ log });
  if (!binding) throw new Error('eval sweep needs the native kernels (node kernels/build.mjs)');
  const { pairs } = await readLfwPairs(opts.pairs);
  const files = [...new Set(pairs.flatMap((p) => [p.a, p.b]))].sort();

  const detectorModel = await openModel({
    dir: opts.modelsDir,
    name: MODEL_NAMES.detector,
    precision: 'fp32',
    threads: 2,
  });
  const detector = new FaceDetector(detectorModel.engine);
  const crops: Buffer[] = [];
  const aligning = new Progress('eval sweep: align', files.length, log.info);
  for (const f of files) {
    crops.push((await alignedFaceCrop(detector, await decodeImage(join(opts.images, f)))).crop);
    aligning.tick(1);
  }
  aligning.done();
  await detectorModel.engine.close();

  const dense = loadModel(manifestPathFor(opts.modelsDir, MODEL_NAMES.embedder, 'int8'));
  // The committed gated embedder keeps the name the sweep has always given it; --candidate adds more.
  const candidates = [{ name: 'kernels ReLU-zero', modelsDir: opts.modelsDir }, ...(opts.candidates ?? [])];
  const configs: {
    point: Omit<
      SweepPoint,
      | 'ms_per_run'
      | 'skip_ratio'
      | 'input_dependent_share'
      | 'accuracy'
      | 'accuracy_std'
      | 'tpr_at_far'
      | 'tpr_at_far_all_pairs'
    >;
    open: () => Promise<InferenceEngine>;
    manifest: typeof dense.manifest;
  }[] = [
    {
      point: { name: 'ORT int8', engine: 'ort', relu_zero: false, candidate: null, threshold: null },
      open: async () =>
        (await openModel({ dir: opts.modelsDir, name: MODEL_NAMES.embedder, precision: 'int8', threads: 1 }))
          .engine,
      manifest: dense.manifest,
    },
    {
      point: { name: 'kernels dense', engine: 'kernels', relu_zero: false, candidate: null, threshold: null },
      open: async () => new KernelsEngine(binding, dense.onnx, 1),
      manifest: dense.manifest,
    },
    ...candidates.flatMap((c) => {
      const gated = loadModel(manifestPathFor(c.modelsDir, MODEL_NAMES.gatedEmbedder, 'int8'));
      return opts.thresholds.map((t) => ({
        point: {
          name: `${c.name} t=${t}`,
          engine: 'kernels' as const,
          relu_zero: true,
          candidate: c.name,
          threshold: t,
        },
        open: async () => new KernelsEngine(binding, withThreshold(gated.onnx, t), 1),
        manifest: gated.manifest,
      }));
    }),
  ];

  const scored: (Omit<SweepPoint, 'ms_per_run'> & { engine_: InferenceEngine })[] = [];
  for (const { point, open, manifest } of configs) {
    const engine = new SkipCounter(await open());
    const embedder = new FaceEmbedder(engine, manifest);
    const embeddings = new Map<string, Float32Array>();
    const progress = new Progress(`eval sweep: ${point.name}`, files.length, log.info);
    for (let i = 0; i < files.length; i += BATCH) {
      (await embedder.embed(crops.slice(i, i + BATCH))).forEach((e, k) => {
        embeddings.set(files[i + k], e);
      });
      progress.tick(Math.min(BATCH, files.length - i));
    }
    progress.done();
    const scores = scoreLfw(pairs, files, embeddings);
    scored.push({
      ...point,
      skip_ratio: engine.skipped / engine.items,
      input_dependent_share: engine.inputDependentShare(),
      accuracy: scores.accuracy,
      accuracy_std: scores.accuracy_std,
      tpr_at_far: scores.tpr_at_far,
      tpr_at_far_all_pairs: {
        '0.01': scores.tpr_at_far_all_pairs['0.01'],
        '0.001': scores.tpr_at_far_all_pairs['0.001'],
      },
      engine_: engine,
    });
  }

  const size = dense.manifest.input.shape[3];
  const feeds = crops
    .slice(0, TIMING_FACES)
    .map((c) => rgbToNchw(c, size, dense.manifest.input.mean, dense.manifest.input.std));
  const cases = scored.map(({ name, engine_ }) => {
    let i = 0;
    return {
      name,
      run: () =>
        engine_.run({
          [dense.manifest.input.name]: { data: feeds[i++ % feeds.length], dims: [1, 3, size, size] },
        }),
    };
  });
  const timing = new Progress('eval sweep: timing', TIMING_ROUNDS, log.info);
  const timings = await interleaved(cases, {
    warmup: 5,
    rounds: TIMING_ROUNDS,
    onRound: () => timing.tick(1),
  });
  timing.done();
  await Promise.all(scored.map((p) => p.engine_.close()));
  const points = scored.map(({ engine_: _, ...p }, k) => ({ ...p, ms_per_run: timings[k].p50 }));
  if (opts.pngPath) await renderLineChart(sweepChart(points), opts.pngPath);
  return points;
}

/** The sweep's plot: one line per gated embedder, following the threshold, so each reads as the
 * trade-off a deployment can choose along (exported for tools/decisions/plot.ts). */
export function sweepChart(points: SweepPoint[]): LineChartSpec {
  const names = [...new Set(points.flatMap((p) => (p.candidate === null ? [] : [p.candidate])))];
  const curve = (name: string) =>
    points
      .filter((p) => p.candidate === name)
      .sort((a, b) => (a.threshold as number) - (b.threshold as number));
  const pct = (v: number) => 100 * v;
  return {
    title: 'LFW dev: ReLU-zero gate threshold sweep (int8 embedder, 1 thread)',
    xLabel: 'ms per embedder run (lower is faster)',
    yLabel: 'percent',
    series: names.flatMap((name) => [
      {
        name: `accuracy, ${name}`,
        points: curve(name).map((p): [number, number] => [p.ms_per_run, pct(p.accuracy)]),
      },
      {
        name: `TPR@FAR 1e-2 (all pairs), ${name}`,
        points: curve(name).map((p): [number, number] => [p.ms_per_run, pct(p.tpr_at_far_all_pairs['0.01'])]),
        dashed: true,
      },
    ]),
    markers: points.flatMap((p) => [
      {
        x: p.ms_per_run,
        y: pct(p.accuracy),
        label: p.relu_zero ? `t=${p.threshold}` : p.name,
      },
      ...(p.relu_zero
        ? []
        : [{ x: p.ms_per_run, y: pct(p.tpr_at_far_all_pairs['0.01']), label: `${p.name} TPR` }]),
    ]),
    legend: 'bottom-right',
  };
}
