// A camera's effective settings: its overrides merged over the global detection, quality and recognition
// settings, so one door can ask more (a lower target FAR, larger faces) than another.
import { mergeConfig } from './merge.ts';
import type { CameraConfig, Config } from './schema.ts';

export type CameraSettings = Pick<Config, 'detection' | 'quality' | 'recognition'>;

export function cameraSettings(config: Config, camera: CameraConfig): CameraSettings {
  const { detection, quality, recognition } = config;
  return mergeConfig({ detection, quality, recognition }, camera.overrides ?? {}) as CameraSettings;
}

/**
 * Throws, naming the camera, when a camera's recognition.targetFar (its own or the global one) has no
 * threshold: `thresholdFor` (the running embedder's) refuses targets outside its calibrated range.
 */
export function checkTargetFars(config: Config, thresholdFor: (targetFar: number) => number): void {
  for (const camera of config.cameras) {
    const { targetFar } = cameraSettings(config, camera).recognition;
    try {
      thresholdFor(targetFar);
    } catch (e) {
      throw new Error(`camera ${camera.id}: ${(e as Error).message}`);
    }
  }
}
