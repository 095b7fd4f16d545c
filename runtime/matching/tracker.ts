// One IoU tracker per camera. A face at a door moves little between frames, so matching each detection to
// the track whose last box overlaps it most is enough to follow it, and it needs no appearance model.
// Track ids give the decision stage several frames of the same face to agree on.

import type { Box } from '../types.ts';
import type { FaceDetection } from '../vision/types.ts';

export interface TrackerOptions {
  /** Minimum IoU (0-1) between a detection and a track's last box for the detection to continue it. */
  trackIou: number;
  /** A track unseen for longer than this ends. */
  trackMaxAgeMs: number;
}

export interface TrackedFace {
  trackId: number;
  detection: FaceDetection;
  /** First frame of this track. */
  isNew: boolean;
}

export interface EndedTrack {
  trackId: number;
  /** Last box seen. */
  box: Box;
  firstSeenMs: number;
  lastSeenMs: number;
  frames: number;
}

export interface TrackerUpdate {
  /** One entry per detection, in the order given. */
  faces: TrackedFace[];
  /** Tracks that ended before this frame (unseen for longer than trackMaxAgeMs). */
  ended: EndedTrack[];
}

interface Track {
  id: number;
  box: Box;
  firstSeenMs: number;
  lastSeenMs: number;
  frames: number;
}

export function boxIou(a: Box, b: Box): number {
  const ix = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const iy = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  if (ix <= 0 || iy <= 0) return 0;
  const inter = ix * iy;
  return inter / (a[2] * a[3] + b[2] * b[3] - inter);
}

function ended(track: Track): EndedTrack {
  return {
    trackId: track.id,
    box: track.box,
    firstSeenMs: track.firstSeenMs,
    lastSeenMs: track.lastSeenMs,
    frames: track.frames,
  };
}

export class FaceTracker {
  private tracks: Track[] = [];
  private nextId = 1;
  private lastTimeMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: TrackerOptions) {
    if (!(options.trackIou >= 0 && options.trackIou <= 1))
      throw new RangeError(`trackIou must be within 0..1, got ${options.trackIou}`);
    if (!(options.trackMaxAgeMs > 0))
      throw new RangeError(`trackMaxAgeMs must be positive, got ${options.trackMaxAgeMs}`);
  }

  /** The detections of one frame taken at `timeMs`. */
  update(detections: readonly FaceDetection[], timeMs: number): TrackerUpdate {
    if (!Number.isFinite(timeMs)) throw new RangeError(`frame time ${timeMs} is not a number`);
    // A wall clock stepped back (NTP) makes every age meaningless: start afresh rather than keep tracks
    // alive until the clock catches up.
    const steppedBack = timeMs < this.lastTimeMs;
    const expired = this.tracks.filter(
      (t) => steppedBack || timeMs - t.lastSeenMs > this.options.trackMaxAgeMs,
    );
    this.tracks = this.tracks.filter((t) => !expired.includes(t));
    this.lastTimeMs = timeMs;

    // Greedy by overlap, best pairs first; ties broken by track then detection order, so it is deterministic.
    const pairs: { track: number; detection: number; iou: number }[] = [];
    this.tracks.forEach((track, t) => {
      detections.forEach((detection, d) => {
        const iou = boxIou(track.box, detection.box);
        if (iou > 0 && iou >= this.options.trackIou) pairs.push({ track: t, detection: d, iou });
      });
    });
    pairs.sort((a, b) => b.iou - a.iou || a.track - b.track || a.detection - b.detection);
    const trackOf: (Track | undefined)[] = new Array(detections.length);
    const taken = new Set<number>();
    for (const pair of pairs) {
      if (trackOf[pair.detection] !== undefined || taken.has(pair.track)) continue;
      trackOf[pair.detection] = this.tracks[pair.track];
      taken.add(pair.track);
    }

    const faces = detections.map((detection, d): TrackedFace => {
      const box: Box = [...detection.box];
      const track = trackOf[d];
      if (track === undefined) {
        const id = this.nextId++;
        this.tracks.push({ id, box, firstSeenMs: timeMs, lastSeenMs: timeMs, frames: 1 });
        return { trackId: id, detection, isNew: true };
      }
      track.box = box;
      track.lastSeenMs = timeMs;
      track.frames++;
      return { trackId: track.id, detection, isNew: false };
    });
    return { faces, ended: expired.map(ended) };
  }

  /** Ends every live track, e.g. when the camera stops. */
  endAll(): EndedTrack[] {
    const all = this.tracks.map(ended);
    this.tracks = [];
    return all;
  }
}
