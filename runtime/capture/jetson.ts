// Jetson CSI cameras through GStreamer's nvarguscamerasrc (the Argus ISP), as raw RGB on stdout.
import { ChildProcessSource } from './child-source.ts';
import type { CameraConfig } from './config.ts';

/** GStreamer caps want a fraction. */
function fraction(fps: number): string {
  return Number.isInteger(fps) ? `${fps}/1` : `${Math.round(fps * 1000)}/1000`;
}

/**
 * Raw RGB rather than jpegenc: the Jetson's CPU is the scarce part, a JPEG round trip costs it an
 * encode and a decode per frame, and fixed-size frames reuse ffmpeg's splitter. nvvidconv (hardware)
 * cannot emit 3-byte RGB, so it converts NVMM NV12 to RGBx and videoconvert drops the padding byte.
 */
export function buildGstArgs(config: CameraConfig): string[] {
  const { source, width, height, fps } = config;
  // One element (with its properties) a row; gst-launch links them with `!`.
  const pipeline = [
    ['nvarguscamerasrc', `sensor-id=${source.sensorId ?? 0}`],
    [`video/x-raw(memory:NVMM),width=${width},height=${height},framerate=${fraction(fps)},format=NV12`],
    ['nvvidconv'],
    ['video/x-raw,format=RGBx'],
    ['videoconvert'],
    ['video/x-raw,format=RGB'],
    ['fdsink', 'fd=1'],
  ];
  // -q: otherwise gst-launch prints its progress to stdout, into the frame stream.
  return ['-q', ...pipeline.flatMap((element, i) => (i === 0 ? element : ['!', ...element]))];
}

export function createJetsonSource(config: CameraConfig): ChildProcessSource {
  return new ChildProcessSource(config, {
    command: () => config.source.binary ?? 'gst-launch-1.0',
    args: buildGstArgs(config),
    output: 'rgb24',
    finite: false,
    lossless: false,
  });
}
