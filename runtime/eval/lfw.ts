// `facegate eval lfw`: the deployed pipeline (detect, align, embed, cosine) on raw LFW images, scored
// with the View-2 protocol: accuracy over folds with each fold's threshold chosen on the others, and
// TPR at fixed FAR.
import { join } from 'node:path';
import { openModel } from '../engine/registry.ts';
import type { Precision } from '../models/manifest.ts';
import { MODEL_NAMES } from '../models/manifest.ts';
import { renderRoc } from '../report/plot.ts';
import { Progress } from '../report/progress.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { FaceDetector } from '../vision/detector.ts';
import { cosine, FaceEmbedder } from '../vision/embedder.ts';
import { alignedFaceCrop } from '../vision/face-crop.ts';
import { decodeImage } from '../vision/image.ts';
import { type LfwPair, readLfwPairs } from './lfw-pairs.ts';
import { kFoldAccuracy, rocCurve, tprAtFar } from './metrics.ts';
import { allPairScores } from './pair-scores.ts';

export interface LfwEvalOptions {
  images: string;
  pairs: string;
  modelsDir: string;
  /** Embedder precision. */
  precision: Precision;
  /** The int8 detector's coarser keypoints cost alignment accuracy, so detection defaults to fp32. */
  detectorPrecision: Precision;
  engine: 'ort' | 'kernels';
  threads: number;
  /** Embedder model name (default facerec; facerec-gated is the ReLU-zero embedder). */
  model?: string;
  rocPath?: string;
  /** Progress lines go here (stderr), so stdout can stay one JSON object. */
  log?: Logger;
}

export interface LfwReport {
  accuracy: number;
  accuracy_std: number;
  folds: { fold: number; threshold: number; accuracy: number }[];
  tpr_at_far: { '0.01': number; '0.001': number };
  /** Same, from every same-person and every different-person combination of the evaluated images. */
  tpr_at_far_all_pairs: { '0.01': number; '0.001': number; genuine: number; impostor: number };
  auc: number;
  pairs: number;
  images: number;
  no_face: number;
  model: string;
  precision: Precision;
  detector_precision: Precision;
  engine: string;
  threads: number;
  images_per_s: number;
}

const BATCH = 8;

export async function evalLfw(opts: LfwEvalOptions): Promise<LfwReport> {
  const log = opts.log ?? silentLogger;
  const { pairs } = await readLfwPairs(opts.pairs);
  const files = [...new Set(pairs.flatMap((p) => [p.a, p.b]))].sort();
  const detectorModel = await openModel({
    dir: opts.modelsDir,
    name: MODEL_NAMES.detector,
    precision: opts.detectorPrecision,
    threads: opts.threads,
  });
  const embedderModel = await openModel({
    dir: opts.modelsDir,
    name: opts.model ?? MODEL_NAMES.embedder,
    precision: opts.precision,
    threads: opts.threads,
    engine: opts.engine,
  });
  const detector = new FaceDetector(detectorModel.engine);
  const embedder = new FaceEmbedder(embedderModel.engine, embedderModel.manifest);

  const embeddings = new Map<string, Float32Array>();
  let noFace = 0;
  const progress = new Progress('eval lfw', files.length, log.info);
  const started = performance.now();
  for (let i = 0; i < files.length; i += BATCH) {
    const batch = files.slice(i, i + BATCH);
    const crops: Buffer[] = [];
    for (const f of batch) {
      const { crop, face } = await alignedFaceCrop(detector, await decodeImage(join(opts.images, f)));
      if (!face) noFace++;
      crops.push(crop);
    }
    (await embedder.embed(crops)).forEach((e, k) => {
      embeddings.set(batch[k], e);
    });
    progress.tick(batch.length);
  }
  const seconds = (performance.now() - started) / 1000;
  progress.done();
  await detectorModel.engine.close();
  await embedderModel.engine.close();

  const scores = scoreLfw(pairs, files, embeddings);
  if (opts.rocPath) {
    await renderRoc(
      [
        { name: `View-2 pairs (${pairs.length})`, points: scores.roc.points },
        {
          name: `all combinations (${scores.tpr_at_far_all_pairs.impostor} impostor)`,
          points: scores.allRoc.points,
          dashed: true,
        },
      ],
      opts.rocPath,
      `LFW dev ROC: ${embedderModel.manifest.name} ${opts.precision} (${embedderModel.engine.name})`,
    );
  }
  const { roc: _roc, allRoc: _allRoc, ...metrics } = scores;
  return {
    ...metrics,
    pairs: pairs.length,
    images: files.length,
    no_face: noFace,
    model: `${embedderModel.manifest.name}@${embedderModel.manifest.version}`,
    precision: opts.precision,
    detector_precision: opts.detectorPrecision,
    // What ran: 'kernels' falls back to 'ort' (with a warning) for a model the kernels cannot run.
    engine: embedderModel.engine.name,
    threads: opts.threads,
    images_per_s: files.length / seconds,
  };
}

export type LfwScores = Pick<
  LfwReport,
  'accuracy' | 'accuracy_std' | 'folds' | 'tpr_at_far' | 'tpr_at_far_all_pairs' | 'auc'
> & { roc: ReturnType<typeof rocCurve>; allRoc: ReturnType<typeof rocCurve> };

/** The protocol's figures from one embedding per image: k-fold accuracy (each fold's threshold chosen
 * on the others), TPR at FAR on the View-2 pairs and on every combination of the images. */
export function scoreLfw(
  pairs: LfwPair[],
  files: string[],
  embeddings: Map<string, Float32Array>,
): LfwScores {
  const scored = pairs.map((p) => ({
    fold: p.fold,
    same: p.same,
    score: cosine(embeddings.get(p.a) as Float32Array, embeddings.get(p.b) as Float32Array),
  }));
  const kfold = kFoldAccuracy(scored);
  const genuine = scored.filter((p) => p.same).map((p) => p.score);
  const impostor = scored.filter((p) => !p.same).map((p) => p.score);
  // LFW file names are `<Person>/<Person>_NNNN.jpg`.
  const all = allPairScores(
    files.map((f) => f.split('/')[0]),
    files.map((f) => embeddings.get(f) as Float32Array),
    cosine,
  );
  const roc = rocCurve(genuine, impostor);
  return {
    accuracy: kfold.mean,
    accuracy_std: kfold.std,
    folds: kfold.perFold,
    tpr_at_far: {
      '0.01': tprAtFar(genuine, impostor, 0.01).tpr,
      '0.001': tprAtFar(genuine, impostor, 0.001).tpr,
    },
    tpr_at_far_all_pairs: {
      '0.01': tprAtFar(all.genuine, all.impostor, 0.01).tpr,
      '0.001': tprAtFar(all.genuine, all.impostor, 0.001).tpr,
      genuine: all.genuine.length,
      impostor: all.impostor.length,
    },
    auc: roc.auc,
    roc,
    allRoc: rocCurve(all.genuine, all.impostor),
  };
}
