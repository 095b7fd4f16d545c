// Face alignment: a similarity transform from detected keypoints to a template, applied with sharp.
//
// Points are continuous pixel coordinates (pixel (i, j) is centred on (i + 0.5, j + 0.5)), for the
// frame and for template points alike. Templates written for OpenCV's warpAffine, which puts pixel
// centres on integers (e.g. the ArcFace 112x112 template), need 0.5 added to match exactly.

import sharp from 'sharp';
import type { RgbImage } from './image.ts';
import type { Point } from './types.ts';

/** [[a, b, tx], [c, d, ty]]: x' = a x + b y + tx, y' = c x + d y + ty. */
export type Matrix2x3 = [[number, number, number], [number, number, number]];

export interface AlignTemplate {
  /** Side of the square output crop, in pixels. */
  size: number;
  /** Where the selected keypoints should land in the crop. */
  points: Point[];
  /** Which detection keypoints (KEYPOINTS order) correspond to `points`, pairwise. */
  indices: number[];
}

export interface FaceCrop {
  /** size * size * 3 bytes, packed RGB. */
  rgb: Buffer;
  /** Frame pixels -> crop pixels. */
  matrix: Matrix2x3;
}

export function applyMatrix(m: Matrix2x3, p: Point): Point {
  return [m[0][0] * p[0] + m[0][1] * p[1] + m[0][2], m[1][0] * p[0] + m[1][1] * p[1] + m[1][2]];
}

/**
 * Least-squares similarity (rotation, uniform scale, translation; never a reflection) mapping src
 * onto dst. In 2-D, Umeyama's method without reflection reduces to this closed form: the linear
 * part [[p, -q], [q, p]] is linear in p and q, so the least-squares solution is direct.
 */
export function estimateSimilarity(src: Point[], dst: Point[]): Matrix2x3 {
  if (src.length !== dst.length)
    throw new Error(`estimateSimilarity: ${src.length} src vs ${dst.length} dst points`);
  if (src.length < 2) throw new Error('estimateSimilarity: need at least 2 point pairs');
  const n = src.length;
  let sx = 0;
  let sy = 0;
  let dx = 0;
  let dy = 0;
  for (let i = 0; i < n; i++) {
    sx += src[i][0];
    sy += src[i][1];
    dx += dst[i][0];
    dy += dst[i][1];
  }
  sx /= n;
  sy /= n;
  dx /= n;
  dy /= n;
  let dot = 0;
  let cross = 0;
  let variance = 0;
  for (let i = 0; i < n; i++) {
    const ux = src[i][0] - sx;
    const uy = src[i][1] - sy;
    const vx = dst[i][0] - dx;
    const vy = dst[i][1] - dy;
    dot += ux * vx + uy * vy;
    cross += ux * vy - uy * vx;
    variance += ux * ux + uy * uy;
  }
  if (variance < 1e-12) throw new Error('estimateSimilarity: source points coincide');
  const p = dot / variance;
  const q = cross / variance;
  return [
    [p, -q, dx - (p * sx - q * sy)],
    [q, p, dy - (q * sx + p * sy)],
  ];
}

/** libvips rounds half away from zero when it sizes the affine output. */
function vipsRound(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

/**
 * Warps the frame into a size x size crop: crop pixel X shows frame point M^-1(X). Bilinear; frame
 * points outside the frame come out black.
 *
 * How sharp (libvips 8.18) places affine output, from reading vips_affine and checked by probing
 * (test/unit/vision/align.test.ts pins it down): for X = A (x + idx) + od, output pixel c holds input
 * pixel x where c = A (x + idx) + od - origin, and origin = round(min over the corners of A applied
 * to [0, w] x [0, h]), rounding half away from zero. idx/od play no part in the canvas: it is the
 * bounding box of the untranslated image, and a large offset pushes the content off the canvas
 * (silently black). So we (1) extract just the frame region the crop samples, to keep the affine
 * cheap, (2) give sharp only the sub-pixel part of the translation, then (3) copy the canvas into
 * the crop shifted by origin plus the integer part, leaving black whatever the canvas lacks.
 */
export async function warpAffine(frame: RgbImage, m: Matrix2x3, size: number): Promise<Buffer> {
  const [[a, b, tx], [c, d, ty]] = m;
  const det = a * d - b * c;
  if (!(Math.abs(det) > 1e-12)) throw new Error('warpAffine: matrix is singular');
  // libvips addresses pixels by index (centre at integer coordinates); convert the translation.
  const ox = tx + (a + b - 1) / 2;
  const oy = ty + (c + d - 1) / 2;
  const ia = d / det;
  const ib = -b / det;
  const ic = -c / det;
  const id = a / det;

  let minX = Number.POSITIVE_INFINITY;
  let minY = Number.POSITIVE_INFINITY;
  let maxX = Number.NEGATIVE_INFINITY;
  let maxY = Number.NEGATIVE_INFINITY;
  for (const X of [0, size - 1]) {
    for (const Y of [0, size - 1]) {
      const x = ia * (X - ox) + ib * (Y - oy);
      const y = ic * (X - ox) + id * (Y - oy);
      minX = Math.min(minX, x);
      maxX = Math.max(maxX, x);
      minY = Math.min(minY, y);
      maxY = Math.max(maxY, y);
    }
  }
  // Canvas rounding and the sub-pixel shift can trim about one output pixel at each edge; a margin
  // of that much input (plus slack for the bilinear neighbour) keeps the trimming outside the crop.
  const margin = Math.ceil(Math.max(Math.abs(ia) + Math.abs(ib), Math.abs(ic) + Math.abs(id))) + 2;
  const x0 = Math.max(0, Math.floor(minX) - margin);
  const y0 = Math.max(0, Math.floor(minY) - margin);
  const x1 = Math.min(frame.width, Math.ceil(maxX) + 1 + margin);
  const y1 = Math.min(frame.height, Math.ceil(maxY) + 1 + margin);

  const out = Buffer.alloc(size * size * 3);
  if (x1 <= x0 || y1 <= y0) return out;
  const w = x1 - x0;
  const h = y1 - y0;

  // Crop X = A x_sub + shift for x_sub in the extracted region.
  const shiftX = a * x0 + b * y0 + ox;
  const shiftY = c * x0 + d * y0 + oy;
  const wholeX = Math.round(shiftX);
  const wholeY = Math.round(shiftY);
  const { data, info } = await sharp(frame.rgb, {
    raw: { width: frame.width, height: frame.height, channels: 3 },
  })
    .extract({ left: x0, top: y0, width: w, height: h })
    .affine([a, b, c, d], { odx: shiftX - wholeX, ody: shiftY - wholeY, interpolator: 'bilinear' })
    .raw()
    .toBuffer({ resolveWithObject: true });

  const cornersX = [0, a * w, b * h, a * w + b * h];
  const cornersY = [0, c * w, d * h, c * w + d * h];
  const expectedW = vipsRound(Math.max(...cornersX) - Math.min(...cornersX));
  const expectedH = vipsRound(Math.max(...cornersY) - Math.min(...cornersY));
  // A libvips that sized the canvas differently would likely shift every crop; fail instead.
  if (info.width !== expectedW || info.height !== expectedH || info.channels !== 3) {
    throw new Error(
      `warpAffine: sharp produced ${info.width}x${info.height}x${info.channels}, expected ${expectedW}x${expectedH}x3`,
    );
  }
  // Crop coordinates of canvas pixel (0, 0).
  const left = vipsRound(Math.min(...cornersX)) + wholeX;
  const top = vipsRound(Math.min(...cornersY)) + wholeY;

  const fromX = Math.max(0, left);
  const toX = Math.min(size, left + info.width);
  if (toX <= fromX) return out;
  for (let Y = Math.max(0, top); Y < Math.min(size, top + info.height); Y++) {
    const srcRow = (Y - top) * info.width;
    data.copy(out, (Y * size + fromX) * 3, (srcRow + fromX - left) * 3, (srcRow + toX - left) * 3);
  }
  return out;
}

export async function alignFace(
  frame: RgbImage,
  keypoints: Point[],
  template: AlignTemplate,
): Promise<FaceCrop> {
  if (template.indices.length !== template.points.length) {
    throw new Error(
      `alignFace: ${template.indices.length} indices vs ${template.points.length} template points`,
    );
  }
  const src = template.indices.map((i) => {
    const p = keypoints[i];
    if (!p) throw new Error(`alignFace: no keypoint ${i} (have ${keypoints.length})`);
    return p;
  });
  const matrix = estimateSimilarity(src, template.points);
  return { rgb: await warpAffine(frame, matrix, template.size), matrix };
}

/** Fallback when no face is found: the central square of side fraction * min(width, height). */
export async function centreCrop(frame: RgbImage, size: number, fraction = 0.6): Promise<FaceCrop> {
  const side = fraction * Math.min(frame.width, frame.height);
  const s = size / side;
  const matrix: Matrix2x3 = [
    [s, 0, (-s * (frame.width - side)) / 2],
    [0, s, (-s * (frame.height - side)) / 2],
  ];
  return { rgb: await warpAffine(frame, matrix, size), matrix };
}
