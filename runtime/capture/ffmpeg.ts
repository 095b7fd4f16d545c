// Video files, RTSP, HTTP MJPEG and V4L2 cameras, all decoded by ffmpeg to raw RGB on stdout.
import { ChildProcessSource } from './child-source.ts';
import type { CameraConfig } from './config.ts';

/** Input options and -i for one ffmpeg-based source kind. */
function inputArgs(config: CameraConfig): string[] {
  const { source, width, height, fps } = config;
  switch (source.kind) {
    case 'video':
      // biome-ignore format: option/value pairs
      return [
        // -re paces reading at the video's own rate (a demo); without it ffmpeg decodes flat out and
        // the lossless slot makes the consumer set the pace (a benchmark).
        ...(source.realtime === false ? [] : ['-re']),
        ...(source.loop ? ['-stream_loop', '-1'] : []),
        '-i', String(source.path),
      ];
    case 'rtsp':
      // UDP loses packets (smeared frames) on busy Wi-Fi and does not cross NAT; TCP interleaving does.
      return ['-rtsp_transport', 'tcp', '-i', String(source.url)];
    case 'http':
      // Multipart MJPEG has no timestamps; arrival time lets the fps filter drop the right frames.
      return ['-use_wallclock_as_timestamps', '1', '-i', String(source.url)];
    case 'v4l2':
      // MJPEG is what USB cameras deliver at full frame rate over USB 2; raw YUYV is limited to low sizes.
      // biome-ignore format: option/value pairs
      return [
        '-f', 'v4l2',
        '-input_format', 'mjpeg',
        '-video_size', `${width}x${height}`,
        '-framerate', String(fps),
        '-i', String(source.device),
      ];
    default:
      throw new Error(`ffmpeg does not capture source kind ${source.kind}`);
  }
}

export function buildFfmpegArgs(config: CameraConfig): string[] {
  const { width, height, fps } = config;
  // biome-ignore format: option/value pairs
  return [
    '-nostdin', '-hide_banner', '-loglevel', 'error',
    ...inputArgs(config),
    // Only the first video stream: audio muxed into rawvideo would corrupt the frame stream.
    '-map', '0:v:0',
    '-vf', `scale=${width}:${height}`,
    // A cap, not a rate: the fps filter would also duplicate frames of a slower source (a 30 fps
    // file read at a cap of 120 became 1202 frames); vfr + fpsmax only ever drops.
    '-fps_mode', 'vfr', '-fpsmax', String(fps),
    '-f', 'rawvideo',
    '-pix_fmt', 'rgb24',
    'pipe:1',
  ];
}

export function createFfmpegSource(config: CameraConfig): ChildProcessSource {
  const { source } = config;
  const isVideo = source.kind === 'video';
  return new ChildProcessSource(config, {
    command: () => source.binary ?? 'ffmpeg',
    args: buildFfmpegArgs(config),
    output: 'rgb24',
    finite: isVideo && !source.loop,
    lossless: isVideo && source.realtime === false,
    stderrReportsProblems: true,
  });
}
