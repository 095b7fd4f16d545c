// A target FAR becomes a cosine threshold by interpolating the embedder manifest's FAR curve in log(FAR);
// targets the calibration did not measure are refused, and a manifest's curve must be consistent.
import { describe, expect, it } from 'vitest';
import { thresholdForTargetFar } from '../../../runtime/matching/threshold.ts';
import { manifestPolicyProblems } from '../../../runtime/model-update/policy.ts';
import { type ModelManifest, validateManifest } from '../../../runtime/models/manifest.ts';
import { MODEL_SPECS, type ModelSpec } from '../../../tools/models/specs.ts';

/** The facerec embedder's spec: its manifest's input and outputs are the ones the model build writes. */
const FACEREC = MODEL_SPECS.find((s) => s.name === 'facerec') as ModelSpec;

function embedder(thresholds: ModelManifest['thresholds']): ModelManifest {
  return {
    schemaVersion: 1,
    name: 'facerec',
    version: '1.2.0',
    task: FACEREC.task,
    file: 'facerec.int8.onnx',
    sha256: '0'.repeat(64),
    bytes: 1,
    precision: 'int8',
    input: FACEREC.input,
    outputs: FACEREC.outputs,
    thresholds,
    source: { package: 'p', version: '1', files: [] },
  };
}

const far = { '0.01': 0.91, '0.001': 0.93 };
const withCurve = embedder({
  far,
  curve: [
    [0.1, 0.85],
    [0.01, 0.91],
    [0.001, 0.93],
    [0.0001, 0.96],
  ],
  measuredOn: 'lfw/calib',
  impostorPairs: 200_000,
  genuinePairs: 10,
});

describe('thresholdForTargetFar', () => {
  it('returns a measured point exactly', () => {
    expect(thresholdForTargetFar(withCurve, 0.1)).toBe(0.85);
    expect(thresholdForTargetFar(withCurve, 0.001)).toBe(0.93);
    expect(thresholdForTargetFar(withCurve, 0.0001)).toBe(0.96);
  });

  it('interpolates linearly in log(FAR) between two points', () => {
    // 10^-2.5 is halfway between 1e-2 and 1e-3 on the log scale; 2e-3 is log10(5) of the way from 1e-2.
    expect(thresholdForTargetFar(withCurve, 10 ** -2.5)).toBeCloseTo(0.92, 12);
    expect(thresholdForTargetFar(withCurve, 0.002)).toBeCloseTo(0.91 + Math.log10(5) * 0.02, 12);
    expect(thresholdForTargetFar(withCurve, 0.0002)).toBeCloseTo(0.93 + Math.log10(5) * 0.03, 12);
  });

  it('refuses a target outside the measured range, naming the range', () => {
    for (const target of [0.2, 0.00005])
      expect(() => thresholdForTargetFar(withCurve, target)).toThrow(
        `recognition.targetFar ${target} is outside the range embedder facerec 1.2.0 was calibrated for (FAR 0.0001 to 0.1, on lfw/calib)`,
      );
  });

  it('uses the two FAR points of a manifest without a curve', () => {
    const old = embedder({ far, measuredOn: 'lfw/calib', impostorPairs: 200_000, genuinePairs: 10 });
    expect(thresholdForTargetFar(old, 0.01)).toBe(0.91);
    expect(thresholdForTargetFar(old, 10 ** -2.5)).toBeCloseTo(0.92, 12);
    expect(() => thresholdForTargetFar(old, 0.05)).toThrow(/FAR 0\.001 to 0\.01/);
  });

  it('says so when the embedder has no thresholds', () => {
    expect(() => thresholdForTargetFar(embedder(undefined), 0.01)).toThrow(
      'embedder facerec has no thresholds in its manifest',
    );
  });
});

describe('a manifest FAR curve', () => {
  it('validates when ordered and holding the far points', () => {
    expect(validateManifest(withCurve)).toEqual([]);
  });

  it('is refused out of order, or disagreeing with thresholds.far', () => {
    const curve = withCurve.thresholds?.curve ?? [];
    const unordered = embedder({
      ...(withCurve.thresholds as NonNullable<ModelManifest['thresholds']>),
      curve: [curve[0], curve[1], curve[3], curve[2]],
    });
    expect(validateManifest(unordered)).toEqual([
      'field thresholds.curve[3] must have a lower FAR and no lower threshold than the point before it',
    ]);
    const disagreeing = embedder({
      ...(withCurve.thresholds as NonNullable<ModelManifest['thresholds']>),
      far: { '0.01': 0.91, '0.001': 0.94 },
    });
    expect(validateManifest(disagreeing)).toEqual([
      'field thresholds.curve must contain [0.001, 0.94], the point of thresholds.far',
    ]);
  });
});

describe('a model update’s FAR curve', () => {
  const curve = (points: [number, number][]) =>
    embedder({ ...(withCurve.thresholds as NonNullable<ModelManifest['thresholds']>), curve: points });

  it('is held to the running model’s curve where that measured the FAR', () => {
    const loose = curve([
      [0.1, 0.5],
      [0.01, 0.91],
      [0.001, 0.93],
      [0.0001, 0.96],
    ]);
    expect(manifestPolicyProblems(loose, withCurve, true)).toEqual([
      "its FAR 0.1 threshold 0.5 is more than 0.05 from the running facerec's 0.850000",
    ]);
    const lower = curve([
      [0.1, 0.84],
      [0.01, 0.91],
      [0.001, 0.93],
      [0.0001, 0.96],
      [0.00001, 0.97],
    ]);
    expect(manifestPolicyProblems(lower, withCurve, true)).toEqual([]);
    // 1e-5 lies beyond the running curve: not compared; 0.84 is below 0.85, which only a signed manifest may do.
    expect(manifestPolicyProblems(lower, withCurve, false)).toEqual([
      "its FAR 0.1 threshold 0.84 is below the running model's 0.850000, which only a signed manifest may do",
    ]);
  });
});
