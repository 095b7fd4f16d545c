import { describe, expect, it } from 'vitest';
import type { Config } from '../../../runtime/config/index.ts';
import {
  cameraSettings,
  checkTargetFars,
  classifyChange,
  loadConfig,
  mergeConfig,
} from '../../../runtime/config/index.ts';

const base = loadConfig({ env: {} });

describe('cameraSettings', () => {
  it('merges a camera’s overrides over the global settings, for that camera only', () => {
    const config = mergeConfig(base, {
      cameras: [
        {
          ...base.cameras[0],
          overrides: { recognition: { targetFar: 0.01, k: 2 }, detection: { minFaceSize: 90 } },
        },
        { ...base.cameras[0], id: 'garage' },
      ],
    }) as Config;
    const door = cameraSettings(config, config.cameras[0]);
    expect(door.recognition).toEqual({ ...base.recognition, targetFar: 0.01, k: 2 });
    expect(door.detection).toEqual({ ...base.detection, minFaceSize: 90 });
    expect(door.quality).toEqual(base.quality);
    expect(cameraSettings(config, config.cameras[1])).toEqual({
      detection: base.detection,
      quality: base.quality,
      recognition: base.recognition,
    });
    // The global settings are not touched by the merge.
    expect(config.recognition.k).toBe(base.recognition.k);
  });

  it('applies overrides and regions of interest live', () => {
    const after = mergeConfig(base, {
      cameras: [
        {
          ...base.cameras[0],
          overrides: { quality: { minSharpness: 50 } },
          roi: { x: 0, y: 0, width: 0.5, height: 1 },
        },
      ],
    }) as Config;
    expect(classifyChange(base, after)).toEqual({
      live: ['cameras[0].overrides', 'cameras[0].roi'],
      restartRequired: [],
    });
  });
});

describe('checkTargetFars', () => {
  it('names the camera whose target FAR (its own or the global one) has no threshold', () => {
    const config = mergeConfig(base, {
      cameras: [
        { ...base.cameras[0], id: 'door', overrides: { recognition: { targetFar: 0.01 } } },
        { ...base.cameras[0], id: 'garage', overrides: { recognition: { targetFar: 1e-7 } } },
      ],
    }) as Config;
    const asked: number[] = [];
    const thresholdFor = (far: number) => {
      asked.push(far);
      if (far < 1e-5) throw new Error(`recognition.targetFar ${far} is outside the range`);
      return 0.9;
    };
    expect(() => checkTargetFars(config, thresholdFor)).toThrow(
      'camera garage: recognition.targetFar 1e-7 is outside the range',
    );
    expect(asked).toEqual([0.01, 1e-7]);
    const global = mergeConfig(config, { recognition: { targetFar: 1e-6 } }) as Config;
    expect(() =>
      checkTargetFars(
        { ...global, cameras: [global.cameras[0], { ...global.cameras[1], overrides: {} }] },
        thresholdFor,
      ),
    ).toThrow('camera garage: recognition.targetFar 0.000001 is outside the range');
  });
});
