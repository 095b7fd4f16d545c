// The capture stage: createFrameSource() turns a camera's config into a running frame source.
import { type CameraConfig, checkCameraConfig } from './config.ts';
import { createFfmpegSource } from './ffmpeg.ts';
import { ImageSource } from './images.ts';
import { createJetsonSource } from './jetson.ts';
import { createRpicamSource } from './rpicam.ts';
import type { CaptureSource } from './source.ts';

export type { CameraConfig, RestartPolicy, SourceConfig, SourceKind } from './config.ts';
export { checkCameraConfig, SOURCE_KINDS } from './config.ts';
export { buildFfmpegArgs } from './ffmpeg.ts';
export { buildGstArgs } from './jetson.ts';
export { buildRpicamArgs } from './rpicam.ts';
export type { CaptureSource, RestartInfo, SourceEvents } from './source.ts';
export type { Frame, FrameSource, SourceStats } from './types.ts';

/** Throws on an invalid config; never starts anything until start(). */
export function createFrameSource(config: CameraConfig): CaptureSource {
  checkCameraConfig(config);
  switch (config.source.kind) {
    case 'images':
      return new ImageSource(config);
    case 'rpicam':
      return createRpicamSource(config);
    case 'jetson-csi':
      return createJetsonSource(config);
    default:
      return createFfmpegSource(config);
  }
}
