// One camera's path: frame -> detect -> size/quality gates -> track -> align -> embed -> identify ->
// presentation-attack check -> k-of-n decision -> event. Frames are processed one at a time; the source
// drops what arrives meanwhile (newest frame wins), so a slow model never grows memory.
import sharp from 'sharp';
import { DecisionEngine } from '../auth/decision.ts';
import type { Gallery } from '../auth/gallery.ts';
import { FaceTracker } from '../auth/tracker.ts';
import type { FrameSource } from '../capture/types.ts';
import type { Config } from '../config/index.ts';
import { buildEvent, type FaceEvent } from '../events/schema.ts';
import type { RgbImage } from '../vision/image.ts';
import { faceQuality, passesQuality } from '../vision/quality.ts';
import type { FaceAnalyzer, LiveAnalyzer } from './analyzer.ts';

export type PipelineConfig = Pick<Config, 'detection' | 'quality' | 'recognition' | 'presentationAttack'> & {
  snapshots: boolean;
};

export interface PipelineStats {
  camera: string;
  framesProcessed: number;
  framesDropped: number;
  facesDetected: number;
  facesEmbedded: number;
  facesRejectedByQuality: number;
  events: number;
  /** Frames processed per second, over the last few seconds. */
  fps: number;
  /** Moving averages, milliseconds. */
  stageMs: { detect: number; embed: number; total: number };
  lastError?: string;
}

export interface EventMeta {
  /** When the frame that completed the decision was captured (Date.now() clock). */
  capturedAt: number;
}

const EWMA = 0.1;

export class CameraPipeline {
  private tracker: FaceTracker;
  private decisions: DecisionEngine;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private stats_: PipelineStats;
  private fpsWindow: number[] = [];
  /** For snapshots; frames are fresh buffers, so holding one copies nothing. */
  private latest: RgbImage | null = null;

  constructor(
    readonly camera: string,
    private source: FrameSource,
    /** Frames run through it, so a model swap happens between two frames of this camera. */
    private analyzer: Pick<LiveAnalyzer, 'frame'>,
    private gallery: Gallery,
    private config: PipelineConfig,
    private onEvent: (event: FaceEvent, meta: EventMeta) => void,
    private onError: (error: Error) => void = () => {},
    /** Capture-to-done latency of every frame, for benchmarks; `seq` is the source's frame number. */
    private onFrame: (latencyMs: number, faces: number, seq: number) => void = () => {},
  ) {
    this.tracker = new FaceTracker(config.recognition);
    this.decisions = new DecisionEngine(config.recognition);
    this.stats_ = {
      camera,
      framesProcessed: 0,
      framesDropped: 0,
      facesDetected: 0,
      facesEmbedded: 0,
      facesRejectedByQuality: 0,
      events: 0,
      fps: 0,
      stageMs: { detect: 0, embed: 0, total: 0 },
    };
  }

  async start(): Promise<void> {
    await this.source.start();
    this.loop = this.run();
  }

  /** Live settings (thresholds, k of n, quality gates...) apply from the next frame. */
  setConfig(config: PipelineConfig): void {
    const tracking = JSON.stringify([config.recognition.trackIou, config.recognition.trackMaxAgeMs]);
    const deciding = JSON.stringify([
      config.recognition.k,
      config.recognition.n,
      config.recognition.unknownAfterFrames,
      config.recognition.cooldownSeconds,
    ]);
    const before = this.config.recognition;
    if (tracking !== JSON.stringify([before.trackIou, before.trackMaxAgeMs]))
      this.tracker = new FaceTracker(config.recognition);
    if (
      deciding !== JSON.stringify([before.k, before.n, before.unknownAfterFrames, before.cooldownSeconds])
    ) {
      this.decisions = new DecisionEngine(config.recognition);
    }
    this.config = config;
  }

  stats(): PipelineStats {
    return {
      ...this.stats_,
      framesDropped: this.source.stats().framesDropped,
      stageMs: { ...this.stats_.stageMs },
    };
  }

  /** JPEG of the latest frame handed over by the source, or null before the first one. */
  async snapshot(): Promise<Buffer | null> {
    const image = this.latest;
    if (!image) return null;
    return sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
      .jpeg({ quality: 85 })
      .toBuffer();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.source.stop();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const frame = await this.source.next();
      if (!frame) break;
      const image = { rgb: frame.rgb, width: frame.width, height: frame.height };
      this.latest = image;
      try {
        await this.analyzer.frame((analyzer) => this.process(analyzer, image, frame.capturedAt, frame.seq));
      } catch (e) {
        // One bad frame (or a model hiccup) must not stop the camera.
        this.stats_.lastError = (e as Error).message;
        this.onError(e as Error);
      }
    }
  }

  private async process(
    analyzer: FaceAnalyzer,
    image: RgbImage,
    capturedAt: number,
    seq: number,
  ): Promise<void> {
    const started = performance.now();
    const { detection, quality, recognition } = this.config;
    const faces = (await analyzer.detect(image)).filter(
      (f) => Math.min(f.box[2], f.box[3]) >= detection.minFaceSize,
    );
    const detected = performance.now();
    this.stats_.facesDetected += faces.length;

    const { faces: tracked, ended } = this.tracker.update(faces, capturedAt);
    // Forget finished tracks, or the decision state would grow with every passer-by.
    for (const t of ended) this.decisions.endTrack(t.trackId);
    const usable = [];
    for (const t of tracked) {
      const q = await faceQuality(image, t.detection);
      const verdict = passesQuality(q, {
        minSize: detection.minFaceSize,
        minSharpness: quality.minSharpness,
        maxYaw: quality.maxYawDeg,
        maxRoll: quality.maxRollDeg,
      });
      if (verdict.ok) usable.push(t);
      else this.stats_.facesRejectedByQuality++;
    }
    const crops = await Promise.all(usable.map((t) => analyzer.align(image, t.detection)));
    const embeddings = await analyzer.embed(crops);
    this.stats_.facesEmbedded += embeddings.length;
    const threshold = analyzer.thresholdFor(recognition.targetFar);
    for (let i = 0; i < usable.length; i++) {
      const { trackId, detection: face } = usable[i];
      const match = this.gallery.identify(embeddings[i], analyzer.modelRef, threshold);
      const attack = await analyzer.checkAttack(image, face);
      const decision = this.decisions.observe(
        {
          trackId,
          box: face.box,
          identity: match.identity,
          score: match.score,
          ...(attack ? { attack: { detected: attack.detected, score: attack.score } } : {}),
        },
        capturedAt,
      );
      if (!decision) continue;
      const snapshot = this.config.snapshots
        ? await sharp(crops[i], { raw: { width: 150, height: 150, channels: 3 } })
            .jpeg({ quality: 85 })
            .toBuffer()
        : undefined;
      const event = buildEvent({
        camera: this.camera,
        type: decision.type,
        identity: decision.identity,
        score: decision.score,
        box: decision.box.map((v) => Math.round(v * 10) / 10) as [number, number, number, number],
        trackId: decision.trackId,
        model: analyzer.modelRef,
        time: new Date(capturedAt),
        ...(snapshot ? { snapshot } : {}),
      });
      this.stats_.events++;
      this.onEvent(event, { capturedAt });
    }
    const done = performance.now();
    this.record(detected - started, done - detected, done - started);
    this.onFrame(Date.now() - capturedAt, faces.length, seq);
  }

  private record(detect: number, embed: number, total: number): void {
    const s = this.stats_;
    s.framesProcessed++;
    const avg = (prev: number, v: number) => (s.framesProcessed === 1 ? v : prev + EWMA * (v - prev));
    s.stageMs = {
      detect: avg(s.stageMs.detect, detect),
      embed: avg(s.stageMs.embed, embed),
      total: avg(s.stageMs.total, total),
    };
    const now = Date.now();
    this.fpsWindow.push(now);
    while (this.fpsWindow.length > 0 && now - this.fpsWindow[0] > 5000) this.fpsWindow.shift();
    s.fps = this.fpsWindow.length / 5;
  }
}
