// One camera's path: frame -> detect -> size/quality checks -> track -> align -> embed -> identify ->
// presentation-attack check -> k-of-n decision -> event. Frames are processed one at a time; the source
// drops what arrives meanwhile (newest frame wins), so a slow model never grows memory.
import sharp from 'sharp';
import type { FrameSource } from '../capture/types.ts';
import type { CameraConfig, Config } from '../config/index.ts';
import { buildEvent, type FaceEvent, type ModelRef } from '../events/schema.ts';
import { type Decision, DecisionEngine } from '../matching/decision.ts';
import type { Gallery } from '../matching/gallery/index.ts';
import { CROP_SIZE } from '../matching/gallery/records.ts';
import { matchFrame } from '../matching/match.ts';
import { FaceTracker } from '../matching/tracker.ts';
import type { UnknownVisitors } from '../matching/unknowns.ts';
import type { Box } from '../types.ts';
import type { RgbImage } from '../vision/image.ts';
import { faceQuality, passesQuality, qualityScore } from '../vision/quality.ts';
import type { FaceAnalyzer, LiveAnalyzer } from './analyzer.ts';
import type { RecentFace, RecentFaces } from './recent-faces.ts';

export type PipelineConfig = Pick<
  Config,
  'detection' | 'quality' | 'recognition' | 'presentationAttack' | 'unknowns'
> & {
  snapshots: boolean;
  /** This camera's region of interest (cameras[].roi), fractions of the frame. */
  roi?: CameraConfig['roi'];
};

/** Where the faces behind decisions go: unknown visitors (persistent) and the latest events (memory). */
export interface FaceMemory {
  unknowns: UnknownVisitors;
  recent: RecentFaces;
}

/** What a live track has shown so far: its latest frames' votes and its best frame. */
interface TrackFaces {
  frames: { embedding: Float32Array; identity: string | null }[];
  best: RecentFace['best'] | null;
  /** Recognised, and its faces so far are part of the announcement it belongs to. */
  attached: boolean;
  /** The unknown visitor it was filed under. */
  unknownId?: string;
}

/** The faces of the latest processed frame, for the local web page's live view. */
export interface FrameView {
  width: number;
  height: number;
  /** `label`: who the track was recognised as, the unknown visitor it was filed under, or null (deciding). */
  faces: { box: Box; label: string | null }[];
}

/** Whether the centre of `box` lies in the region of interest (fractions of the frame). */
function insideRoi(box: Box, roi: NonNullable<CameraConfig['roi']>, image: RgbImage): boolean {
  const cx = (box[0] + box[2] / 2) / image.width;
  const cy = (box[1] + box[3] / 2) / image.height;
  return cx >= roi.x && cx <= roi.x + roi.width && cy >= roi.y && cy <= roi.y + roi.height;
}

/** The embeddings of a track's latest frames that voted for `identity`. */
function votesFor(track: TrackFaces, identity: string): Float32Array[] {
  return track.frames.filter((f) => f.identity === identity).map((f) => f.embedding);
}

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
  /** Moving averages (EWMA, 0.1 per frame), milliseconds; `embed` is everything after detection. */
  stageMs: { detect: number; embed: number; total: number };
  /** Milliseconds summed since start: detection (of framesProcessed) and the embedder alone (of
   * facesEmbedded), so benchmarks can take exact means per frame and per face. */
  sumMs: { detect: number; embedder: number };
  lastError?: string;
}

export interface EventMeta {
  /** When the frame that completed the decision was captured (Date.now() clock). */
  capturedAt: number;
}

export interface CameraPipelineOptions {
  camera: string;
  source: FrameSource;
  /** Frames run through it, so a model swap happens between two frames of this camera. */
  analyzer: Pick<LiveAnalyzer, 'frame'>;
  gallery: Gallery;
  memory: FaceMemory;
  config: PipelineConfig;
  /** Every decision's event, as it is made. */
  onEvent: (event: FaceEvent, meta: EventMeta) => void;
  /** A frame that failed, or an unknown visitor that could not be stored; the camera carries on. */
  onError?: (error: Error) => void;
  /** Capture-to-done latency of every frame, for benchmarks; `seq` is the source's frame number. */
  onFrameDone?: (latencyMs: number, faces: number, seq: number) => void;
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
  private readonly trackFaces = new Map<number, TrackFaces>();
  private view_: FrameView | null = null;

  readonly camera: string;
  private readonly source: FrameSource;
  private readonly analyzer: CameraPipelineOptions['analyzer'];
  private readonly gallery: Gallery;
  private readonly memory: FaceMemory;
  private config: PipelineConfig;
  private readonly onEvent: CameraPipelineOptions['onEvent'];
  private readonly onError: NonNullable<CameraPipelineOptions['onError']>;
  private readonly onFrameDone: NonNullable<CameraPipelineOptions['onFrameDone']>;

  constructor(opts: CameraPipelineOptions) {
    const { camera, config } = opts;
    this.camera = camera;
    this.source = opts.source;
    this.analyzer = opts.analyzer;
    this.gallery = opts.gallery;
    this.memory = opts.memory;
    this.config = config;
    this.onEvent = opts.onEvent;
    this.onError = opts.onError ?? (() => {});
    this.onFrameDone = opts.onFrameDone ?? (() => {});
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
      sumMs: { detect: 0, embedder: 0 },
    };
  }

  async start(): Promise<void> {
    await this.source.start();
    this.loop = this.run();
  }

  /** Live settings (thresholds, k of n, quality limits...) apply from the next frame. */
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
      sumMs: { ...this.stats_.sumMs },
    };
  }

  /** The faces of the latest processed frame, or null before the first one. */
  view(): FrameView | null {
    return this.view_;
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
    const roi = this.config.roi;
    const faces = (await analyzer.detect(image)).filter(
      (f) => Math.min(f.box[2], f.box[3]) >= detection.minFaceSize && (!roi || insideRoi(f.box, roi, image)),
    );
    const detected = performance.now();
    this.stats_.facesDetected += faces.length;

    const { faces: tracked, ended } = this.tracker.update(faces, capturedAt);
    // Forget finished tracks, or the decision state would grow with every passer-by.
    for (const t of ended) {
      this.decisions.endTrack(t.trackId);
      this.trackFaces.delete(t.trackId);
    }
    const qualityLimits = {
      minSize: detection.minFaceSize,
      minSharpness: quality.minSharpness,
      maxYaw: quality.maxYawDeg,
      maxRoll: quality.maxRollDeg,
    };
    const usable = [];
    for (const t of tracked) {
      const q = await faceQuality(image, t.detection);
      if (passesQuality(q, qualityLimits).ok) usable.push({ ...t, quality: qualityScore(q, qualityLimits) });
      else this.stats_.facesRejectedByQuality++;
    }
    const crops = await Promise.all(usable.map((t) => analyzer.align(image, t.detection)));
    const embedStarted = performance.now();
    const embeddings = await analyzer.embed(crops);
    this.stats_.sumMs.embedder += performance.now() - embedStarted;
    this.stats_.facesEmbedded += embeddings.length;
    const model = analyzer.modelRef;
    const rules = {
      threshold: analyzer.thresholdFor(recognition.targetFar),
      margin: recognition.margin,
      weakBelowEmbeddings: recognition.weakEnrolment.belowEmbeddings,
      weakRaise: recognition.weakEnrolment.thresholdRaise,
      qualityRaise: recognition.qualityRaise,
    };
    for (let i = 0; i < usable.length; i++) {
      const { trackId, detection: face, quality: frameQuality } = usable[i];
      const embedding = embeddings[i];
      const ranking = this.gallery.rank(embedding, model);
      // Faces an operator rejected as the best person compete with them (the margin rule).
      const rejected =
        ranking.best && ranking.best.score > rules.threshold
          ? this.memory.unknowns.negativeScore(ranking.best.identity, embedding, model)
          : Number.NEGATIVE_INFINITY;
      const match = matchFrame(ranking, rules, frameQuality, rejected);
      const track = this.remember(trackId, embedding, match.identity, crops[i], frameQuality);
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
      if (!decision) {
        // A recognised track (announced, or within the cooldown of an announcement) keeps adding the
        // frames that match that person to the announcement, so a face/reject of it covers the whole visit.
        const within = this.decisions.recognizedAs(trackId);
        if (within !== null) {
          const frames = track.attached
            ? match.identity === within
              ? [embedding]
              : []
            : votesFor(track, within);
          track.attached = true;
          if (frames.length > 0) this.memory.recent.attach(this.camera, within, frames);
        }
        continue;
      }
      const best = track.best as RecentFace['best'];
      const unknownId =
        decision.type === 'unknown' ? this.fileUnknown(best, model, rules.threshold, capturedAt) : undefined;
      if (unknownId) track.unknownId = unknownId;
      const event = await this.buildEvent(decision, analyzer, capturedAt, best.crop, unknownId);
      // Its votes are in the event's faces below; later frames are added as they come.
      if (decision.type === 'recognized') track.attached = true;
      const { snapshot: _snapshot, ...published } = event;
      this.memory.recent.add({
        event: published,
        model,
        embeddings:
          decision.type === 'recognized' && decision.identity !== null
            ? votesFor(track, decision.identity)
            : track.frames.map((f) => f.embedding),
        best,
      });
      this.stats_.events++;
      this.onEvent(event, { capturedAt });
    }
    this.view_ = {
      width: image.width,
      height: image.height,
      faces: tracked.map(({ trackId, detection: face }) => ({
        box: face.box,
        label: this.decisions.recognizedAs(trackId) ?? this.trackFaces.get(trackId)?.unknownId ?? null,
      })),
    };
    const done = performance.now();
    this.record(detected - started, done - detected, done - started);
    this.onFrameDone(Date.now() - capturedAt, faces.length, seq);
  }

  /** Adds a frame to its track's memory: its vote (the last n) and, if it is the best so far, its crop. */
  private remember(
    trackId: number,
    embedding: Float32Array,
    identity: string | null,
    crop: Buffer,
    quality: number,
  ): TrackFaces {
    let track = this.trackFaces.get(trackId);
    if (!track) {
      track = { frames: [], best: null, attached: false };
      this.trackFaces.set(trackId, track);
    }
    track.frames.push({ embedding, identity });
    if (track.frames.length > this.config.recognition.n) track.frames.shift();
    if (!track.best || quality > track.best.quality) track.best = { crop, embedding, quality };
    return track;
  }

  /** The unknown visitor this face belongs to; a storage failure costs the id, never the event. */
  private fileUnknown(
    best: RecentFace['best'],
    model: ModelRef,
    threshold: number,
    timeMs: number,
  ): string | undefined {
    if (!this.config.unknowns.enabled) return undefined;
    try {
      const sighting = { ...best, camera: this.camera, timeMs };
      return this.memory.unknowns.observe(sighting, model, threshold, this.config.unknowns);
    } catch (e) {
      this.onError(new Error(`unknown visitor not stored: ${(e as Error).message}`));
      return undefined;
    }
  }

  private async buildEvent(
    decision: Decision,
    analyzer: FaceAnalyzer,
    capturedAt: number,
    crop: Buffer,
    unknownId: string | undefined,
  ): Promise<FaceEvent> {
    const snapshot = this.config.snapshots
      ? await sharp(crop, { raw: { width: CROP_SIZE, height: CROP_SIZE, channels: 3 } })
          .jpeg({ quality: 85 })
          .toBuffer()
      : undefined;
    return buildEvent({
      camera: this.camera,
      type: decision.type,
      identity: decision.identity,
      score: decision.score,
      box: decision.box.map((v) => Math.round(v * 10) / 10) as [number, number, number, number],
      trackId: decision.trackId,
      model: analyzer.modelRef,
      time: new Date(capturedAt),
      ...(unknownId ? { unknownId } : {}),
      ...(snapshot ? { snapshot } : {}),
    });
  }

  private record(detect: number, embed: number, total: number): void {
    const s = this.stats_;
    s.framesProcessed++;
    s.sumMs.detect += detect;
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
