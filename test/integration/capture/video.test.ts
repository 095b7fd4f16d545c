import { spawnSync } from 'node:child_process';
import { copyFile, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RestartInfo } from '../../../runtime/capture/index.ts';
import { createFrameSource } from '../../../runtime/capture/index.ts';
import type { CaptureSource } from '../../../runtime/capture/source.ts';
import { camera } from '../../unit/capture/helpers.ts';
import { CLIP, distinctValues, nextEvent, nextFrame, tempDir, waitUntil } from './harness.ts';

const FRAME_BYTES = 640 * 360 * 3;

/** Frames ffmpeg itself produces for the clip at `fps`: what the source must hand over, no more, no less. */
function referenceFrameCount(fps: number): number {
  // biome-ignore format: option/value pairs
  const run = spawnSync('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-i', CLIP, '-map', '0:v:0', '-fps_mode', 'vfr', '-fpsmax', String(fps), '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-',
  ], { maxBuffer: 1 << 30 });
  return run.stdout.length / FRAME_BYTES;
}

describe('the fps cap', () => {
  it('only drops frames: a cap above the clip rate hands over exactly its 275 frames, no duplicates', () => {
    expect(referenceFrameCount(120)).toBe(275);
    expect(referenceFrameCount(10)).toBeLessThan(110);
  });
});

describe('video file source (real ffmpeg)', () => {
  let source: CaptureSource | undefined;
  let dir: string | undefined;

  afterEach(async () => {
    await source?.stop();
    source = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('hands over every frame of the clip in order when not realtime, then eof and null', async () => {
    source = createFrameSource(camera({ kind: 'video', path: CLIP, realtime: false }, { fps: 10 }));
    let eof = false;
    source.on('eof', () => {
      eof = true;
    });
    await source.start();
    const frames = [];
    for (let frame = await nextFrame(source, 10_000); frame; frame = await nextFrame(source, 10_000)) {
      expect([frame.camera, frame.width, frame.height, frame.rgb.length]).toEqual([
        'cam1',
        640,
        360,
        FRAME_BYTES,
      ]);
      frames.push({ seq: frame.seq, distinct: distinctValues(frame.rgb) });
    }
    expect(eof).toBe(true);
    expect(frames).toHaveLength(referenceFrameCount(10));
    expect(frames.map((f) => f.seq)).toEqual(frames.map((_, i) => i));
    expect(Math.min(...frames.map((f) => f.distinct))).toBeGreaterThan(100);
    expect(source.stats()).toEqual({ framesIn: frames.length, framesDropped: 0, restarts: 0 });
    expect(await source.next()).toBeNull();
  });

  it('stops at once while ffmpeg waits on a consumer that stopped taking frames', async () => {
    source = createFrameSource(camera({ kind: 'video', path: CLIP, realtime: false }, { fps: 30 }));
    await source.start();
    await nextFrame(source, 10_000);
    // ffmpeg is now blocked writing to a full pipe.
    await new Promise((r) => setTimeout(r, 500));
    const started = Date.now();
    await source.stop();
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('plays at the clip’s own pace when realtime', async () => {
    source = createFrameSource(camera({ kind: 'video', path: CLIP }, { fps: 10, width: 320, height: 180 }));
    await source.start();
    await nextFrame(source, 10_000);
    // -re counts ffmpeg's ~1 s of stream probing as played time and catches up with a burst: skip it.
    const warmUpEnd = Date.now() + 1000;
    let first = await nextFrame(source, 5000);
    while (Date.now() < warmUpEnd) first = await nextFrame(source, 5000);
    const started = Date.now();
    let last = first;
    while (Date.now() - started < 2000) last = await nextFrame(source, 5000);
    const rate = ((last?.seq ?? 0) - (first?.seq ?? 0)) / ((Date.now() - started) / 1000);
    expect(rate).toBeGreaterThan(8);
    expect(rate).toBeLessThan(12);
  });

  it('loops without eof', async () => {
    const onePass = referenceFrameCount(5);
    source = createFrameSource(
      camera({ kind: 'video', path: CLIP, loop: true, realtime: false }, { fps: 5, width: 160, height: 90 }),
    );
    const events: string[] = [];
    source.on('eof', () => events.push('eof'));
    source.on('restart', () => events.push('restart'));
    await source.start();
    for (let i = 0; i < onePass * 2 + 5; i++) expect(await nextFrame(source, 10_000)).not.toBeNull();
    expect(events).toEqual([]);
  });

  it('keeps going through a damaged file', async () => {
    dir = await tempDir('video');
    const damaged = join(dir, 'damaged.mp4');
    await copyFile(CLIP, damaged);
    const file = await open(damaged, 'r+');
    const { size } = await file.stat();
    await file.write(Buffer.alloc(64 * 1024, 0x5a), 0, 64 * 1024, Math.floor(size / 2));
    await file.close();
    source = createFrameSource(camera({ kind: 'video', path: damaged, realtime: false }, { fps: 5 }));
    await source.start();
    let frames = 0;
    while (await nextFrame(source, 10_000)) frames++;
    expect(frames).toBeGreaterThan(referenceFrameCount(5) / 2);
    expect(source.stats().restarts).toBe(0);
  });

  it('reports a missing file with ffmpeg’s own words and retries with growing delays', async () => {
    source = createFrameSource(
      camera(
        { kind: 'video', path: '/nonexistent/clip.mp4' },
        { restart: { initialDelayMs: 50, maxDelayMs: 400, stallTimeoutMs: 5000 } },
      ),
    );
    const restarts: RestartInfo[] = [];
    const errors: Error[] = [];
    source.on('restart', (info) => restarts.push(info));
    source.on('error', (error) => errors.push(error));
    await source.start();
    await waitUntil('four restarts', () => restarts.length >= 4, 10_000);
    expect(restarts.slice(0, 4).map((r) => [r.attempt, r.delayMs])).toEqual([
      [1, 50],
      [2, 100],
      [3, 200],
      [4, 400],
    ]);
    expect(errors[0].message).toMatch(
      /^camera cam1: ffmpeg exited with code 1; stderr: .*No such file or directory/,
    );
    expect(source.stats().lastError).toMatch(/No such file or directory/);
    const stopping = source.stop();
    expect(await source.next()).toBeNull();
    await stopping;
  });

  it('reports a binary that cannot run, without an error listener and without throwing', async () => {
    source = createFrameSource(
      camera(
        { kind: 'video', path: CLIP, binary: '/nonexistent/ffmpeg' },
        { restart: { initialDelayMs: 20, maxDelayMs: 40, stallTimeoutMs: 5000 } },
      ),
    );
    await source.start();
    await nextEvent(source, 'restart', 5000);
    await waitUntil('a second restart', () => (source?.stats().restarts ?? 0) >= 2, 5000);
    expect(source.stats().lastError).toBe('cannot run /nonexistent/ffmpeg: spawn /nonexistent/ffmpeg ENOENT');
  });
});
