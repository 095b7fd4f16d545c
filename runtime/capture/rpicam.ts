// Raspberry Pi CSI cameras through rpicam-vid (libcamera-vid before Bookworm) as an MJPEG stream.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ChildProcessSource } from './child-source.ts';
import type { CameraConfig } from './config.ts';

export const RPICAM_BINARIES = ['rpicam-vid', 'libcamera-vid'] as const;

/** The first of RPICAM_BINARIES on PATH; rpicam-vid if none is, so the spawn error names it. */
export function resolveRpicamBinary(path = process.env.PATH ?? ''): string {
  for (const name of RPICAM_BINARIES) {
    for (const dir of path.split(delimiter).filter(Boolean)) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return name;
      } catch {
        // not in this directory
      }
    }
  }
  return RPICAM_BINARIES[0];
}

export function buildRpicamArgs(config: CameraConfig): string[] {
  const { source, width, height, fps } = config;
  // biome-ignore format: option/value pairs
  return [
    '-t', '0',
    ...(source.sensorId === undefined ? [] : ['--camera', String(source.sensorId)]),
    '--codec', 'mjpeg',
    '--width', String(width),
    '--height', String(height),
    '--framerate', String(fps),
    '-n',
    // Without --flush a frame's tail waits in stdio buffers until the next frame is written.
    '--flush',
    '-o', '-',
  ];
}

export function createRpicamSource(config: CameraConfig): ChildProcessSource {
  return new ChildProcessSource(config, {
    command: () => config.source.binary ?? resolveRpicamBinary(),
    args: buildRpicamArgs(config),
    output: 'mjpeg',
    finite: false,
    lossless: false,
  });
}
