import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCameraConfig } from '../../../runtime/capture/config.ts';
import { buildFfmpegArgs } from '../../../runtime/capture/ffmpeg.ts';
import { createFrameSource } from '../../../runtime/capture/index.ts';
import { buildGstArgs } from '../../../runtime/capture/jetson.ts';
import { buildRpicamArgs, resolveRpicamBinary } from '../../../runtime/capture/rpicam.ts';
import { camera } from './helpers.ts';

const QUIET = ['-nostdin', '-hide_banner', '-loglevel', 'error'];
const OUTPUT = [
  '-map',
  '0:v:0',
  '-vf',
  'scale=640:360',
  '-fps_mode',
  'vfr',
  '-fpsmax',
  '5',
  '-f',
  'rawvideo',
  '-pix_fmt',
  'rgb24',
  'pipe:1',
];

describe('buildFfmpegArgs', () => {
  it('paces a video file with -re by default and loops on request', () => {
    expect(buildFfmpegArgs(camera({ kind: 'video', path: '/v.mp4', loop: true }))).toEqual([
      ...QUIET,
      ...['-re', '-stream_loop', '-1', '-i', '/v.mp4'],
      ...OUTPUT,
    ]);
  });

  it('reads a video file flat out when not realtime', () => {
    expect(buildFfmpegArgs(camera({ kind: 'video', path: '/v.mp4', realtime: false }))).toEqual([
      ...QUIET,
      ...['-i', '/v.mp4'],
      ...OUTPUT,
    ]);
  });

  it('uses TCP for RTSP', () => {
    expect(buildFfmpegArgs(camera({ kind: 'rtsp', url: 'rtsp://h/s' }))).toEqual([
      ...QUIET,
      ...['-rtsp_transport', 'tcp', '-i', 'rtsp://h/s'],
      ...OUTPUT,
    ]);
  });

  it('timestamps HTTP MJPEG by arrival', () => {
    expect(buildFfmpegArgs(camera({ kind: 'http', url: 'http://h/mjpg' }))).toEqual([
      ...QUIET,
      ...['-use_wallclock_as_timestamps', '1', '-i', 'http://h/mjpg'],
      ...OUTPUT,
    ]);
  });

  it('asks a V4L2 camera for MJPEG at the configured size and rate', () => {
    const args = buildFfmpegArgs(
      camera({ kind: 'v4l2', device: '/dev/video2' }, { width: 1280, height: 720, fps: 7.5 }),
    );
    expect(args).toEqual([
      ...QUIET,
      ...[
        '-f',
        'v4l2',
        '-input_format',
        'mjpeg',
        '-video_size',
        '1280x720',
        '-framerate',
        '7.5',
        '-i',
        '/dev/video2',
      ],
      ...['-map', '0:v:0', '-vf', 'scale=1280:720', '-fps_mode', 'vfr', '-fpsmax', '7.5'],
      ...['-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
    ]);
  });

  it('refuses kinds ffmpeg does not capture', () => {
    expect(() => buildFfmpegArgs(camera({ kind: 'rpicam' }))).toThrow(/rpicam/);
  });
});

describe('buildRpicamArgs', () => {
  it('streams MJPEG to stdout forever without preview', () => {
    expect(buildRpicamArgs(camera({ kind: 'rpicam' }, { width: 1280, height: 720, fps: 15 }))).toEqual([
      ...['-t', '0', '--codec', 'mjpeg', '--width', '1280', '--height', '720', '--framerate', '15'],
      ...['-n', '--flush', '-o', '-'],
    ]);
  });

  it('selects the camera by sensorId', () => {
    expect(buildRpicamArgs(camera({ kind: 'rpicam', sensorId: 1 })).slice(0, 4)).toEqual([
      '-t',
      '0',
      '--camera',
      '1',
    ]);
  });
});

describe('resolveRpicamBinary', () => {
  it('prefers rpicam-vid, falls back to libcamera-vid, defaults to rpicam-vid', async () => {
    const [a, b] = [await mkdtemp(join(tmpdir(), 'rpicam-a-')), await mkdtemp(join(tmpdir(), 'rpicam-b-'))];
    try {
      expect(resolveRpicamBinary(`${a}:${b}`)).toBe('rpicam-vid');
      await writeFile(join(b, 'libcamera-vid'), '#!/bin/sh\n');
      // Present but not executable does not count.
      expect(resolveRpicamBinary(`${a}:${b}`)).toBe('rpicam-vid');
      await chmod(join(b, 'libcamera-vid'), 0o755);
      expect(resolveRpicamBinary(`${a}:${b}`)).toBe('libcamera-vid');
      await writeFile(join(b, 'rpicam-vid'), '#!/bin/sh\n', { mode: 0o755 });
      expect(resolveRpicamBinary(`${a}:${b}`)).toBe('rpicam-vid');
    } finally {
      await rm(a, { recursive: true });
      await rm(b, { recursive: true });
    }
  });
});

describe('buildGstArgs', () => {
  it('converts NVMM frames to packed RGB on stdout', () => {
    expect(
      buildGstArgs(camera({ kind: 'jetson-csi', sensorId: 1 }, { width: 1280, height: 720, fps: 30 })),
    ).toEqual(
      // The command line as typed; no argument holds a space.
      (
        '-q nvarguscamerasrc sensor-id=1 ' +
        '! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1,format=NV12 ' +
        '! nvvidconv ! video/x-raw,format=RGBx ! videoconvert ! video/x-raw,format=RGB ! fdsink fd=1'
      ).split(' '),
    );
  });

  it('writes a fractional rate as a GStreamer fraction', () => {
    expect(buildGstArgs(camera({ kind: 'jetson-csi' }, { fps: 7.5 }))[4]).toContain('framerate=7500/1000');
  });
});

describe('checkCameraConfig', () => {
  it('accepts a complete config', () => {
    expect(() => checkCameraConfig(camera({ kind: 'rtsp', url: 'rtsp://h/s' }))).not.toThrow();
  });

  it('lists every problem at once', () => {
    const bad = camera(
      { kind: 'jetson-csi' },
      { width: 642, height: 0, fps: 0, restart: { initialDelayMs: 0, maxDelayMs: -1, stallTimeoutMs: 0 } },
    );
    expect(() => checkCameraConfig(bad)).toThrow(
      'camera cam1: height must be a positive integer; jetson-csi width must be a multiple of 4; fps must be positive; ' +
        'restart.initialDelayMs must be positive; restart.maxDelayMs must be >= initialDelayMs; ' +
        'restart.stallTimeoutMs must be positive',
    );
  });

  it('requires the location each kind reads from', () => {
    expect(() => checkCameraConfig(camera({ kind: 'video' }))).toThrow(
      'source.path is required for kind video',
    );
    expect(() => checkCameraConfig(camera({ kind: 'http' }))).toThrow('source.url is required for kind http');
    expect(() => checkCameraConfig(camera({ kind: 'v4l2' }))).toThrow(
      'source.device is required for kind v4l2',
    );
    expect(() => checkCameraConfig(camera({ kind: 'usb' as 'v4l2', device: '/dev/video0' }))).toThrow(
      'unknown source kind "usb"',
    );
  });

  it('is enforced by createFrameSource before anything runs', () => {
    expect(() => createFrameSource(camera({ kind: 'images' }))).toThrow('source.path is required');
  });
});
