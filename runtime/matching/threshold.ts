// The cosine threshold for a target false-accept rate per comparison, read from the embedder manifest's
// calibration: its FAR curve (points measured over every impostor pair of the calibration faces) when
// it has one, else its two FAR points. Between two points the threshold is interpolated linearly in
// log(FAR), the scale the points are spaced on; outside the measured range nothing was measured, so a
// target there is refused rather than extrapolated.
import type { ModelManifest } from '../models/manifest.ts';

/** [FAR, threshold] points, FAR decreasing. */
export type FarCurve = readonly (readonly [number, number])[];

/** The manifest's curve, or its two FAR points for a manifest built before curves. */
export function farCurve(thresholds: NonNullable<ModelManifest['thresholds']>): FarCurve {
  return (
    thresholds.curve ?? [
      [0.01, thresholds.far['0.01']],
      [0.001, thresholds.far['0.001']],
    ]
  );
}

/** The cosine threshold for `targetFar`; throws naming the range when the calibration does not cover it. */
export function thresholdForTargetFar(embedder: ModelManifest, targetFar: number): number {
  if (!embedder.thresholds) throw new Error(`embedder ${embedder.name} has no thresholds in its manifest`);
  const curve = farCurve(embedder.thresholds);
  const highest = curve[0][0];
  const lowest = curve[curve.length - 1][0];
  if (!(targetFar <= highest && targetFar >= lowest))
    throw new Error(
      `recognition.targetFar ${targetFar} is outside the range embedder ${embedder.name} ${embedder.version} was calibrated for (FAR ${lowest} to ${highest}, on ${embedder.thresholds.measuredOn})`,
    );
  for (let i = 0; i < curve.length - 1; i++) {
    const [farHigh, thresholdLow] = curve[i];
    const [farLow, thresholdHigh] = curve[i + 1];
    if (targetFar === farHigh) return thresholdLow;
    if (targetFar > farLow) {
      const t = Math.log(farHigh / targetFar) / Math.log(farHigh / farLow);
      return thresholdLow + t * (thresholdHigh - thresholdLow);
    }
  }
  return curve[curve.length - 1][1];
}
