// A per-camera target FAR anywhere on the embedder's calibrated FAR curve, over a real mosquitto: taken
// live by config/set, and refused with the camera and the range named, at start and by config/set
// (which then leaves the file as it was).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadModel, manifestPathFor, type Precision } from '../../../runtime/models/manifest.ts';
import { MODELS_DIR } from '../../helpers/paths.ts';
import { hamiltonCamera, Operator, startApp, useDeviceBed } from './harness.ts';

const bed = useDeviceBed('facegate-target-far-');

/** The running embedder's curve: its lowest FAR and a FAR between two of its points. */
function curveOfEmbedder(precision: Precision): { lowest: number; highest: number; between: number } {
  const { manifest } = loadModel(manifestPathFor(MODELS_DIR, 'facerec', precision));
  const curve = manifest.thresholds?.curve ?? [];
  expect(curve.length).toBeGreaterThan(2);
  return {
    highest: curve[0][0],
    lowest: curve[curve.length - 1][0],
    between: Math.sqrt(curve[curve.length - 1][0] * curve[curve.length - 2][0]),
  };
}

const withOverride = (targetFar: number) => ({
  cameras: [{ ...hamiltonCamera(), overrides: { recognition: { targetFar } } }],
});

describe('per-camera target FAR', () => {
  it('takes any FAR within the curve over config/set and refuses one outside it, naming camera and range', async () => {
    const device = await startApp(bed.dir, bed.broker.url);
    bed.device = device;
    const op = await Operator.connect(bed.broker.url, device.app.topics);
    bed.op = op;
    const { lowest, highest, between } = curveOfEmbedder(device.config.models.precision);

    const taken = await op.ask('config/set', { config: withOverride(between) });
    expect(taken).toMatchObject({ status: 'ok' });
    expect(device.app.config.cameras[0].overrides?.recognition?.targetFar).toBe(between);

    const before = readFileSync(device.file, 'utf8');
    const refused = await op.ask('config/set', { config: withOverride(lowest / 10) });
    expect(refused).toMatchObject({
      status: 'error',
      error: `camera door: recognition.targetFar ${lowest / 10} is outside the range embedder facerec 1.0.0 was calibrated for (FAR ${lowest} to ${highest}, on lfw/calib)`,
    });
    expect(readFileSync(device.file, 'utf8')).toBe(before);
    expect(device.app.config.cameras[0].overrides?.recognition?.targetFar).toBe(between);
  });

  it('refuses to start with a camera whose target FAR is outside the curve', async () => {
    await expect(startApp(bed.dir, bed.broker.url, withOverride(1e-9))).rejects.toThrow(
      /^camera door: recognition\.targetFar 1e-9 is outside the range embedder facerec/,
    );
  });
});
