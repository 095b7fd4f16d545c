// The models one camera frame goes through, opened once and shared by every camera and CLI command:
// detector, embedder and the optional presentation-attack pair.
import type { Config } from '../config/index.ts';
import type { ModelManifest } from '../models/manifest.ts';
import { type EngineKind, type OpenedModel, openModel } from '../models/registry.ts';
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

export type AnalyzerConfig = Pick<Config, 'models' | 'detection' | 'presentationAttack'>;

export class FaceAnalyzer {
  private constructor(
    private readonly models: OpenedModel[],
    readonly detector: FaceDetector,
    readonly embedder: FaceEmbedder,
    private readonly attack: { antispoof: OpenedModel; liveness: OpenedModel } | null,
    private readonly config: AnalyzerConfig,
  ) {}

  static async open(config: AnalyzerConfig): Promise<FaceAnalyzer> {
    const { dir, threads } = config.models;
    const open = (name: string, precision: 'fp32' | 'int8', engine: EngineKind = 'ort') =>
      openModel({ dir, name, precision, threads, engine });
    const detector = await open(config.models.detector, config.models.detectorPrecision);
    // The native kernels lower only the embedder's ops; the other models always run on ORT.
    const embedder = await open(config.models.embedder, config.models.precision, config.models.engine);
    const attack = config.presentationAttack.enabled
      ? {
          antispoof: await open(config.models.antispoof, config.models.precision),
          liveness: await open(config.models.liveness, config.models.precision),
        }
      : null;
    const { minScore, iouThreshold, maxFaces, mirrorAverage } = config.detection;
    return new FaceAnalyzer(
      [detector, embedder, ...(attack ? [attack.antispoof, attack.liveness] : [])],
      new FaceDetector(detector.engine, { minScore, iouThreshold, maxFaces, mirrorAverage }),
      new FaceEmbedder(embedder.engine, embedder.manifest),
      attack,
      config,
    );
  }

  get embedderManifest(): ModelManifest {
    return this.embedder.manifest;
  }

  get modelRef(): { name: string; version: string } {
    return { name: this.embedder.manifest.name, version: this.embedder.manifest.version };
  }

  /** The cosine threshold for a target false-accept rate, from the embedder's manifest. */
  thresholdFor(targetFar: 0.01 | 0.001): number {
    const thresholds = this.embedder.manifest.thresholds;
    if (!thresholds)
      throw new Error(`embedder ${this.embedder.manifest.name} has no thresholds in its manifest`);
    return thresholds.far[targetFar === 0.01 ? '0.01' : '0.001'];
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
    if (!this.attack) return null;
    const score = async (model: OpenedModel) => {
      const size = model.manifest.input.shape[3];
      const crop = await boxCrop(image, face, size);
      const data = rgbToNchw(crop, size, model.manifest.input.mean, model.manifest.input.std);
      const out = await model.engine.run({ [model.manifest.input.name]: { data, dims: [1, 3, size, size] } });
      return out[model.manifest.outputs[0].name].data[0];
    };
    const real = await score(this.attack.antispoof);
    const live = await score(this.attack.liveness);
    const { antispoofMinScore, livenessMinScore } = this.config.presentationAttack;
    return {
      real,
      live,
      detected: real < antispoofMinScore || live < livenessMinScore,
      score: 1 - Math.min(real, live),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.models.map((m) => m.engine.close()));
  }
}
