import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createFrameSource } from '../../../runtime/capture/index.ts';
import type { CaptureSource } from '../../../runtime/capture/source.ts';
import { FACES_DIR } from '../../helpers/paths.ts';
import { camera } from '../../unit/capture/helpers.ts';
import { distinctValues, nextEvent, nextFrame, tempDir, waitUntil } from './harness.ts';

const PHOTOS = join(FACES_DIR, 'face_recognition_examples', 'misc');

describe('images source', () => {
  let dir: string;
  let source: CaptureSource | undefined;
  // Expected frame sizes in folder order, the truncated file left out.
  const expected: [number, number][] = [];

  beforeAll(async () => {
    dir = await tempDir('images');
    // Mixed formats and aspects, written here from the shared photos (nothing copied into the repo).
    await sharp(join(PHOTOS, 'obama.jpg')).resize(800).jpeg().toFile(join(dir, 'a.jpg'));
    await sharp(join(PHOTOS, 'biden.jpg')).resize(300, 500).png().toFile(join(dir, 'b.png'));
    const truncated = await sharp(join(PHOTOS, 'two_people.jpg')).jpeg().toBuffer();
    await writeFile(join(dir, 'c.jpg'), truncated.subarray(0, truncated.length / 2));
    await sharp(join(PHOTOS, 'obama_small.jpg')).jpeg().toFile(join(dir, 'd.JPEG'));
    await writeFile(join(dir, 'notes.txt'), 'not an image');
    for (const name of ['a.jpg', 'b.png', 'd.JPEG']) {
      const { width = 0, height = 0 } = await sharp(join(dir, name)).metadata();
      const scale = Math.min(1, 640 / width, 360 / height);
      expected.push([Math.round(width * scale), Math.round(height * scale)]);
    }
  });

  afterEach(async () => {
    await source?.stop();
    source = undefined;
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('hands over each image once, fitted inside the frame size, skipping and reporting a corrupt one', async () => {
    source = createFrameSource(camera({ kind: 'images', path: dir, loop: false, realtime: false }));
    const errors: string[] = [];
    source.on('error', (error) => errors.push(error.message));
    await source.start();
    const frames = [];
    for (let frame = await nextFrame(source, 10_000); frame; frame = await nextFrame(source, 10_000)) {
      expect(frame.rgb.length).toBe(frame.width * frame.height * 3);
      expect(distinctValues(frame.rgb)).toBeGreaterThan(100);
      frames.push(frame);
    }
    expect(frames.map((f) => [f.width, f.height])).toEqual(expected);
    expect(frames.map((f) => f.seq)).toEqual([0, 1, 2]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^camera cam1: image .*c\.jpg skipped: .*(premature end|truncated)/i);
    expect(source.stats()).toMatchObject({ framesIn: 3, framesDropped: 0, restarts: 0 });
    expect(source.stats().lastError).toMatch(/c\.jpg skipped/);
  });

  it('matches what sharp decodes, pixel for pixel', async () => {
    source = createFrameSource(
      camera({ kind: 'images', path: join(dir, 'b.png'), loop: false, realtime: false }),
    );
    await source.start();
    const frame = await nextFrame(source, 10_000);
    const png = await sharp(await readFile(join(dir, 'b.png')))
      .resize(640, 360, { fit: 'inside' })
      .removeAlpha()
      .raw()
      .toBuffer();
    expect(frame?.rgb.equals(png)).toBe(true);
  });

  it('loops at the fps cap, newest frame winning for a slow consumer', async () => {
    source = createFrameSource(camera({ kind: 'images', path: dir }, { fps: 20, width: 160, height: 160 }));
    source.on('error', () => undefined);
    await source.start();
    const first = await nextFrame(source, 10_000);
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 1500));
    const stats = source.stats();
    const rate = (stats.framesIn - 1 - (first?.seq ?? 0)) / ((Date.now() - started) / 1000);
    expect(rate).toBeGreaterThan(14);
    expect(rate).toBeLessThan(22);
    // The consumer took one frame in 1.5 s; all but the newest were overwritten.
    expect(stats.framesDropped).toBe(stats.framesIn - 2);
    expect((await nextFrame(source, 1000))?.seq).toBeGreaterThanOrEqual(stats.framesIn - 1);
  });

  it('retries with backoff while the folder has nothing decodable, and picks up images added later', async () => {
    const empty = await tempDir('images-empty');
    try {
      source = createFrameSource(
        camera(
          { kind: 'images', path: empty },
          { restart: { initialDelayMs: 50, maxDelayMs: 200, stallTimeoutMs: 1000 } },
        ),
      );
      await source.start();
      const [info] = await nextEvent(source, 'restart', 5000);
      expect(info).toEqual({ attempt: 1, delayMs: 50, reason: `no decodable image in ${empty}` });
      await waitUntil('three restarts', () => (source?.stats().restarts ?? 0) >= 3, 5000);
      await sharp(join(PHOTOS, 'obama_small.jpg')).toFile(join(empty, 'late.jpg'));
      const frame = await nextFrame(source, 5000);
      expect(frame?.width).toBeGreaterThan(0);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
