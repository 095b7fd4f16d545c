import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  decodeImage,
  frameToLetterbox,
  ImageDecodeError,
  letterbox,
  letterboxToFrame,
  MAX_DECODE_PIXELS,
  type RgbImage,
} from '../../../runtime/vision/image.ts';
import type { Point } from '../../../runtime/vision/types.ts';
import { FACES_DIR } from '../../helpers/paths.ts';

const MIRANDA = join(FACES_DIR, 'face_recognition_examples', 'misc', 'lin-manuel-miranda.png');

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const buf = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) buf.set(rgb, i * 3);
  return { rgb: buf, width, height };
}

async function encoded(format: 'png' | 'jpeg'): Promise<Buffer> {
  const { rgb, width, height } = solid(64, 48, [200, 30, 90]);
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .toFormat(format)
    .toBuffer();
}

describe('decodeImage', () => {
  it('decodes a real PNG to packed RGB', async () => {
    expect(existsSync(MIRANDA)).toBe(true);
    const img = await decodeImage(MIRANDA);
    expect([img.width, img.height]).toEqual([704, 612]);
    expect(img.rgb.length).toBe(704 * 612 * 3);
    // A photo, not a blank: the channels vary.
    expect(new Set(img.rgb.subarray(0, 30_000)).size).toBeGreaterThan(50);
  });

  it('drops alpha and decodes from a buffer', async () => {
    const png = await sharp({
      create: { width: 5, height: 4, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 0.5 } },
    })
      .png()
      .toBuffer();
    const img = await decodeImage(png);
    expect([img.width, img.height, img.rgb.length]).toEqual([5, 4, 60]);
    expect([...img.rgb.subarray(0, 3)]).toEqual([10, 20, 30]);
  });

  it('applies the EXIF orientation', async () => {
    // 40x20, red on the left half; orientation 6 means "rotate 90 degrees clockwise to display".
    const raw = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++) for (let x = 0; x < 20; x++) raw[(y * 40 + x) * 3] = 255;
    const jpeg = await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const img = await decodeImage(jpeg);
    expect([img.width, img.height]).toEqual([20, 40]);
    // The left half of the stored image becomes the top half of the displayed one.
    expect(img.rgb[(5 * 20 + 10) * 3]).toBeGreaterThan(200);
    expect(img.rgb[(35 * 20 + 10) * 3]).toBeLessThan(50);
  });

  it.each([
    ['empty buffer', Buffer.alloc(0)],
    ['random bytes', Buffer.from(Array.from({ length: 500 }, (_, i) => (i * 7919) % 256))],
    ['text', Buffer.from('definitely not an image')],
  ])('rejects %s with ImageDecodeError', async (_, input) => {
    const err = await decodeImage(input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as Error).message).toContain(`buffer of ${input.length} bytes`);
    expect((err as Error).cause).toBeDefined();
  });

  it.each(['png', 'jpeg'] as const)('rejects a truncated %s', async (format) => {
    const full = await encoded(format);
    const truncated = full.subarray(0, Math.floor(full.length / 2));
    const err = await decodeImage(truncated).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as Error).message).toMatch(/cannot decode image \(buffer of \d+ bytes\): \S/);
  });

  it('rejects a missing file, naming it', async () => {
    const err = await decodeImage('/nonexistent/face.jpg').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as Error).message).toContain('file /nonexistent/face.jpg');
  });
});

describe('letterbox', () => {
  it('centres a landscape frame with padding above and below', async () => {
    const { tensor, transform } = await letterbox(solid(640, 360, [255, 0, 127]), 256);
    expect(tensor.dims).toEqual([1, 3, 256, 256]);
    expect(tensor.data).toHaveLength(3 * 256 * 256);
    expect(transform).toEqual({ size: 256, scaleX: 0.4, scaleY: 0.4, padX: 0, padY: 56 });
    const at = (c: number, x: number, y: number) => tensor.data[c * 256 * 256 + y * 256 + x];
    // Padding is black (-1 in every plane); the image rows are the colour, planes in RGB order.
    for (const y of [0, 55, 200, 255])
      expect([at(0, 128, y), at(1, 128, y), at(2, 128, y)]).toEqual([-1, -1, -1]);
    for (const y of [56, 128, 199]) {
      expect(at(0, 0, y)).toBeCloseTo(1, 6);
      expect(at(1, 128, y)).toBeCloseTo(-1, 6);
      expect(at(2, 255, y)).toBeCloseTo(127 / 127.5 - 1, 6);
    }
  });

  it('centres a portrait frame with padding left and right, keeping both axis scales exact', async () => {
    // 612 x 704 * (256 / 704) = 222.5..., rounds to 223 wide: pads 16 left, 17 right.
    const { tensor, transform } = await letterbox(solid(612, 704, [255, 255, 255]), 256);
    expect(transform.padX).toBe(16);
    expect(transform.padY).toBe(0);
    expect(transform.scaleX).toBeCloseTo(223 / 612, 12);
    expect(transform.scaleY).toBeCloseTo(256 / 704, 12);
    const row = 100 * 256;
    expect(tensor.data[row + 15]).toBe(-1);
    expect(tensor.data[row + 16]).toBeCloseTo(1, 6);
    expect(tensor.data[row + 16 + 222]).toBeCloseTo(1, 6);
    expect(tensor.data[row + 16 + 223]).toBe(-1);
    // The frame's corners map onto the edges of the resized image.
    expect(letterboxToFrame(transform, [16, 0])).toEqual([0, 0]);
    const far = letterboxToFrame(transform, [16 + 223, 256]);
    expect(far[0]).toBeCloseTo(612, 9);
    expect(far[1]).toBeCloseTo(704, 9);
  });

  it.each([
    ['landscape', 1280, 720],
    ['portrait', 480, 854],
    ['square', 300, 300],
    ['odd', 704, 612],
  ])('round-trips coordinates for a %s frame', async (_, width, height) => {
    const { transform } = await letterbox(solid(width, height, [0, 0, 0]), 256);
    const points: Point[] = [
      [0, 0],
      [width, height],
      [width / 3, height * 0.7],
      [17.25, 3.5],
    ];
    for (const p of points) {
      const q = letterboxToFrame(transform, frameToLetterbox(transform, p));
      expect(q[0]).toBeCloseTo(p[0], 9);
      expect(q[1]).toBeCloseTo(p[1], 9);
      const [ix, iy] = frameToLetterbox(transform, p);
      expect(ix).toBeGreaterThanOrEqual(0);
      expect(iy).toBeGreaterThanOrEqual(0);
      expect(ix).toBeLessThanOrEqual(256 + 1e-9);
      expect(iy).toBeLessThanOrEqual(256 + 1e-9);
    }
  });

  it.each([
    ['landscape', 960, 540, [700, 130] as Point],
    ['portrait', 540, 960, [131, 703] as Point],
  ])(
    'puts image content where the %s transform says (sharp resize geometry)',
    async (_, width, height, centre) => {
      // A bright 12x12 square; its centroid in the detector input, mapped back, must land on its centre.
      const img = solid(width, height, [0, 0, 0]);
      for (let y = centre[1] - 6; y < centre[1] + 6; y++) {
        img.rgb.fill(255, (y * width + centre[0] - 6) * 3, (y * width + centre[0] + 6) * 3);
      }
      const { tensor, transform } = await letterbox(img, 256);
      let sx = 0;
      let sy = 0;
      let sw = 0;
      for (let y = 0; y < 256; y++) {
        for (let x = 0; x < 256; x++) {
          const w = tensor.data[y * 256 + x] + 1; // black (-1) weighs nothing
          sx += w * (x + 0.5);
          sy += w * (y + 0.5);
          sw += w;
        }
      }
      const [fx, fy] = letterboxToFrame(transform, [sx / sw, sy / sw]);
      // Measured ~0.02 px; a half-pixel convention slip would be ~0.8 px here.
      expect(Math.abs(fx - centre[0])).toBeLessThan(0.1);
      expect(Math.abs(fy - centre[1])).toBeLessThan(0.1);
    },
  );
});

/**
 * A PNG whose header says `size` x `size` grey pixels, with only its first row of data: the header is
 * all a decoder needs to learn the size, and all facegate may read before refusing it.
 */
function pngClaiming(size: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(size + 1))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('decodeImage and decompression bombs', () => {
  it('refuses an image over MAX_DECODE_PIXELS from its header, before decoding it', async () => {
    const bomb = pngClaiming(16383);
    expect(bomb.length).toBeLessThan(1024);
    const before = process.memoryUsage().rss;
    await expect(decodeImage(bomb)).rejects.toThrow(
      new ImageDecodeError(
        `image (buffer of ${bomb.length} bytes) is 16383x16383 pixels, more than the ${MAX_DECODE_PIXELS} facegate decodes`,
      ),
    );
    // Decoding it would have taken 268 MB for the pixels alone.
    expect(process.memoryUsage().rss - before).toBeLessThan(50 * 1024 * 1024);
  });
});
