// rpicam and jetson-csi need camera hardware; here their programs are stood in for by scripts that
// print a real encoder's recorded output (test/fixtures/capture/README.md) and then exit or hang.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFrameSource, type RestartInfo } from '../../../runtime/capture/index.ts';
import { buildGstArgs } from '../../../runtime/capture/jetson.ts';
import { buildRpicamArgs } from '../../../runtime/capture/rpicam.ts';
import type { CaptureSource } from '../../../runtime/capture/source.ts';
import { MjpegSplitter } from '../../../runtime/capture/splitters.ts';
import type { Frame } from '../../../runtime/capture/types.ts';
import { camera } from '../../unit/capture/helpers.ts';
import { distinctValues, fakeCamera, nextEvent, nextFrame, tempDir } from './harness.ts';

const FIXTURES = new URL('../../fixtures/capture/', import.meta.url).pathname;
const RAW = readFileSync(join(FIXTURES, 'jetson-64x36.rgb'));
const RAW_FRAME = 64 * 36 * 3;
const RAW_FRAMES = Array.from({ length: RAW.length / RAW_FRAME }, (_, i) =>
  RAW.subarray(i * RAW_FRAME, (i + 1) * RAW_FRAME),
);
const JPEGS: Buffer[] = [];
new MjpegSplitter(
  (jpeg) => JPEGS.push(jpeg),
  () => undefined,
).write(readFileSync(join(FIXTURES, 'rpicam-640x360.mjpeg')));

const FAST_RESTART = { initialDelayMs: 100, maxDelayMs: 400, stallTimeoutMs: 1500 };
// A camera's pace: a consumer that keeps up sees every frame.
const PACED = 0.1;

let dir: string;
let source: CaptureSource | undefined;

beforeEach(async () => {
  dir = await tempDir('camera');
});

afterEach(async () => {
  await source?.stop();
  source = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** Frames until none comes for idleMs. */
async function drain(src: CaptureSource, idleMs: number): Promise<Frame[]> {
  const frames: Frame[] = [];
  for (;;) {
    const frame = await nextFrame(src, idleMs).catch(() => null);
    if (!frame) return frames;
    frames.push(frame);
  }
}

describe('rpicam source', () => {
  it('decodes the MJPEG stream of rpicam-vid, called with the built arguments', async () => {
    const fake = await fakeCamera(dir, 'rpicam-vid', JPEGS, { end: 'hang', interval: PACED });
    const config = camera({ kind: 'rpicam', binary: fake.path }, { fps: 10, restart: FAST_RESTART });
    source = createFrameSource(config);
    await source.start();
    for (const [i, jpeg] of JPEGS.entries()) {
      const frame = await nextFrame(source, 5000);
      expect([frame?.seq, frame?.width, frame?.height]).toEqual([i, 640, 360]);
      expect(frame?.rgb.equals(await sharp(jpeg).raw().toBuffer())).toBe(true);
    }
    expect(source.stats()).toEqual({ framesIn: JPEGS.length, framesDropped: 0, restarts: 0 });
    expect((await readFile(fake.argsFile, 'utf8')).trim().split('\n')).toEqual(buildRpicamArgs(config));
  });

  it('falls back to libcamera-vid when that is the binary on PATH', async () => {
    await fakeCamera(dir, 'libcamera-vid', JPEGS, { end: 'hang', interval: PACED });
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    try {
      source = createFrameSource(camera({ kind: 'rpicam' }, { restart: FAST_RESTART }));
      await source.start();
      expect((await nextFrame(source, 5000))?.width).toBe(640);
    } finally {
      process.env.PATH = path;
    }
  });

  it('restarts a camera program that exits, with growing delays, and frames resume each time', async () => {
    const fake = await fakeCamera(dir, 'rpicam-vid', JPEGS.slice(0, 3), { end: 'exit', interval: PACED });
    source = createFrameSource(camera({ kind: 'rpicam', binary: fake.path }, { restart: FAST_RESTART }));
    const restarts: RestartInfo[] = [];
    source.on('restart', (info) => restarts.push(info));
    await source.start();
    const runs: number[] = [];
    while (restarts.length < 3) {
      const frame = await nextFrame(source, 5000);
      runs[restarts.length] = (runs[restarts.length] ?? 0) + (frame ? 1 : 0);
    }
    expect(runs.slice(0, 3)).toEqual([3, 3, 3]);
    expect(restarts.map((r) => [r.attempt, r.delayMs])).toEqual([
      [1, 100],
      [2, 200],
      [3, 400],
    ]);
    expect(restarts[0].reason).toBe(`${fake.path} exited with code 0`);
  });

  it('restarts a camera program that hangs, after the stall timeout', async () => {
    const fake = await fakeCamera(dir, 'rpicam-vid', JPEGS, { end: 'hang', interval: PACED });
    source = createFrameSource(camera({ kind: 'rpicam', binary: fake.path }, { restart: FAST_RESTART }));
    await source.start();
    for (const i of JPEGS.keys()) expect((await nextFrame(source, 5000))?.seq).toBe(i);
    const [info] = await nextEvent(source, 'restart', 5000);
    expect(info.reason).toBe('stalled: no frame for 1500 ms');
    expect((await nextFrame(source, 5000))?.seq).toBe(JPEGS.length);
  });

  it('kills a camera program that ignores SIGTERM on stop', async () => {
    const fake = await fakeCamera(dir, 'rpicam-vid', JPEGS.slice(0, 1), {
      end: 'hang',
      interval: 0,
      ignoreSigterm: true,
    });
    source = createFrameSource(camera({ kind: 'rpicam', binary: fake.path }, { restart: FAST_RESTART }));
    await source.start();
    await nextFrame(source, 5000);
    const pending = source.next();
    const started = Date.now();
    await source.stop();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(await pending).toBeNull();
    const stillThere = spawnSync('pgrep', ['-f', fake.path]);
    expect(stillThere.stdout.toString()).toBe('');
  });

  it('reports and skips a truncated frame and one that does not decode, and keeps the rest', async () => {
    const cut = JPEGS[2].subarray(0, JPEGS[2].length / 2);
    // Sound marker structure, broken picture: the entropy-coded data ends early.
    const sos = JPEGS[5].indexOf(Buffer.from([0xff, 0xda]));
    const undecodable = Buffer.concat([JPEGS[5].subarray(0, sos + 200), Buffer.from([0xff, 0xd9])]);
    const damaged = [...JPEGS.slice(0, 2), cut, ...JPEGS.slice(3, 5), undecodable, ...JPEGS.slice(6)];
    const fake = await fakeCamera(dir, 'rpicam-vid', damaged, { end: 'hang', interval: PACED });
    source = createFrameSource(camera({ kind: 'rpicam', binary: fake.path }, { restart: FAST_RESTART }));
    const errors: string[] = [];
    source.on('error', (error) => errors.push(error.message));
    await source.start();
    const frames = await drain(source, 1000);
    expect(frames.map((f) => f.seq)).toEqual([0, 1, 2, 3, 5, 6, 7, 8]);
    expect(frames.every((f) => f.width === 640 && distinctValues(f.rgb) > 100)).toBe(true);
    expect(errors[0]).toBe('camera cam1: corrupt MJPEG data skipped: frame cut short by the next SOI');
    expect(errors[1]).toMatch(/^camera cam1: corrupt JPEG frame 4 skipped: .+/);
    expect(source.stats().restarts).toBe(0);
  });
});

describe('jetson-csi source', () => {
  it('cuts the raw RGB stream of gst-launch into exact frames, called with the built arguments', async () => {
    const fake = await fakeCamera(dir, 'gst-launch-1.0', RAW_FRAMES, { end: 'hang', interval: PACED });
    const config = camera(
      { kind: 'jetson-csi', binary: fake.path },
      { width: 64, height: 36, restart: FAST_RESTART },
    );
    source = createFrameSource(config);
    await source.start();
    for (const [i, raw] of RAW_FRAMES.entries()) {
      const frame = await nextFrame(source, 5000);
      expect([frame?.seq, frame?.width, frame?.height]).toEqual([i, 64, 36]);
      expect(frame?.rgb.equals(raw)).toBe(true);
    }
    expect((await readFile(fake.argsFile, 'utf8')).trim().split('\n')).toEqual(buildGstArgs(config));
  });

  it('runs the built pipeline in the real gst-launch-1.0 with the Jetson elements swapped for stock ones', async () => {
    const wrapper = join(FIXTURES, 'gst-launch-jetsonless.sh');
    source = createFrameSource(
      camera(
        { kind: 'jetson-csi', binary: wrapper },
        { width: 96, height: 54, fps: 15, restart: FAST_RESTART },
      ),
    );
    await source.start();
    const frame = await nextFrame(source, 10_000);
    expect([frame?.width, frame?.height, frame?.rgb.length]).toEqual([96, 54, 96 * 54 * 3]);
    // SMPTE bars, first row: white, then yellow from x = 14.
    const pixel = (x: number) => [...(frame?.rgb.subarray(x * 3, x * 3 + 3) ?? [])];
    expect(pixel(0).every((v) => v > 240)).toBe(true);
    const [r, g, b] = pixel(20);
    expect([r > 240, g > 240, b < 16]).toEqual([true, true, true]);
    expect(source.stats().restarts).toBe(0);
  });

  it('counts what a slow consumer misses and never holds more than one frame', async () => {
    const fake = await fakeCamera(dir, 'gst-launch-1.0', RAW_FRAMES, {
      end: 'hang',
      interval: 0,
      repeat: 100,
    });
    source = createFrameSource(camera({ kind: 'jetson-csi', binary: fake.path }, { width: 64, height: 36 }));
    await source.start();
    let taken = 0;
    while (source.stats().framesIn < RAW_FRAMES.length * 100) {
      await nextFrame(source, 5000);
      taken += 1;
      await new Promise((r) => setTimeout(r, 20));
    }
    const stats = source.stats();
    expect(stats.framesDropped).toBeGreaterThan(stats.framesIn / 2);
    // Every frame read was taken or overwritten, but for at most one waiting in the slot.
    expect(stats.framesIn - stats.framesDropped - taken).toBeGreaterThanOrEqual(0);
    expect(stats.framesIn - stats.framesDropped - taken).toBeLessThanOrEqual(1);
  });
});
