// `facegate eval openset`: how often the whole decision lets a stranger in, and how often it recognises an
// enrolled person, on LFW-format data (a folder per person).
//
// Protocol. The people with at least two images are shuffled (fixed seed) into galleries of
// `gallerySize`; every gallery is evaluated in turn, so each person is enrolled once and is a stranger to
// every other gallery. An enrolled person gets up to 3 of their photos as enrolment (one photo when they
// have two: a weak enrolment, as at a real door) and their other images, up to `probesPerPerson`, are
// genuine tracks. Every image of everyone not in the gallery is a stranger track. A track is `frames`
// frames made from its image as a camera would see it: each frame brightened or darkened, downscaled
// (distance), blurred, noisy, with the detector's keypoints jittered before alignment. Each frame goes
// through what the camera path runs: the quality checks, the gallery's ranking, the open-set rules
// (runtime/matching/match.ts) and the k-of-n DecisionEngine. A stranger track that ends `recognized` is a
// false accept; a genuine track recognised as its own person counts towards the recognition rate.
//
// Detection, augmentation and embedding run once per image and are cached (`cachePath`); the sweep over
// thresholds and rules is then a matter of seconds.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { openModel } from '../engine/registry.ts';
import type { ModelRef } from '../events/schema.ts';
import { DecisionEngine } from '../matching/decision.ts';
import { Gallery } from '../matching/gallery/index.ts';
import { matchFrame, type OpenSetRules } from '../matching/match.ts';
import type { Precision } from '../models/manifest.ts';
import { MODEL_NAMES } from '../models/manifest.ts';
import { lineChartSvg } from '../report/plot.ts';
import { Progress } from '../report/progress.ts';
import { listFaceFolder } from '../util/face-folder.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { seededRandom } from '../util/random.ts';
import { alignFace } from '../vision/align.ts';
import { FaceDetector } from '../vision/detector.ts';
import { FaceEmbedder, normalize } from '../vision/embedder.ts';
import { primaryFace } from '../vision/face-crop.ts';
import { FACEREC_TEMPLATE } from '../vision/face-template.ts';
import { decodeImage, type RgbImage } from '../vision/image.ts';
import {
  type FaceQuality,
  faceQuality,
  passesQuality,
  type QualityLimits,
  qualityScore,
} from '../vision/quality.ts';
import type { FaceDetection, Point } from '../vision/types.ts';

export interface OpenSetOptions {
  /** A folder per person, images inside (lfw/dev). */
  images: string;
  modelsDir: string;
  precision: Precision;
  /** Frames per track (each an augmented view of the track's image). */
  frames: number;
  /** Where embeddings are cached between runs; recomputed when missing or made otherwise. */
  cachePath?: string;
  log?: Logger;
}

export interface FrameData {
  embedding: Float32Array;
  quality: FaceQuality;
}

export interface ImageData {
  person: string;
  file: string;
  /** frames[0]: the photo as it is (enrolment); frames[1..]: augmented views (tracks). */
  frames: FrameData[];
}

export interface OpenSetData {
  model: ModelRef;
  images: ImageData[];
  /** Images where no face was found (left out). */
  noFace: number;
}

export interface DecisionSettings {
  k: number;
  n: number;
  qualityLimits: QualityLimits;
  /** The open-set rules without their threshold, which is swept. */
  rules: Omit<OpenSetRules, 'threshold'>;
  gallerySize: number;
  probesPerPerson: number;
  seed: number;
  /**
   * Where a track's frames come from: 'still', every frame a view of one photo; 'photos', frame f a view
   * of the f-th of several distinct photos of the person (as a walking person gives varied frames), for
   * people with at least `k` photos to draw on (the others give no tracks).
   */
  tracks: 'still' | 'photos';
  /**
   * 'all' people, or one of two disjoint halves of them (seeded): rules picked on 'tune' are reported
   * on 'report', so no figure is measured on the people it was tuned on.
   */
  people: 'all' | 'tune' | 'report';
}

export interface OpenSetPoint {
  threshold: number;
  strangerTracks: number;
  falseAccepts: number;
  /** False accepts per 1,000 stranger tracks. */
  faPer1000: number;
  genuineTracks: number;
  /** Genuine tracks recognised as their own person. */
  recognized: number;
  recognitionRate: number;
  /** Genuine tracks recognised as someone else. */
  misidentified: number;
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** A camera's view of a photo: exposure, distance (downscale), focus blur, sensor noise. */
async function augment(image: RgbImage, random: () => number): Promise<RgbImage> {
  const { width, height } = image;
  const gain = 0.7 + 0.6 * random();
  const offset = -20 + 40 * random();
  const scale = 0.45 + 0.55 * random();
  const blur = random() < 0.5 ? 0 : 0.5 + 1.3 * random();
  let pipeline = sharp(image.rgb, { raw: { width, height, channels: 3 } })
    .linear(gain, offset)
    .resize(Math.round(width * scale), Math.round(height * scale), { kernel: 'linear' });
  const small = await pipeline.raw().toBuffer();
  pipeline = sharp(small, {
    raw: { width: Math.round(width * scale), height: Math.round(height * scale), channels: 3 },
  }).resize(width, height, { kernel: 'linear', fit: 'fill' });
  if (blur > 0) pipeline = pipeline.blur(blur);
  const rgb = await pipeline.raw().toBuffer();
  const sigma = 6 * random();
  for (let i = 0; i < rgb.length; i++) rgb[i] = Math.max(0, Math.min(255, rgb[i] + sigma * gaussian(random)));
  return { rgb, width, height };
}

/** The detector's keypoints wobble between frames by a few percent of the eye distance. */
function jitter(face: FaceDetection, random: () => number): FaceDetection {
  const [r, l] = face.keypoints;
  const sd = 0.04 * Math.hypot(l[0] - r[0], l[1] - r[1]);
  return {
    ...face,
    keypoints: face.keypoints.map((p): Point => [p[0] + sd * gaussian(random), p[1] + sd * gaussian(random)]),
  };
}

const CACHE_VERSION = 1;

interface CacheFile {
  version: number;
  key: string;
  model: ModelRef;
  noFace: number;
  images: { person: string; file: string; frames: { e: string; q: FaceQuality }[] }[];
}

function cacheKey(opts: OpenSetOptions, files: number): string {
  return JSON.stringify([opts.precision, opts.frames, files]);
}

/** Detects once per image, then embeds the photo and `frames` augmented views of it (or reads the cache). */
export async function embedOpenSet(opts: OpenSetOptions): Promise<OpenSetData> {
  const log = opts.log ?? silentLogger;
  const list = listFaceFolder(opts.images);
  if (list.length === 0) throw new Error(`${opts.images}: no <person>/<image> files found`);
  const key = cacheKey(opts, list.length);
  if (opts.cachePath && existsSync(opts.cachePath)) {
    const cached = JSON.parse(readFileSync(opts.cachePath, 'utf8')) as CacheFile;
    if (cached.version === CACHE_VERSION && cached.key === key) {
      log.child('eval openset').info(`embeddings from ${opts.cachePath}`);
      return {
        model: cached.model,
        noFace: cached.noFace,
        images: cached.images.map((image) => ({
          person: image.person,
          file: image.file,
          frames: image.frames.map((f) => ({
            embedding: new Float32Array(new Uint8Array(Buffer.from(f.e, 'base64')).buffer),
            quality: f.q,
          })),
        })),
      };
    }
  }
  const detectorModel = await openModel({
    dir: opts.modelsDir,
    name: MODEL_NAMES.detector,
    precision: 'fp32',
  });
  const embedderModel = await openModel({
    dir: opts.modelsDir,
    name: MODEL_NAMES.embedder,
    precision: opts.precision,
  });
  const detector = new FaceDetector(detectorModel.engine);
  const embedder = new FaceEmbedder(embedderModel.engine, embedderModel.manifest);
  const model = { name: embedderModel.manifest.name, version: embedderModel.manifest.version };
  const images: ImageData[] = [];
  let noFace = 0;
  const progress = new Progress('eval openset', list.length, log.info);
  for (const [index, { person, file }] of list.entries()) {
    const photo = await decodeImage(join(opts.images, file));
    const face = primaryFace(await detector.detect(photo), photo.width, photo.height);
    progress.tick();
    if (!face) {
      noFace++;
      continue;
    }
    // Seeded by the image's place in the sorted list: the same views on every run.
    const random = seededRandom(index + 1);
    const views: { image: RgbImage; face: FaceDetection }[] = [{ image: photo, face }];
    for (let f = 0; f < opts.frames; f++)
      views.push({ image: await augment(photo, random), face: jitter(face, random) });
    const crops = await Promise.all(views.map((v) => alignFace(v.image, v.face.keypoints, FACEREC_TEMPLATE)));
    const embeddings = await embedder.embed(crops.map((c) => c.rgb));
    const qualities = await Promise.all(views.map((v) => faceQuality(v.image, v.face)));
    images.push({
      person,
      file,
      frames: embeddings.map((embedding, i) => ({ embedding, quality: qualities[i] })),
    });
  }
  progress.done();
  await detectorModel.engine.close();
  await embedderModel.engine.close();
  if (opts.cachePath) {
    await mkdir(dirname(opts.cachePath), { recursive: true });
    const file: CacheFile = {
      version: CACHE_VERSION,
      key,
      model,
      noFace,
      images: images.map((image) => ({
        person: image.person,
        file: image.file,
        frames: image.frames.map((f) => ({
          e: Buffer.from(f.embedding.buffer, f.embedding.byteOffset, f.embedding.byteLength).toString(
            'base64',
          ),
          q: f.quality,
        })),
      })),
    };
    writeFileSync(opts.cachePath, JSON.stringify(file));
  }
  return { model, images, noFace };
}

interface TrackFrame {
  ranking: ReturnType<Gallery['rank']>;
  quality: number;
}

interface Track {
  /** The enrolled person it shows, or null for a stranger. */
  person: string | null;
  frames: TrackFrame[];
  /** The mean of the usable frames' embeddings, ranked (null when no frame is usable). */
  mean: TrackFrame | null;
}

/** Enrolment photos for a person with `count` images: one when they have two, at most three. */
function enrolCount(count: number): number {
  return Math.min(3, count - 1);
}

/**
 * Every gallery of the protocol, enrolled in a real (temporary) gallery database, and every track ranked
 * against it frame by frame: what does not depend on the threshold or the rules.
 */
export function buildTracks(data: OpenSetData, settings: DecisionSettings): Track[][] {
  const byPerson = new Map<string, ImageData[]>();
  for (const image of data.images) byPerson.set(image.person, [...(byPerson.get(image.person) ?? []), image]);
  const random = seededRandom(settings.seed);
  const enrollable = [...byPerson.keys()].filter((p) => (byPerson.get(p)?.length ?? 0) >= 2);
  for (let i = enrollable.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [enrollable[i], enrollable[j]] = [enrollable[j], enrollable[i]];
  }
  // A half takes every other person along the shuffled list (and along the sorted list of those with one
  // photo, who are only ever strangers), so both halves hold people with many and few photos alike.
  const halfOf = (list: string[]) =>
    list.filter((_, i) => settings.people === 'all' || (i % 2 === 0) === (settings.people === 'tune'));
  const candidates = halfOf(enrollable);
  const half = new Set([
    ...candidates,
    ...halfOf([...byPerson.keys()].filter((p) => (byPerson.get(p)?.length ?? 0) < 2)),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'facegate-openset-'));
  const splits: Track[][] = [];
  try {
    for (let start = 0; start + settings.gallerySize <= candidates.length; start += settings.gallerySize) {
      const enrolled = new Set(candidates.slice(start, start + settings.gallerySize));
      const gallery = Gallery.open(join(dir, `gallery-${splits.length}.db`));
      const tracks: Track[] = [];
      const track = (frames: FrameData[], person: string | null) => {
        const usable = frames
          .filter((f) => passesQuality(f.quality, settings.qualityLimits).ok)
          .map((f) => ({ embedding: f.embedding, quality: qualityScore(f.quality, settings.qualityLimits) }));
        const rank = (embedding: Float32Array, quality: number) => ({
          ranking: gallery.rank(embedding, data.model),
          quality,
        });
        tracks.push({
          person,
          frames: usable.map((f) => rank(f.embedding, f.quality)),
          mean:
            usable.length === 0
              ? null
              : rank(
                  meanEmbedding(usable.map((f) => f.embedding)),
                  usable.reduce((sum, f) => sum + f.quality, 0) / usable.length,
                ),
        });
      };
      // Tracks of `pool` (one person's photos), one starting at each of its first `count` photos.
      const tracksOf = (pool: ImageData[], count: number, person: string | null) => {
        if (settings.tracks === 'still') {
          for (const image of pool.slice(0, count)) track(image.frames.slice(1), person);
        } else if (pool.length >= settings.k) {
          const views = pool[0].frames.length - 1;
          for (let start = 0; start < Math.min(count, pool.length); start++)
            track(
              Array.from({ length: views }, (_, f) => pool[(start + f) % pool.length].frames[1 + f]),
              person,
            );
        }
      };
      for (const person of enrolled) {
        const images = byPerson.get(person) ?? [];
        const enrol = enrolCount(images.length);
        gallery.enroll(
          person,
          images
            .slice(0, enrol)
            .map((image) => ({ embedding: image.frames[0].embedding, source: image.file })),
          data.model,
        );
        tracksOf(images.slice(enrol), settings.probesPerPerson, person);
      }
      for (const [person, images] of byPerson)
        if (half.has(person) && !enrolled.has(person)) tracksOf(images, images.length, null);
      splits.push(tracks);
      gallery.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return splits;
}

/** The unit-length mean of a track's embeddings. */
function meanEmbedding(embeddings: Float32Array[]): Float32Array {
  const mean = new Float32Array(embeddings[0].length);
  for (const e of embeddings) for (let i = 0; i < mean.length; i++) mean[i] += e[i];
  return normalize(mean);
}

/**
 * How a track is decided: 'k-of-n', as the camera path does, frame by frame; 'mean', once per track on
 * the mean of its usable frames' embeddings (at least k of them), with the same open-set rules.
 */
export type TrackDecision = 'k-of-n' | 'mean';

/** Every track through the open-set rules and the decision at one threshold. */
export function scoreTracks(
  splits: Track[][],
  settings: DecisionSettings,
  rules: OpenSetRules,
  decision: TrackDecision = 'k-of-n',
): OpenSetPoint {
  const point = {
    threshold: rules.threshold,
    strangerTracks: 0,
    falseAccepts: 0,
    genuineTracks: 0,
    recognized: 0,
    misidentified: 0,
  };
  for (const tracks of splits) {
    const decisions = new DecisionEngine({
      k: settings.k,
      n: settings.n,
      unknownAfterFrames: settings.n,
      cooldownSeconds: 0,
    });
    tracks.forEach((track, trackId) => {
      let outcome: string | null = null;
      if (decision === 'mean') {
        if (track.mean && track.frames.length >= settings.k)
          outcome = matchFrame(track.mean.ranking, rules, track.mean.quality).identity;
      } else {
        track.frames.forEach((frame, f) => {
          const vote = matchFrame(frame.ranking, rules, frame.quality);
          const decided = decisions.observe(
            { trackId, box: [0, 0, 1, 1], identity: vote.identity, score: vote.score },
            trackId * 1000 + f,
          );
          if (decided?.type === 'recognized') outcome = decided.identity;
        });
        decisions.endTrack(trackId);
      }
      if (track.person === null) {
        point.strangerTracks++;
        if (outcome !== null) point.falseAccepts++;
      } else {
        point.genuineTracks++;
        if (outcome === track.person) point.recognized++;
        else if (outcome !== null) point.misidentified++;
      }
    });
  }
  return {
    ...point,
    faPer1000: (1000 * point.falseAccepts) / Math.max(point.strangerTracks, 1),
    recognitionRate: point.recognized / Math.max(point.genuineTracks, 1),
  };
}

/** Two panels, one PNG: false accepts per 1,000 stranger tracks, and recognition rate, against threshold. */
export async function renderOpenSet(
  curves: { name: string; points: OpenSetPoint[] }[],
  pngPath: string,
  title: string,
  target: { faPer1000: number; recognitionRate: number },
): Promise<void> {
  const xs = curves.flatMap((c) => c.points.map((p) => p.threshold));
  const xRange = [Math.min(...xs), Math.max(...xs)] as const;
  const panel = (
    yLabel: string,
    y: (p: OpenSetPoint) => number,
    yRange: readonly [number, number],
    legend: 'top-right' | 'bottom-left',
  ) =>
    sharp(
      Buffer.from(
        lineChartSvg({
          title: `${title}: ${yLabel}`,
          xLabel: 'cosine threshold',
          yLabel,
          xRange,
          yRange,
          series: [
            ...curves.map((c) => ({
              name: c.name,
              points: c.points.map((p) => [p.threshold, y(p)] as const),
            })),
            {
              name: 'goal',
              dashed: true,
              points: [
                [xRange[0], y(target as OpenSetPoint)],
                [xRange[1], y(target as OpenSetPoint)],
              ] as const,
            },
          ],
          legend,
          width: 900,
          height: 420,
        }),
      ),
    )
      .png()
      .toBuffer();
  const maxFa = Math.max(1, ...curves.flatMap((c) => c.points.map((p) => p.faPer1000)));
  const top = await panel(
    'false accepts per 1,000 stranger tracks',
    (p) => p.faPer1000,
    [0, Math.min(maxFa, 20)],
    'top-right',
  );
  const bottom = await panel('recognition rate', (p) => p.recognitionRate, [0.5, 1], 'bottom-left');
  await mkdir(dirname(pngPath), { recursive: true });
  await sharp({ create: { width: 900, height: 840, channels: 3, background: '#ffffff' } })
    .composite([
      { input: top, top: 0, left: 0 },
      { input: bottom, top: 420, left: 0 },
    ])
    .png()
    .toFile(pngPath);
}
