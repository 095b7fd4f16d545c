// The models one camera frame goes through, opened once and shared by every camera and CLI command:
// detector, embedder and the optional presentation-attack pair. The detector and the embedder come from
// their update slots (runtime/model-update/slots.ts), so a restart keeps a remotely installed version.
import type { Config } from '../config/index.ts';
import { openEngine } from '../engine/open.ts';
import type { ModelRef } from '../events/schema.ts';
import { thresholdForTargetFar } from '../matching/threshold.ts';
import { ModelSlots } from '../model-update/slots.ts';
import type { FrameHealth } from '../model-update/updater.ts';
import type { OpenedModel } from '../models/manifest.ts';
import { type LoadedModel, loadModel, type ModelManifest, manifestPathFor } from '../models/manifest.ts';
import type { InferenceEngine } from '../types.ts';
import { defaultLogger, type Logger } from '../util/log.ts';
import { alignFace } from '../vision/align.ts';
import { FaceDetector } from '../vision/detector.ts';
import { FaceEmbedder } from '../vision/embedder.ts';
import { boxCrop } from '../vision/face-crop.ts';
import { FACEREC_TEMPLATE } from '../vision/face-template.ts';
import type { RgbImage } from '../vision/image.ts';
import { rgbToNchw } from '../vision/tensor.ts';
import type { FaceDetection } from '../vision/types.ts';

export interface AttackCheck {
  /** Model scores: `real` from anti-spoof, `live` from liveness (1 = genuine face). */
  real: number;
  live: number;
  detected: boolean;
  /** Confidence that this is an attack, 0..1. */
  score: number;
}

export type AnalyzerConfig = Pick<Config, 'models' | 'detection' | 'presentationAttack' | 'dataDir'>;

/** The models that can be updated remotely, by their role in the analyzer. */
export type UpdatableRole = 'detector' | 'embedder';

interface AnalyzerModels {
  detector: OpenedModel;
  embedder: OpenedModel;
  attack: { antispoof: OpenedModel; liveness: OpenedModel } | null;
}

/** The installed versions of the model in `role`: update slots over the bundled model in models.dir. */
export function modelSlots(config: AnalyzerConfig, role: UpdatableRole): ModelSlots {
  const { models } = config;
  return new ModelSlots({
    dataDir: config.dataDir,
    name: models[role],
    bundledDir: models.dir,
    precision: role === 'detector' ? models.detectorPrecision : models.precision,
  });
}

/** An engine for `model` as the analyzer runs it: the native kernels lower only the embedder's ops. */
export function openModelEngine(
  model: { onnx: Uint8Array; manifest: ModelManifest },
  models: Config['models'],
  log: Logger = defaultLogger,
): Promise<InferenceEngine> {
  const { manifest } = model;
  return openEngine(model.onnx, {
    engine: manifest.task === 'face-embedding' ? models.engine : 'ort',
    threads: models.threads,
    label: `${manifest.name}.${manifest.precision}`,
    log: log.child('engine'),
  });
}

/** Immutable: a change of models or settings is a new analyzer, so a frame never sees two models. */
export class FaceAnalyzer {
  readonly detector: FaceDetector;
  readonly embedder: FaceEmbedder;

  private constructor(
    private readonly models: AnalyzerModels,
    private readonly config: AnalyzerConfig,
  ) {
    const { minScore, iouThreshold, maxFaces, mirrorAverage } = config.detection;
    this.detector = new FaceDetector(models.detector.engine, {
      minScore,
      iouThreshold,
      maxFaces,
      mirrorAverage,
    });
    this.embedder = new FaceEmbedder(models.embedder.engine, models.embedder.manifest);
  }

  /** `log` hears why an installed version was skipped (and an older one or the bundled model used). */
  static async open(config: AnalyzerConfig, log: Logger = defaultLogger): Promise<FaceAnalyzer> {
    const open = async (model: LoadedModel): Promise<OpenedModel> => ({
      manifest: model.manifest,
      engine: await openModelEngine(model, config.models, log),
    });
    const installed = (role: UpdatableRole) => {
      const active = modelSlots(config, role).resolveActive();
      for (const problem of active.problems) log.child('models').warn(`${role}: skipped ${problem}`);
      return open(active.model);
    };
    const bundled = (name: string) =>
      open(loadModel(manifestPathFor(config.models.dir, name, config.models.precision)));
    const detector = await installed('detector');
    const embedder = await installed('embedder');
    const attack = config.presentationAttack.enabled
      ? { antispoof: await bundled(config.models.antispoof), liveness: await bundled(config.models.liveness) }
      : null;
    return new FaceAnalyzer({ detector, embedder, attack }, config);
  }

  /** The same models with other detection and presentation-attack settings. */
  withConfig(config: AnalyzerConfig): FaceAnalyzer {
    return new FaceAnalyzer(this.models, config);
  }

  /** The same settings with `model` in the place of the detector or embedder, by its task. */
  withModel(model: OpenedModel): FaceAnalyzer {
    const { task } = model.manifest;
    if (task === 'face-detection') return new FaceAnalyzer({ ...this.models, detector: model }, this.config);
    if (task === 'face-embedding') return new FaceAnalyzer({ ...this.models, embedder: model }, this.config);
    throw new Error(`a ${task} model cannot be swapped in while running`);
  }

  /** The manifest of every model in use. */
  get manifests(): ModelManifest[] {
    return this.opened().map(([, model]) => model.manifest);
  }

  /** The embedder: events and gallery vectors are labelled with it. */
  get modelRef(): ModelRef {
    return { name: this.embedder.manifest.name, version: this.embedder.manifest.version };
  }

  /** The model in use per role (detector, embedder, antispoof, liveness). */
  modelRefs(): Record<string, ModelRef> {
    return Object.fromEntries(
      this.opened().map(([role, { manifest }]) => [role, { name: manifest.name, version: manifest.version }]),
    );
  }

  /** By role, the model in use (its files' name.precision) and the engine it opened on: 'ort' also where
   * 'kernels' was asked for and fell back (no addon, an fp32 model). */
  engines(): Record<string, { model: string; engine: string }> {
    return Object.fromEntries(
      this.opened().map(([role, { manifest, engine }]) => [
        role,
        { model: `${manifest.name}.${manifest.precision}`, engine: engine.name },
      ]),
    );
  }

  /** The cosine threshold for a target false-accept rate, from the embedder's manifest. */
  thresholdFor(targetFar: number): number {
    return thresholdForTargetFar(this.embedder.manifest, targetFar);
  }

  detect(image: RgbImage): Promise<FaceDetection[]> {
    return this.detector.detect(image);
  }

  async align(image: RgbImage, face: FaceDetection): Promise<Buffer> {
    return (await alignFace(image, face.keypoints, FACEREC_TEMPLATE)).rgb;
  }

  embed(crops: Buffer[]): Promise<Float32Array[]> {
    return this.embedder.embed(crops);
  }

  /** Null when the check is off in config. */
  async checkAttack(image: RgbImage, face: FaceDetection): Promise<AttackCheck | null> {
    const attack = this.models.attack;
    if (!attack) return null;
    const score = async (model: OpenedModel) => {
      const size = model.manifest.input.shape[3];
      const crop = await boxCrop(image, face, size);
      const data = rgbToNchw(crop, size, model.manifest.input.mean, model.manifest.input.std);
      const out = await model.engine.run({ [model.manifest.input.name]: { data, dims: [1, 3, size, size] } });
      return out[model.manifest.outputs[0].name].data[0];
    };
    const real = await score(attack.antispoof);
    const live = await score(attack.liveness);
    const { antispoofMinScore, livenessMinScore } = this.config.presentationAttack;
    return {
      real,
      live,
      detected: real < antispoofMinScore || live < livenessMinScore,
      score: 1 - Math.min(real, live),
    };
  }

  /** Closes the engines `next` does not use (after a swap, the one it replaced). */
  async closeReplacedBy(next: FaceAnalyzer): Promise<void> {
    const kept = new Set(next.opened().map(([, model]) => model.engine));
    await Promise.all(
      this.opened()
        .filter(([, model]) => !kept.has(model.engine))
        .map(([, model]) => model.engine.close()),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.opened().map(([, model]) => model.engine.close()));
  }

  private opened(): [string, OpenedModel][] {
    const { detector, embedder, attack } = this.models;
    return [
      ['detector', detector],
      ['embedder', embedder],
      ...(attack
        ? ([
            ['antispoof', attack.antispoof],
            ['liveness', attack.liveness],
          ] as [string, OpenedModel][])
        : []),
    ];
  }
}

/**
 * The analyzer the cameras run, replaced only between frames. A frame keeps the analyzer it started
 * with, and a swap first waits until no frame (or enrolment) is mid-flight, so no frame mixes two models
 * and an engine is closed only when nothing can still be running it. Frames that arrive meanwhile wait:
 * they are delayed, never dropped by the swap.
 */
export class LiveAnalyzer {
  private inFlight = 0;
  private pauses = 0;
  private resumed: (() => void)[] = [];
  private drained: (() => void)[] = [];
  private frameWatchers: ((health: FrameHealth) => void)[] = [];

  constructor(private analyzer: FaceAnalyzer) {}

  get current(): FaceAnalyzer {
    return this.analyzer;
  }

  /** Runs one camera frame; its outcome resolves nextFrame(). */
  async frame<T>(fn: (analyzer: FaceAnalyzer) => Promise<T>): Promise<T> {
    await this.enter();
    const started = performance.now();
    let error: string | undefined;
    try {
      return await fn(this.analyzer);
    } catch (e) {
      error = (e as Error).message;
      throw e;
    } finally {
      this.leave();
      const health = { latencyMs: performance.now() - started, ...(error === undefined ? {} : { error }) };
      for (const watcher of this.frameWatchers.splice(0)) watcher(health);
    }
  }

  /** Runs work that must not straddle a swap either (an enrolment labels vectors with the model in use). */
  async use<T>(fn: (analyzer: FaceAnalyzer) => Promise<T>): Promise<T> {
    await this.enter();
    try {
      return await fn(this.analyzer);
    } finally {
      this.leave();
    }
  }

  /** Resolves with the latency (and error, if any) of the next frame to finish. */
  nextFrame(): Promise<FrameHealth> {
    return new Promise((resolve) => this.frameWatchers.push(resolve));
  }

  /** Holds back new frames and resolves once none is mid-flight; pauses nest, each needs its resume(). */
  async pause(): Promise<void> {
    this.pauses++;
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
  }

  resume(): void {
    if (this.pauses === 0) return;
    this.pauses--;
    if (this.pauses === 0) for (const wake of this.resumed.splice(0)) wake();
  }

  /** Replaces the analyzer between frames and closes the engines the new one no longer uses. */
  async swap(change: (current: FaceAnalyzer) => FaceAnalyzer): Promise<void> {
    await this.pause();
    const before = this.analyzer;
    try {
      this.analyzer = change(before);
    } finally {
      this.resume();
    }
    await before.closeReplacedBy(this.analyzer);
  }

  close(): Promise<void> {
    return this.analyzer.close();
  }

  private async enter(): Promise<void> {
    while (this.pauses > 0) await new Promise<void>((resolve) => this.resumed.push(resolve));
    this.inFlight++;
  }

  private leave(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const wake of this.drained.splice(0)) wake();
  }
}
