// `facegate eval sweep`: the ReLU-zero speed/accuracy trade-off on LFW. Faces are detected and aligned
// once; then the int8 embedder runs on ONNX Runtime, on the kernels densely, and gated on the kernels
// with the gates' threshold moved (higher: more pixels closed, faster, further from the dense network),
// each scored with the eval protocol and timed per network run at one thread.
import { join } from 'node:path';
import { GATED_EMBEDDER } from '../bench/embedder.ts';
import { KernelsEngine } from '../engine/kernels.ts';
import { loadKernels } from '../engine/kernels-addon.ts';
import type { InferenceEngine, TensorIn } from '../engine/types.ts';
import { findGates } from '../models/gated/pattern.ts';
import { loadModel, manifestPathFor } from '../models/manifest.ts';
import { readOnnx } from '../models/onnx/reader.ts';
import { MODEL_NAMES, openModel } from '../models/registry.ts';
import { renderLineChart } from '../report/plot.ts';
import { Progress } from '../report/progress.ts';
import { FaceDetector } from '../vision/detector.ts';
import { FaceEmbedder } from '../vision/embedder.ts';
import { alignedFaceCrop } from '../vision/face-crop.ts';
import { decodeImage } from '../vision/image.ts';
import { scoreLfw } from './lfw.ts';
import { readLfwPairs } from './lfw-pairs.ts';

export interface SweepOptions {
  images: string;
  pairs: string;
  modelsDir: string;
  /** Gate thresholds to try on the gated embedder (the trained one is 0). */
  thresholds: number[];
  pngPath?: string;
  log?: (line: string) => void;
}

export interface SweepPoint {
  name: string;
  engine: 'ort' | 'kernels';
  relu_zero: boolean;
  /** The gates' threshold (null: no gates). */
  threshold: number | null;
  /** Mean time of one embedder network run (one face or its mirror image), 1 thread. */
  ms_per_run: number;
  /** Mean fraction of the dense conv MACs not executed. */
  skip_ratio: number;
  accuracy: number;
  accuracy_std: number;
  tpr_at_far: { '0.01': number; '0.001': number };
}

/** Times every run of the engine it wraps. */
class TimedEngine implements InferenceEngine {
  seconds = 0;
  items = 0;
  skipped = 0;
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
    const started = performance.now();
    const out = await this.inner.run(inputs);
    this.seconds += (performance.now() - started) / 1000;
    const n = Object.values(inputs)[0].dims[0];
    this.items += n;
    // The kernels report the last item of the batch; a batch's items share its crops' statistics.
    if (this.inner instanceof KernelsEngine) {
      const macs = this.inner.lastRunMacs();
      this.skipped += n * (1 - macs.conv / macs.convDense);
    }
    return out;
  }
  close() {
    return this.inner.close();
  }
}

/** The gated model with every gate's threshold set to `t`. */
function withThreshold(onnx: Uint8Array, t: number): Uint8Array {
  const model = readOnnx(onnx);
  for (const site of findGates(model.graph)) {
    const init = model.graph.initializers.get(site.open.inputs[1]);
    if (!init) throw new Error(`gate of ${site.conv.name} has no threshold initializer`);
    model.graph.initializers.set(site.open.inputs[1], { ...init, data: Float32Array.of(t) });
  }
  return model.graph.serialize(model.info);
}

const BATCH = 8;

export async function sweepLfw(opts: SweepOptions): Promise<SweepPoint[]> {
  const log = opts.log ?? (() => {});
  const binding = loadKernels({ warn: log });
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
  const aligning = new Progress('eval sweep: align', files.length, log);
  for (const f of files) {
    crops.push((await alignedFaceCrop(detector, await decodeImage(join(opts.images, f)))).crop);
    aligning.tick(1);
  }
  aligning.done();
  await detectorModel.engine.close();

  const dense = loadModel(manifestPathFor(opts.modelsDir, MODEL_NAMES.embedder, 'int8'));
  const gated = loadModel(manifestPathFor(opts.modelsDir, GATED_EMBEDDER, 'int8'));
  const configs: {
    point: Omit<SweepPoint, 'ms_per_run' | 'skip_ratio' | 'accuracy' | 'accuracy_std' | 'tpr_at_far'>;
    open: () => Promise<InferenceEngine>;
    manifest: typeof dense.manifest;
  }[] = [
    {
      point: { name: 'ORT int8', engine: 'ort', relu_zero: false, threshold: null },
      open: async () =>
        (await openModel({ dir: opts.modelsDir, name: MODEL_NAMES.embedder, precision: 'int8', threads: 1 }))
          .engine,
      manifest: dense.manifest,
    },
    {
      point: { name: 'kernels dense', engine: 'kernels', relu_zero: false, threshold: null },
      open: async () => new KernelsEngine(binding, dense.onnx, 1),
      manifest: dense.manifest,
    },
    ...opts.thresholds.map((t) => ({
      point: { name: `kernels ReLU-zero t=${t}`, engine: 'kernels' as const, relu_zero: true, threshold: t },
      open: async () => new KernelsEngine(binding, withThreshold(gated.onnx, t), 1),
      manifest: gated.manifest,
    })),
  ];

  const points: SweepPoint[] = [];
  for (const { point, open, manifest } of configs) {
    const engine = new TimedEngine(await open());
    const embedder = new FaceEmbedder(engine, manifest);
    const embeddings = new Map<string, Float32Array>();
    const progress = new Progress(`eval sweep: ${point.name}`, files.length, log);
    for (let i = 0; i < files.length; i += BATCH) {
      (await embedder.embed(crops.slice(i, i + BATCH))).forEach((e, k) => {
        embeddings.set(files[i + k], e);
      });
      progress.tick(Math.min(BATCH, files.length - i));
    }
    progress.done();
    await engine.close();
    const scores = scoreLfw(pairs, files, embeddings);
    points.push({
      ...point,
      ms_per_run: (engine.seconds * 1000) / engine.items,
      skip_ratio: engine.skipped / engine.items,
      accuracy: scores.accuracy,
      accuracy_std: scores.accuracy_std,
      tpr_at_far: scores.tpr_at_far,
    });
  }
  if (opts.pngPath) await renderSweep(points, opts.pngPath);
  return points;
}

async function renderSweep(points: SweepPoint[], pngPath: string): Promise<void> {
  const gatedPoints = points.filter((p) => p.relu_zero).sort((a, b) => a.ms_per_run - b.ms_per_run);
  const pct = (v: number) => 100 * v;
  await renderLineChart(
    {
      title: 'LFW dev: ReLU-zero gate threshold sweep (int8 embedder, 1 thread)',
      xLabel: 'ms per embedder run (lower is faster)',
      yLabel: 'percent',
      series: [
        {
          name: 'accuracy, gated (kernels)',
          points: gatedPoints.map((p) => [p.ms_per_run, pct(p.accuracy)]),
        },
        {
          name: 'TPR@FAR 1e-2, gated (kernels)',
          points: gatedPoints.map((p) => [p.ms_per_run, pct(p.tpr_at_far['0.01'])]),
          dashed: true,
        },
      ],
      markers: points.flatMap((p) => [
        {
          x: p.ms_per_run,
          y: pct(p.accuracy),
          label: p.relu_zero ? `t=${p.threshold} skip ${(100 * p.skip_ratio).toFixed(0)}%` : p.name,
        },
        ...(p.relu_zero ? [] : [{ x: p.ms_per_run, y: pct(p.tpr_at_far['0.01']), label: `${p.name} TPR` }]),
      ]),
      legend: 'bottom-right',
    },
    pngPath,
  );
}
