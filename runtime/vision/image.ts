// Image decoding and the detector's letterbox input.
//
// Coordinates: every Point in runtime/vision is continuous pixel coordinates, where pixel (i, j)
// covers [i, i+1) x [j, j+1) and its centre is (i + 0.5, j + 0.5). That is the convention of the
// detector's anchors and of sharp's resize, so mapping between them needs no half-pixel terms.

import sharp from 'sharp';
import type { TensorIn } from '../types.ts';
import type { Point } from './types.ts';

/** Packed RGB, 3 bytes per pixel, row-major, no padding (runtime/capture Frame satisfies it). */
export interface RgbImage {
  rgb: Buffer;
  width: number;
  height: number;
}

export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';
}

function describeInput(input: Buffer | string): string {
  return typeof input === 'string' ? `file ${input}` : `buffer of ${input.length} bytes`;
}

/**
 * Largest image decoded, in pixels (a 24 MP photo; 75 MB as RGB). A small compressed file can announce a
 * huge image (a 33 KB PNG of 16383x16383 took the process past 1 GB), so the size is read from the header
 * first and sharp refuses anything larger too.
 */
export const MAX_DECODE_PIXELS = 25_000_000;

export async function decodeImage(input: Buffer | string): Promise<RgbImage> {
  let header: { width?: number; height?: number };
  try {
    // Reads the header only; unlimited here so an oversized image gets the message below.
    header = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ImageDecodeError(`cannot decode image (${describeInput(input)}): ${reason}`, { cause: err });
  }
  const { width = 0, height = 0 } = header;
  if (width * height > MAX_DECODE_PIXELS) {
    throw new ImageDecodeError(
      `image (${describeInput(input)}) is ${width}x${height} pixels, more than the ${MAX_DECODE_PIXELS} facegate decodes`,
    );
  }
  try {
    // rotate() without an angle applies the EXIF orientation, so phone photos come out upright.
    const { data, info } = await sharp(input, { limitInputPixels: MAX_DECODE_PIXELS })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return { rgb: data, width: info.width, height: info.height };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ImageDecodeError(`cannot decode image (${describeInput(input)}): ${reason}`, { cause: err });
  }
}

/** Maps detector-input pixels to frame pixels: frame = (input - pad) / scale, per axis. */
export interface LetterboxTransform {
  size: number;
  scaleX: number;
  scaleY: number;
  padX: number;
  padY: number;
}

export interface Letterbox {
  /** NCHW [1, 3, size, size], RGB planes, values v / 127.5 - 1; padding is black (-1). */
  tensor: TensorIn;
  transform: LetterboxTransform;
}

export function letterboxToFrame(t: LetterboxTransform, p: Point): Point {
  return [(p[0] - t.padX) / t.scaleX, (p[1] - t.padY) / t.scaleY];
}

export function frameToLetterbox(t: LetterboxTransform, p: Point): Point {
  return [p[0] * t.scaleX + t.padX, p[1] * t.scaleY + t.padY];
}

/**
 * Scales the whole frame into a size x size square keeping the aspect ratio, centred on black.
 *
 * The resize uses sharp's 'linear' kernel: the detector was trained on bilinear resizes, and on a
 * downscale libvips widens the triangle filter to the shrink factor, so it averages rather than
 * skipping pixels (no aliasing), while costing less than the default lanczos3.
 */
export async function letterbox(img: RgbImage, size: number): Promise<Letterbox> {
  const fit = size / Math.max(img.width, img.height);
  const width = Math.max(1, Math.min(size, Math.round(img.width * fit)));
  const height = Math.max(1, Math.min(size, Math.round(img.height * fit)));
  // Rounding makes the two axes' scales differ slightly; keeping both makes the inverse exact.
  const transform: LetterboxTransform = {
    size,
    scaleX: width / img.width,
    scaleY: height / img.height,
    padX: Math.floor((size - width) / 2),
    padY: Math.floor((size - height) / 2),
  };
  const resized = await sharp(img.rgb, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();

  const plane = size * size;
  const data = new Float32Array(3 * plane).fill(-1);
  for (let y = 0; y < height; y++) {
    const row = (y + transform.padY) * size + transform.padX;
    for (let x = 0; x < width; x++) {
      const src = (y * width + x) * 3;
      const dst = row + x;
      data[dst] = resized[src] / 127.5 - 1;
      data[plane + dst] = resized[src + 1] / 127.5 - 1;
      data[2 * plane + dst] = resized[src + 2] / 127.5 - 1;
    }
  }
  return { tensor: { data, dims: [1, 3, size, size] }, transform };
}
