import { describe, expect, it } from 'vitest';
import {
  kFoldAccuracy,
  rocCurve,
  type ScoredPair,
  thresholdForFar,
  tprAtFar,
} from '../../../runtime/eval/metrics.ts';

// Scores are dyadic fractions so midpoints are exact and thresholds can be compared with toBe.
function fold(fold: number, same: number[], different: number[]): ScoredPair[] {
  return [
    ...same.map((score) => ({ fold, same: true, score })),
    ...different.map((score) => ({ fold, same: false, score })),
  ];
}

describe('kFoldAccuracy', () => {
  it('scores perfectly separated folds at 1 with the threshold midway between the classes', () => {
    const pairs = [0, 1, 2].flatMap((f) => fold(f, [0.75, 0.875], [0.125, 0.25]));
    const r = kFoldAccuracy(pairs);
    expect(r.mean).toBe(1);
    expect(r.std).toBe(0);
    expect(r.perFold).toEqual([0, 1, 2].map((f) => ({ fold: f, threshold: 0.5, accuracy: 1 })));
  });

  it('reports the population std over folds on a known overlap case', () => {
    // Fold 2 is inverted. Held out, it gets t = 0.5 from folds 0+1 (8/8) and scores 0. Folds 0 and
    // 1 train on the other clean fold plus fold 2: 0.3125, 0.5 and 0.6875 all reach 5/6, the
    // lowest is kept and separates the held-out fold perfectly.
    const clean = { same: [0.75, 0.875], different: [0.125, 0.25] };
    const pairs = [
      ...fold(0, clean.same, clean.different),
      ...fold(1, clean.same, clean.different),
      ...fold(2, [0.375], [0.625]),
    ];
    const r = kFoldAccuracy(pairs);
    expect(r.perFold).toEqual([
      { fold: 0, threshold: 0.3125, accuracy: 1 },
      { fold: 1, threshold: 0.3125, accuracy: 1 },
      { fold: 2, threshold: 0.5, accuracy: 0 },
    ]);
    expect(r.mean).toBeCloseTo(2 / 3, 12);
    // Population: sqrt(((1/3)^2 * 2 + (2/3)^2) / 3) = sqrt(2)/3; the sample std would be sqrt(1/3).
    expect(r.std).toBeCloseTo(Math.SQRT2 / 3, 12);
  });

  it('moves tied scores together and breaks equal-accuracy thresholds towards the lower one', () => {
    // Training fold: 0.25 diff, 0.5 diff, 0.5 same, 0.75 same. Splitting the tied 0.5s would look
    // 4/4 correct, but no threshold can; 0.375 and 0.625 both give 3/4 and the lower one wins.
    const pairs = [...fold(0, [0.5, 0.75], [0.25, 0.5]), ...fold(1, [0.5, 0.75], [0.25, 0.5])];
    const r = kFoldAccuracy(pairs);
    expect(r.perFold).toEqual([
      { fold: 0, threshold: 0.375, accuracy: 0.75 },
      { fold: 1, threshold: 0.375, accuracy: 0.75 },
    ]);
  });

  it('chooses each threshold without looking at the held-out fold', () => {
    // Fold 0 alone is separated by any t in (0.25, 0.5), and with fold 0 included the best
    // threshold over all data is 0.375 (8/10). Folds 1+2 alone favour 0.75, so fold 0 must get 0.75
    // and score 3/6. Folds 1 and 2 train on fold 0 plus one small fold and get 0.375 (7/8).
    const pairs = [
      ...fold(0, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]),
      ...fold(1, [0.875], [0.625]),
      ...fold(2, [0.875], [0.625]),
    ];
    const r = kFoldAccuracy(pairs);
    expect(r.perFold).toEqual([
      { fold: 0, threshold: 0.75, accuracy: 0.5 },
      { fold: 1, threshold: 0.375, accuracy: 0.5 },
      { fold: 2, threshold: 0.375, accuracy: 0.5 },
    ]);
  });

  it('can choose "all same" or "all different" thresholds outside the score range', () => {
    // Only genuine pairs in training: every threshold below 0.25 is perfect, the candidate is 0.25 - 1.
    const r = kFoldAccuracy([...fold(0, [0.25, 0.5], []), ...fold(1, [0.75], [0.125])]);
    expect(r.perFold[1]).toEqual({ fold: 1, threshold: -0.75, accuracy: 0.5 });
  });

  it('does not depend on input order', () => {
    const pairs = [...fold(0, [0.5, 0.75], [0.25, 0.5]), ...fold(1, [0.625, 0.75], [0.125, 0.625])];
    expect(kFoldAccuracy([...pairs].reverse())).toEqual(kFoldAccuracy(pairs));
  });

  it('rejects input it cannot cross-validate', () => {
    expect(() => kFoldAccuracy([])).toThrow(/no pairs/);
    expect(() => kFoldAccuracy(fold(0, [0.5], [0.25]))).toThrow(/two folds/);
    expect(() => kFoldAccuracy([...fold(0, [Number.NaN], [0.25]), ...fold(1, [0.5], [0.25])])).toThrow(
      /not a finite number/,
    );
  });
});

describe('tprAtFar and thresholdForFar', () => {
  // Shuffled on purpose: the functions must sort.
  const impostor = [0.5, 0.1, 0.9, 0.3, 1.0, 0.7, 0.2, 0.8, 0.4, 0.6];
  const genuine = [0.35, 0.55, 0.75, 0.85, 0.95, 1.05, 0.65, 0.45];

  it.each([
    // far, threshold, tpr, achieved far
    [0, 1.0, 1 / 8, 0],
    [0.1, 0.9, 2 / 8, 0.1],
    [0.15, 0.9, 2 / 8, 0.1],
    [0.3, 0.7, 4 / 8, 0.3],
    [0.95, 0.1, 1, 0.9],
    [1, Number.NEGATIVE_INFINITY, 1, 1],
  ])('at FAR %d: threshold %d, TPR %d, achieved FAR %d', (far, threshold, tpr, achieved) => {
    expect(tprAtFar(genuine, impostor, far)).toEqual({ tpr, threshold, far: achieved });
    expect(thresholdForFar(impostor, far)).toBe(threshold);
  });

  it('never counts scores equal to the threshold and lets ties keep the achieved FAR low', () => {
    const tiedImpostor = [0.5, 0.5, 0.5, 0.5, 0.2, 0.2, 0.2, 0.2, 0.9, 0.1];
    const tiedGenuine = [0.5, 0.5, 0.6, 0.2];
    // Going below 0.5 would admit all four tied 0.5s at once (FAR 0.5), so 0.3 and 0.45 stop at 0.1.
    expect(tprAtFar(tiedGenuine, tiedImpostor, 0.1)).toEqual({ tpr: 0.25, threshold: 0.5, far: 0.1 });
    expect(tprAtFar(tiedGenuine, tiedImpostor, 0.3)).toEqual({ tpr: 0.25, threshold: 0.5, far: 0.1 });
    expect(tprAtFar(tiedGenuine, tiedImpostor, 0.45)).toEqual({ tpr: 0.25, threshold: 0.5, far: 0.1 });
    expect(tprAtFar(tiedGenuine, tiedImpostor, 0.5)).toEqual({ tpr: 0.75, threshold: 0.2, far: 0.5 });
  });

  it('allows floor(FAR * n) impostors with few impostors (1e-3 of 1500 is 1)', () => {
    const imp = Float64Array.from({ length: 1500 }, (_, i) => i / 1500);
    const r = tprAtFar([1499 / 1500, 1498 / 1500, 1, 0.999], imp, 1e-3);
    expect(r).toEqual({ tpr: 0.75, threshold: 1498 / 1500, far: 1 / 1500 });
  });

  it('is not fooled by FAR * n rounding below an integer (0.29 * 100 = 28.999...)', () => {
    const imp = Array.from({ length: 100 }, (_, i) => i);
    expect(thresholdForFar(imp, 0.29)).toBe(70);
    expect(tprAtFar([70, 71], imp, 0.29).far).toBe(0.29);
  });

  it('accepts Float32Array scores', () => {
    expect(thresholdForFar(Float32Array.from([0.25, 0.75, 0.5, 1]), 0.25)).toBe(0.75);
  });

  it('handles 1.5 million impostor scores quickly', { timeout: 10_000 }, () => {
    const n = 1_500_000;
    // Descending input makes a naive quadratic insertion approach as slow as it can be.
    const imp = Float64Array.from({ length: n }, (_, i) => n - 1 - i);
    expect(thresholdForFar(imp, 1e-6)).toBe(n - 2);
    expect(tprAtFar([n - 1, n - 1500, n - 1501], imp, 1e-3)).toEqual({
      tpr: 2 / 3,
      threshold: n - 1501,
      far: 1500 / n,
    });
  });

  it('rejects invalid FARs and scores', () => {
    for (const far of [-0.1, 1.5, Number.NaN]) {
      expect(() => thresholdForFar(impostor, far)).toThrow(/FAR must be within/);
    }
    expect(() => thresholdForFar([], 0.1)).toThrow(/no scores/);
    expect(() => tprAtFar([], impostor, 0.1)).toThrow(/no scores/);
    expect(() => tprAtFar(genuine, [0.1, Number.POSITIVE_INFINITY], 0.1)).toThrow(/not a finite number/);
  });
});

describe('rocCurve', () => {
  it('lists every distinct threshold with exact rates and the tie-aware AUC', () => {
    const { points, auc } = rocCurve([0.9, 0.8, 0.6, 0.4], [0.7, 0.5, 0.3, 0.4]);
    expect(points).toEqual([
      { threshold: 0.9, far: 0, tpr: 0 },
      { threshold: 0.8, far: 0, tpr: 0.25 },
      { threshold: 0.7, far: 0, tpr: 0.5 },
      { threshold: 0.6, far: 0.25, tpr: 0.5 },
      { threshold: 0.5, far: 0.25, tpr: 0.75 },
      { threshold: 0.4, far: 0.5, tpr: 0.75 },
      { threshold: 0.3, far: 0.75, tpr: 1 },
      { threshold: Number.NEGATIVE_INFINITY, far: 1, tpr: 1 },
    ]);
    // Mann-Whitney: (4 + 4 + 3 + 1 + 0.5 for the 0.4 tie) / 16.
    expect(auc).toBe(12.5 / 16);
  });

  it('gives AUC 1 for perfect separation and 0 for inverted scores', () => {
    expect(rocCurve([0.8, 0.9], [0.1, 0.2]).auc).toBe(1);
    expect(rocCurve([0.1, 0.2], [0.8, 0.9]).auc).toBe(0);
  });

  it('matches a brute-force pairwise AUC and agrees with tprAtFar at every point', () => {
    // Coarse integer scores so that ties are frequent.
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const genuine = Array.from({ length: 200 }, () => Math.floor(rand() * 30) + 10);
    const impostor = Array.from({ length: 300 }, () => Math.floor(rand() * 30));
    let wins = 0;
    for (const g of genuine) for (const i of impostor) wins += g > i ? 1 : g === i ? 0.5 : 0;
    const { points, auc } = rocCurve(genuine, impostor);
    expect(auc).toBeCloseTo(wins / (genuine.length * impostor.length), 12);
    expect(points).toHaveLength(new Set([...genuine, ...impostor]).size + 1);
    for (let k = 1; k < points.length; k++) {
      expect(points[k].far).toBeGreaterThanOrEqual(points[k - 1].far);
      expect(points[k].tpr).toBeGreaterThanOrEqual(points[k - 1].tpr);
    }
    for (const p of points.filter((q) => Number.isFinite(q.threshold))) {
      const op = tprAtFar(genuine, impostor, p.far);
      // The FAR operating point is the lowest threshold with that FAR, so it can only gain TPR.
      expect(op.far).toBe(p.far);
      expect(op.threshold).toBeLessThanOrEqual(p.threshold);
      expect(op.tpr).toBeGreaterThanOrEqual(p.tpr);
    }
  });
});
