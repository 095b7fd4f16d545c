// Open-set rules for one frame: who, if anyone, this face votes for. The embedder's threshold alone is a
// per-comparison false-accept rate; against a gallery, at a door that mostly sees people who are not
// enrolled, three more rules keep strangers out (measured by `facegate eval openset`, docs/openset.md):
//
// - weak enrolments: a person with few embeddings has fewer poses to match, so their genuine scores
//   are lower and a stranger's best score against them is as likely as against anyone; their threshold is
//   raised rather than the whole gallery's;
// - margin: the best person must beat the runner-up (another person, a rejected face of that person, an
//   unknown visitor seen before) by a margin; a face between two candidates is not sure of either;
// - quality: a blurred, small or turned face sits closer to every face, so a poor frame needs a higher
//   score (the raise scales with how far its quality is from perfect).
import type { Ranking } from './gallery/matcher.ts';

export interface OpenSetRules {
  /** Cosine a face must exceed: the embedder manifest's threshold for recognition.targetFar. */
  threshold: number;
  /** How much the best candidate must beat the runner-up by (cosine). */
  margin: number;
  /** People with fewer embeddings than this are a weak enrolment... */
  weakBelowEmbeddings: number;
  /** ...and need this much more than `threshold`. */
  weakRaise: number;
  /** A frame of quality q (0..1) needs threshold + (1 - q) * qualityRaise. */
  qualityRaise: number;
}

export interface FrameMatch {
  /** The person this frame votes for, or null. */
  identity: string | null;
  /** The best person's cosine, whatever the outcome. */
  score: number;
  /** Why a best person above the base threshold got no vote. */
  refused?: 'weak-enrolment' | 'quality' | 'margin';
}

/**
 * One frame's vote. `competitor` is the best score of anything known not to be the best person (a face
 * rejected as them, an unknown visitor), beside the gallery's runner-up; `quality` is 0..1.
 */
export function matchFrame(
  ranking: Ranking,
  rules: OpenSetRules,
  quality = 1,
  competitor = Number.NEGATIVE_INFINITY,
): FrameMatch {
  const { best, runnerUp } = ranking;
  if (!best) return { identity: null, score: 0 };
  const score = best.score;
  if (!(score > rules.threshold)) return { identity: null, score };
  const weak = best.embeddings < rules.weakBelowEmbeddings ? rules.weakRaise : 0;
  if (!(score > rules.threshold + weak)) return { identity: null, score, refused: 'weak-enrolment' };
  const q = Math.max(0, Math.min(1, quality));
  if (!(score > rules.threshold + weak + (1 - q) * rules.qualityRaise))
    return { identity: null, score, refused: 'quality' };
  const second = Math.max(runnerUp?.score ?? Number.NEGATIVE_INFINITY, competitor);
  if (!(score - second > rules.margin)) return { identity: null, score, refused: 'margin' };
  return { identity: best.identity, score };
}
