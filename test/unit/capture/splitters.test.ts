import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { MjpegSplitter, RawFrameSplitter } from '../../../runtime/capture/splitters.ts';
import { DOOR_CLIP } from '../../helpers/paths.ts';

const CLIP = DOOR_CLIP;
const FIXTURE = new URL('../../fixtures/capture/rpicam-640x360.mjpeg', import.meta.url);

interface Split {
  frames: Buffer[];
  corrupt: string[];
}

function split(stream: Buffer, chunkSizes: (i: number) => number, maxFrameBytes?: number): Split {
  const out: Split = { frames: [], corrupt: [] };
  const splitter = new MjpegSplitter(
    (jpeg) => out.frames.push(jpeg),
    (reason) => out.corrupt.push(reason),
    maxFrameBytes,
  );
  for (let offset = 0, i = 0; offset < stream.length; i++) {
    const size = chunkSizes(i);
    splitter.write(stream.subarray(offset, offset + size));
    offset += size;
  }
  return out;
}

const whole = (stream: Buffer) => split(stream, () => stream.length);
const bytewise = (stream: Buffer) => split(stream, () => 1);

/** Deterministic pseudo-random chunk sizes 1..max. */
function jagged(max: number): (i: number) => number {
  let state = 12345;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return 1 + (state % max);
  };
}

function segment(marker: number, payload: Buffer): Buffer {
  const length = payload.length + 2;
  return Buffer.concat([Buffer.from([0xff, marker, length >> 8, length & 0xff]), payload]);
}

/** Inserts segments right after a JPEG's SOI. */
function withSegments(jpeg: Buffer, ...segments: Buffer[]): Buffer {
  return Buffer.concat([jpeg.subarray(0, 2), ...segments, jpeg.subarray(2)]);
}

/** An APP1 EXIF segment whose IFD1 carries `thumbnail` (a complete JPEG, SOI..EOI) as its thumbnail. */
function exifWithThumbnail(thumbnail: Buffer): Buffer {
  const tiff = Buffer.alloc(8 + 6 + 30);
  tiff.write('II*\0', 0, 'latin1');
  tiff.writeUInt32LE(8, 4); // IFD0 at 8
  tiff.writeUInt16LE(0, 8); // IFD0: no entries
  tiff.writeUInt32LE(14, 10); // next IFD (IFD1) at 14
  tiff.writeUInt16LE(2, 14); // IFD1: two entries
  const entry = (at: number, tag: number, value: number) => {
    tiff.writeUInt16LE(tag, at);
    tiff.writeUInt16LE(4, at + 2); // LONG
    tiff.writeUInt32LE(1, at + 4);
    tiff.writeUInt32LE(value, at + 8);
  };
  entry(16, 0x0201, tiff.length); // JPEGInterchangeFormat: thumbnail right after the IFDs
  entry(28, 0x0202, thumbnail.length); // JPEGInterchangeFormatLength
  tiff.writeUInt32LE(0, 40); // no IFD2
  return segment(0xe1, Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff, thumbnail]));
}

describe('MjpegSplitter on ffmpeg MJPEG output', () => {
  let stream: Buffer;
  let reference: Split;

  beforeAll(() => {
    // biome-ignore format: option/value pairs
    const ffmpeg = spawnSync('ffmpeg', [
      '-nostdin', '-hide_banner', '-loglevel', 'error', '-i', CLIP, '-t', '1', '-an', '-f', 'mjpeg', '-',
    ], { maxBuffer: 64 << 20 });
    expect(ffmpeg.status).toBe(0);
    stream = ffmpeg.stdout;
    reference = whole(stream);
  });

  it('yields every JPEG intact, back to back', async () => {
    expect(reference.corrupt).toEqual([]);
    expect(reference.frames).toHaveLength(30); // 1 s at 29.97 fps
    expect(Buffer.concat(reference.frames).equals(stream)).toBe(true);
    for (const jpeg of [reference.frames[0], reference.frames[29]]) {
      const { info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([640, 360]);
    }
  });

  it('splits the same whatever the chunking, one byte at a time included', () => {
    for (const sizes of [() => 1, () => 2, () => 4095, jagged(7), jagged(70_000)]) {
      const { frames, corrupt } = split(stream, sizes);
      expect(corrupt).toEqual([]);
      expect(frames).toHaveLength(reference.frames.length);
      for (const [i, frame] of frames.entries()) expect(frame.equals(reference.frames[i])).toBe(true);
    }
  });

  it('ignores bytes between frames', () => {
    const junk = Buffer.from([0x00, 0xff, 0x12, 0xff, 0xff, 0xd9, 0x7f]);
    const [a, b] = reference.frames;
    for (const splitWith of [whole, bytewise]) {
      const { frames, corrupt } = splitWith(Buffer.concat([junk, a, junk, b, junk]));
      expect(corrupt).toEqual([]);
      expect(frames.map((f) => f.length)).toEqual([a.length, b.length]);
    }
  });
});

describe('MjpegSplitter on JPEGs with markers inside segments', () => {
  const fixture = readFileSync(FIXTURE);
  const [first, second, third] = whole(fixture).frames;

  it('keeps an EXIF thumbnail (a whole JPEG inside APP1) inside its frame', async () => {
    const thumbnail = await sharp(second).resize(80, 45).jpeg().toBuffer();
    const withThumbnail = withSegments(first, exifWithThumbnail(thumbnail));
    const meta = await sharp(withThumbnail).metadata();
    expect(meta.exif?.includes(thumbnail)).toBe(true);
    const stream = Buffer.concat([withThumbnail, third]);
    for (const splitWith of [whole, bytewise]) {
      const { frames, corrupt } = splitWith(stream);
      expect(corrupt).toEqual([]);
      expect(frames).toHaveLength(2);
      expect(frames[0].equals(withThumbnail)).toBe(true);
      expect(frames[1].equals(third)).toBe(true);
    }
    const decoded = await sharp(withThumbnail).raw().toBuffer({ resolveWithObject: true });
    expect(decoded.info.width).toBe(640);
  });

  it('is not fooled by FFD9/FFD8 in APPn and COM payloads or fill bytes before markers', () => {
    const tricky = withSegments(
      first,
      segment(0xef, Buffer.from([0xff, 0xd9, 0xff, 0xd8, 0xff, 0xd9])),
      segment(0xfe, Buffer.from('comment \xff\xd9 end', 'latin1')),
    );
    const filled = Buffer.concat([second.subarray(0, -2), Buffer.from([0xff, 0xff, 0xff, 0xd9])]);
    const { frames, corrupt } = split(Buffer.concat([tricky, filled]), jagged(5));
    expect(corrupt).toEqual([]);
    expect(frames.map((f) => f.length)).toEqual([tricky.length, filled.length]);
  });

  it('reports a truncated frame and resumes at the next SOI', () => {
    const cut = first.subarray(0, Math.floor(first.length / 2));
    for (const splitWith of [whole, bytewise]) {
      const { frames, corrupt } = splitWith(Buffer.concat([cut, second, third]));
      expect(corrupt).toEqual(['frame cut short by the next SOI']);
      expect(frames.map((f) => f.length)).toEqual([second.length, third.length]);
    }
  });

  it('reports a broken marker structure and resynchronises', () => {
    const broken = Buffer.from(first);
    broken[2 + 2 + 16] = 0x42; // where the marker after APP0 (length 16) should start
    const { frames, corrupt } = whole(Buffer.concat([broken, second]));
    expect(corrupt).toEqual(['expected a marker, found byte 0x42']);
    expect(frames).toHaveLength(1);
    expect(frames[0].equals(second)).toBe(true);
  });

  it('gives up on a frame that never ends instead of growing without bound', () => {
    const endless = Buffer.concat([first.subarray(0, -2), Buffer.alloc(30_000, 0x11)]);
    const { frames, corrupt } = split(Buffer.concat([endless, second]), () => 1000, 20_000);
    expect(corrupt).toEqual(['no EOI within 20000 bytes']);
    expect(frames).toHaveLength(1);
    expect(frames[0].equals(second)).toBe(true);
  });
});

describe('RawFrameSplitter', () => {
  it('cuts fixed-size frames across any chunking', () => {
    const frameBytes = 12;
    const stream = Buffer.from(Array.from({ length: frameBytes * 5 + 7 }, (_, i) => i));
    for (const sizes of [() => 1, () => 5, () => 12, () => 100, jagged(30)]) {
      const frames: Buffer[] = [];
      const splitter = new RawFrameSplitter(frameBytes, (f) => frames.push(f));
      for (let offset = 0, i = 0; offset < stream.length; i++) {
        const size = sizes(i);
        splitter.write(stream.subarray(offset, offset + size));
        offset += size;
      }
      expect(frames).toHaveLength(5);
      expect(Buffer.concat(frames).equals(stream.subarray(0, 5 * frameBytes))).toBe(true);
    }
  });
});
