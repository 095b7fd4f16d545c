// Face-verification metrics over similarity scores (higher = more similar).
//
// One decision rule everywhere: a pair is accepted as "same person" iff score > threshold
// (strictly). FAR/TPR, the k-fold accuracy and the thresholds baked into model manifests all
// agree on it, so a threshold measured here means the same thing on the device.

export type Scores = Float64Array | Float32Array | readonly number[];

export interface ScoredPair {
  fold: number;
  same: boolean;
  score: number;
}

export interface FoldResult {
  fold: number;
  threshold: number;
  accuracy: number;
}

export interface KFoldResult {
  mean: number;
  /** Population standard deviation (divide by the number of folds), as LFW papers report it. */
  std: number;
  perFold: FoldResult[];
}

export interface FarOperatingPoint {
  tpr: number;
  threshold: number;
  /** Achieved FAR; with ties or few impostors it can be below the requested one. */
  far: number;
}

export interface RocPoint {
  far: number;
  tpr: number;
  threshold: number;
}

export interface RocCurve {
  /** One point per distinct score plus a final (1, 1) point at threshold -Infinity; far and tpr ascend. */
  points: RocPoint[];
  auc: number;
}

function assertFinite(score: number, what: string): void {
  if (!Number.isFinite(score)) throw new Error(`${what}: score ${score} is not a finite number`);
}

// Typed-array sort is numeric and much faster than Array#sort on ~1.5M scores.
function sortedCopy(scores: Scores, what: string): Float64Array {
  if (scores.length === 0) throw new Error(`${what}: no scores`);
  const out = Float64Array.from(scores);
  for (const s of out) assertFinite(s, what);
  return out.sort();
}

function assertFar(far: number): void {
  if (!(far >= 0 && far <= 1)) throw new Error(`FAR must be within [0, 1], got ${far}`);
}

// Largest k with k / n <= far, compared in floating point exactly as the caller's FAR is,
// so e.g. far = 0.29 with n = 100 allows 29 even though 0.29 * 100 = 28.999999999999996.
function maxCountAtRate(n: number, far: number): number {
  let k = Math.min(n, Math.floor(far * n));
  while (k < n && (k + 1) / n <= far) k++;
  while (k > 0 && k / n > far) k--;
  return k;
}

// Number of entries of ascending `sorted` strictly greater than `t`.
function countAbove(sorted: Float64Array, t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return sorted.length - lo;
}

function thresholdInSorted(impostor: Float64Array, far: number): number {
  const m = impostor.length;
  const k = maxCountAtRate(m, far);
  // Below every impostor score all of them pass; the only threshold with no minimum is then -Infinity.
  if (k >= m) return Number.NEGATIVE_INFINITY;
  // Exactly k scores sit above index m-1-k, and any lower threshold admits that score too.
  return impostor[m - 1 - k];
}

/**
 * The smallest threshold t such that the fraction of impostor scores strictly above t is <= far.
 * It is always an impostor score, except -Infinity when far = 1.
 */
export function thresholdForFar(impostor: Scores, far: number): number {
  assertFar(far);
  return thresholdInSorted(sortedCopy(impostor, 'thresholdForFar impostor'), far);
}

/** TPR at the threshold from thresholdForFar, with the FAR actually achieved there. */
export function tprAtFar(genuine: Scores, impostor: Scores, far: number): FarOperatingPoint {
  assertFar(far);
  const imp = sortedCopy(impostor, 'tprAtFar impostor');
  const gen = sortedCopy(genuine, 'tprAtFar genuine');
  const threshold = thresholdInSorted(imp, far);
  return {
    tpr: countAbove(gen, threshold) / gen.length,
    threshold,
    far: countAbove(imp, threshold) / imp.length,
  };
}

/**
 * ROC over every distinct score used as a threshold. The AUC is the trapezoid area, which equals
 * P(genuine > impostor) + P(genuine = impostor) / 2 because tied scores move both rates at once.
 */
export function rocCurve(genuine: Scores, impostor: Scores): RocCurve {
  const gen = sortedCopy(genuine, 'rocCurve genuine');
  const imp = sortedCopy(impostor, 'rocCurve impostor');
  const n = gen.length;
  const m = imp.length;
  const points: RocPoint[] = [];
  let g = n - 1;
  let i = m - 1;
  let auc = 0;
  let prevFar = 0;
  let prevTpr = 0;
  // Walk distinct scores from the top; counts are of scores strictly above the current one.
  while (g >= 0 || i >= 0) {
    const t = g < 0 ? imp[i] : i < 0 ? gen[g] : Math.max(gen[g], imp[i]);
    const far = (m - 1 - i) / m;
    const tpr = (n - 1 - g) / n;
    auc += ((far - prevFar) * (tpr + prevTpr)) / 2;
    points.push({ far, tpr, threshold: t });
    prevFar = far;
    prevTpr = tpr;
    while (g >= 0 && gen[g] === t) g--;
    while (i >= 0 && imp[i] === t) i--;
  }
  auc += ((1 - prevFar) * (1 + prevTpr)) / 2;
  points.push({ far: 1, tpr: 1, threshold: Number.NEGATIVE_INFINITY });
  return { points, auc };
}

// A threshold strictly between two adjacent distinct scores. The midpoint of two neighbouring
// doubles can round up to `hi`, which under `score > t` would flip `hi` to "different".
function between(lo: number, hi: number): number {
  const mid = lo + (hi - lo) / 2;
  return mid < hi ? mid : lo;
}

/**
 * LFW-protocol accuracy: for each fold, the threshold is the one maximising accuracy on the
 * other folds (candidates: midpoints between sorted unique scores, plus one below the lowest and
 * one above the highest, so "all same"/"all different" are representable); accuracy is measured
 * on the held-out fold. Among equally good thresholds the lowest wins, to stay deterministic.
 */
export function kFoldAccuracy(pairs: readonly ScoredPair[]): KFoldResult {
  if (pairs.length === 0) throw new Error('kFoldAccuracy: no pairs');
  for (const p of pairs) assertFinite(p.score, 'kFoldAccuracy');
  const folds = [...new Set(pairs.map((p) => p.fold))].sort((x, y) => x - y);
  if (folds.length < 2) throw new Error('kFoldAccuracy: needs at least two folds to hold one out');

  // Sorted once; each fold's training sweep just skips the held-out pairs.
  const sorted = [...pairs].sort((x, y) => x.score - y.score);
  const perFold: FoldResult[] = [];
  for (const fold of folds) {
    // Threshold below every score: all training pairs are called "same".
    let correct = 0;
    let lowestTrain = Number.POSITIVE_INFINITY;
    for (const p of sorted) {
      if (p.fold === fold) continue;
      if (p.same) correct++;
      lowestTrain = Math.min(lowestTrain, p.score);
    }
    let bestCorrect = correct;
    let bestThreshold = lowestTrain - 1;

    // Raising the threshold past a group of equal scores flips that whole group to "different".
    let j = 0;
    while (j < sorted.length) {
      const value = sorted[j].score;
      let k = j;
      while (k < sorted.length && sorted[k].score === value) {
        if (sorted[k].fold !== fold) correct += sorted[k].same ? -1 : 1;
        k++;
      }
      let next = k;
      while (next < sorted.length && sorted[next].fold === fold) next++;
      if (correct > bestCorrect) {
        bestCorrect = correct;
        bestThreshold = next < sorted.length ? between(value, sorted[next].score) : value + 1;
      }
      j = k;
    }

    let testCorrect = 0;
    let testCount = 0;
    for (const p of pairs) {
      if (p.fold !== fold) continue;
      testCount++;
      if (p.score > bestThreshold === p.same) testCorrect++;
    }
    perFold.push({ fold, threshold: bestThreshold, accuracy: testCorrect / testCount });
  }

  const mean = perFold.reduce((s, f) => s + f.accuracy, 0) / perFold.length;
  const variance = perFold.reduce((s, f) => s + (f.accuracy - mean) ** 2, 0) / perFold.length;
  return { mean, std: Math.sqrt(variance), perFold };
}
