// Config builder shared by the capture tests.
import type { CameraConfig, SourceConfig } from '../../../runtime/capture/config.ts';

export function camera(source: SourceConfig, overrides: Partial<CameraConfig> = {}): CameraConfig {
  return {
    id: 'cam1',
    source,
    width: 640,
    height: 360,
    fps: 5,
    restart: { initialDelayMs: 100, maxDelayMs: 1000, stallTimeoutMs: 3000 },
    ...overrides,
  };
}
