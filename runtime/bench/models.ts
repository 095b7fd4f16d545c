// ONNX Runtime fp32 vs int8 for every face model, at 1 and 2 threads, interleaved in one process.
import { join } from 'node:path';
import { openModel } from '../engine/registry.ts';
import {
  loadModel,
  MODEL_NAMES,
  type ModelManifest,
  manifestPathFor,
  type Precision,
} from '../models/manifest.ts';
import { TRAIN_FACES_DIR } from '../paths.ts';
import { Progress } from '../report/progress.ts';
import type { Logger } from '../util/log.ts';
import { interleaved } from '../util/timing.ts';
import { DEFAULT_DETECTION, FaceDetector } from '../vision/detector.ts';
import { alignedFaceCrop, boxCrop } from '../vision/face-crop.ts';
import { decodeImage, letterbox } from '../vision/image.ts';
import { rgbToNchw } from '../vision/tensor.ts';

export interface ModelBenchRow {
  model: string;
  engine: 'ort';
  precision: Precision;
  threads: number;
  p50_ms: number;
  p95_ms: number;
}

/** Real inputs: one photo per person from the MIT-licensed face_recognition examples (committed). */
const PHOTOS = ['obama/obama.jpg', 'biden/biden.jpg', 'rose_leslie/img1.jpg', 'kit_harington/john1.jpeg'];

export async function benchModels(opts: {
  modelsDir: string;
  rounds: number;
  log: Logger;
}): Promise<ModelBenchRow[]> {
  const images = await Promise.all(PHOTOS.map((p) => decodeImage(join(TRAIN_FACES_DIR, p))));
  // Each model's input (task, size, normalisation) as its manifest states it.
  const specs: ModelManifest[] = Object.values(MODEL_NAMES).map(
    (name) => loadModel(manifestPathFor(opts.modelsDir, name, 'fp32')).manifest,
  );
  const detector = new FaceDetector(
    (await openModel({ dir: opts.modelsDir, name: 'blazeface', precision: 'fp32' })).engine,
    DEFAULT_DETECTION,
  );
  const inputs = new Map<string, Float32Array[]>();
  for (const spec of specs) inputs.set(spec.name, []);
  for (const image of images) {
    const { crop, face } = await alignedFaceCrop(detector, image);
    if (!face) throw new Error('benchmark photo without a detectable face');
    for (const spec of specs) {
      const size = spec.input.shape[3];
      const data =
        spec.task === 'face-detection'
          ? (await letterbox(image, size)).tensor.data
          : rgbToNchw(
              spec.task === 'face-embedding' ? crop : await boxCrop(image, face, size),
              size,
              spec.input.mean,
              spec.input.std,
            );
      inputs.get(spec.name)?.push(data);
    }
  }
  const rows: ModelBenchRow[] = [];
  const progress = new Progress('bench models', specs.length * 2, opts.log.info, 0);
  for (const threads of [1, 2]) {
    for (const spec of specs) {
      const size = spec.input.shape[3];
      const engines = await Promise.all(
        (['fp32', 'int8'] as const).map((precision) =>
          openModel({ dir: opts.modelsDir, name: spec.name, precision, threads }),
        ),
      );
      const feeds = inputs.get(spec.name) as Float32Array[];
      const cases = engines.map(({ manifest, engine }) => {
        let i = 0;
        return {
          name: manifest.precision,
          run: () => engine.run({ input: { data: feeds[i++ % feeds.length], dims: [1, 3, size, size] } }),
        };
      });
      const timings = await interleaved(cases, { warmup: 5, rounds: opts.rounds });
      await Promise.all(engines.map((e) => e.engine.close()));
      for (const t of timings) {
        rows.push({
          model: spec.name,
          engine: 'ort',
          precision: t.name as Precision,
          threads,
          p50_ms: round(t.p50),
          p95_ms: round(t.p95),
        });
      }
      progress.tick();
    }
  }
  progress.done();
  return rows;
}

const round = (v: number) => Math.round(v * 1000) / 1000;
