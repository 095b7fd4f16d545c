// Per-track decisions of one camera. A single frame's match is noisy (blur, pose, a stranger who looks
// like a resident for one frame), so a track is announced only when k of its last n results agree.
//
// The window is the last n results, not the best n by quality: the quality checks upstream already decide
// whether a frame is fit to count at all, and a window of the latest frames follows the face now in view,
// so when the tracker hands a track from one person to another, stale frames cannot outvote the new face.
//
// Pure and deterministic: time comes in with every result.

import type { FaceEventType } from '../events/schema.ts';
import type { Box } from '../types.ts';

export interface DecisionOptions {
  /** Results (out of the last n of a track) that must agree. */
  k: number;
  /** Window of a track's most recent results. */
  n: number;
  /** Results of a track without k agreeing after which it is announced as unknown. */
  unknownAfterFrames: number;
  /** No second recognition of the same person on this camera within this time. */
  cooldownSeconds: number;
}

/** One frame's result for one tracked face. */
export interface TrackResult {
  trackId: number;
  box: Box;
  /** From Gallery.identify: null when nobody matched above the threshold. */
  identity: string | null;
  score: number;
  /** Presentation-attack check of this frame; absent when the check is off. */
  attack?: {
    /** The check failed: a photo, screen or mask is likely. */
    detected: boolean;
    /** Confidence (0-1) that this is an attack. */
    score: number;
  };
}

/** Matches the fields of FaceEventInput (runtime/events/schema.ts) of the same names. */
export interface Decision {
  type: FaceEventType;
  identity: string | null;
  /**
   * recognized: mean cosine of the agreeing results; spoof: mean attack score of the failed frames;
   * unknown: 1 - (largest agreeing share of the window), i.e. 1 when nothing matched at all.
   */
  score: number;
  /** Box of the frame that completed the decision. */
  box: Box;
  trackId: number;
  timeMs: number;
}

interface Entry {
  identity: string | null;
  score: number;
  attack: boolean;
  attackScore: number;
}

interface TrackState {
  window: Entry[];
  results: number;
  /** Recognised (announced or within cooldown) or spoof: nothing more for this track. */
  settled: boolean;
  /** Who the track was recognised as, announced or not. */
  recognizedAs: string | null;
  unknownSent: boolean;
}

interface Vote {
  identity: string;
  count: number;
  mean: number;
}

/** The identity most entries agree on; ties go to the higher mean score, then the lower name. */
function plurality(entries: readonly Entry[]): Vote | null {
  const tally = new Map<string, { count: number; sum: number }>();
  for (const e of entries) {
    if (e.identity === null) continue;
    const t = tally.get(e.identity) ?? { count: 0, sum: 0 };
    t.count++;
    t.sum += e.score;
    tally.set(e.identity, t);
  }
  let best: Vote | null = null;
  for (const [identity, { count, sum }] of tally) {
    const vote = { identity, count, mean: sum / count };
    if (
      best === null ||
      count > best.count ||
      (count === best.count &&
        (vote.mean > best.mean || (vote.mean === best.mean && identity < best.identity)))
    )
      best = vote;
  }
  return best;
}

function clamp01(x: number): number {
  return Math.max(0, Math.min(1, x));
}

export class DecisionEngine {
  private readonly tracks = new Map<number, TrackState>();
  /** Time of the last recognized decision per identity; bounded by the gallery's size. */
  private readonly announced = new Map<string, number>();

  constructor(private readonly options: DecisionOptions) {
    const { k, n, unknownAfterFrames, cooldownSeconds } = options;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
    if (!Number.isInteger(k) || k < 1 || k > n)
      throw new RangeError(`k must be an integer in 1..n (${n}), got ${k}`);
    if (!Number.isInteger(unknownAfterFrames) || unknownAfterFrames < 1)
      throw new RangeError(`unknownAfterFrames must be a positive integer, got ${unknownAfterFrames}`);
    if (!(cooldownSeconds >= 0)) throw new RangeError(`cooldownSeconds must be >= 0, got ${cooldownSeconds}`);
  }

  /** Adds one frame's result for a track; returns the decision it completes, if any. */
  observe(result: TrackResult, timeMs: number): Decision | null {
    const { k, n, unknownAfterFrames, cooldownSeconds } = this.options;
    let track = this.tracks.get(result.trackId);
    if (track === undefined) {
      track = { window: [], results: 0, settled: false, recognizedAs: null, unknownSent: false };
      this.tracks.set(result.trackId, track);
    }
    if (track.settled) return null;
    track.window.push({
      identity: result.identity,
      score: result.score,
      attack: result.attack?.detected === true,
      attackScore: result.attack?.score ?? 0,
    });
    if (track.window.length > n) track.window.shift();
    track.results++;
    const decide = (type: FaceEventType, identity: string | null, score: number): Decision => ({
      type,
      identity,
      score: clamp01(score),
      box: [...result.box],
      trackId: result.trackId,
      timeMs,
    });

    // Checked first so that a presented photo of a resident is never recognised.
    const attacks = track.window.filter((e) => e.attack);
    if (attacks.length >= k) {
      track.settled = true;
      const attackScore = attacks.reduce((sum, e) => sum + e.attackScore, 0) / attacks.length;
      return decide('spoof', plurality(attacks)?.identity ?? null, attackScore);
    }

    // Frames that failed the attack check do not vote for who it is.
    const vote = plurality(track.window.filter((e) => !e.attack));
    if (vote !== null && vote.count >= k) {
      track.settled = true;
      track.recognizedAs = vote.identity;
      const since = timeMs - (this.announced.get(vote.identity) ?? Number.NEGATIVE_INFINITY);
      // A negative interval is a clock stepped back, not a recent announcement.
      if (since >= 0 && since < cooldownSeconds * 1000) return null;
      this.announced.set(vote.identity, timeMs);
      return decide('recognized', vote.identity, vote.mean);
    }

    // Not settled: a later recognition of the same track (the face turned towards the camera) still counts.
    if (!track.unknownSent && track.results >= unknownAfterFrames) {
      track.unknownSent = true;
      return decide('unknown', null, 1 - (vote?.count ?? 0) / track.window.length);
    }
    return null;
  }

  /**
   * Who a live track was recognised as, whether that was announced or fell within the cooldown of an
   * earlier announcement (then the track is part of what that announcement stands for); null otherwise.
   */
  recognizedAs(trackId: number): string | null {
    return this.tracks.get(trackId)?.recognizedAs ?? null;
  }

  /** Forgets a track the tracker has ended. */
  endTrack(trackId: number): void {
    this.tracks.delete(trackId);
  }
}
