import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  type AlignTemplate,
  alignFace,
  applyMatrix,
  centreCrop,
  estimateSimilarity,
  type Matrix2x3,
} from '../../../runtime/vision/align.ts';
import type { RgbImage } from '../../../runtime/vision/image.ts';
import type { Point } from '../../../runtime/vision/types.ts';

/** Similarity x -> s R(theta) x + t as a 2x3 matrix. */
function similarity(s: number, theta: number, tx: number, ty: number): Matrix2x3 {
  const c = s * Math.cos(theta);
  const n = s * Math.sin(theta);
  return [
    [c, -n, tx],
    [n, c, ty],
  ];
}

function residual(m: Matrix2x3, src: Point[], dst: Point[]): number {
  return src.reduce((sum, p, i) => {
    const [x, y] = applyMatrix(m, p);
    return sum + (x - dst[i][0]) ** 2 + (y - dst[i][1]) ** 2;
  }, 0);
}

/** White dots on black (or on a grey level), rendered by librsvg with antialiasing. */
async function dotsFrame(
  width: number,
  height: number,
  dots: Point[],
  radius: number,
  grey = 0,
): Promise<RgbImage> {
  const circles = dots.map(([x, y]) => `<circle cx="${x}" cy="${y}" r="${radius}" fill="white"/>`).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="${width}" height="${height}" fill="rgb(${grey},${grey},${grey})"/>${circles}</svg>`;
  const { data, info } = await sharp(Buffer.from(svg))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).toEqual([width, height, 3]);
  return { rgb: data, width, height };
}

/** Intensity-weighted centroid (above the background level) of the red channel near `around`. */
function centroid(img: RgbImage, around: Point, window: number, background = 0): Point {
  let sx = 0;
  let sy = 0;
  let sw = 0;
  const x0 = Math.max(0, Math.floor(around[0] - window));
  const y0 = Math.max(0, Math.floor(around[1] - window));
  const x1 = Math.min(img.width, Math.ceil(around[0] + window));
  const y1 = Math.min(img.height, Math.ceil(around[1] + window));
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const w = Math.max(0, img.rgb[(y * img.width + x) * 3] - background);
      sx += w * (x + 0.5);
      sy += w * (y + 0.5);
      sw += w;
    }
  }
  expect(sw).toBeGreaterThan(0);
  return [sx / sw, sy / sw];
}

function expectNear(actual: Point, expected: Point, tolerance: number): void {
  expect(Math.hypot(actual[0] - expected[0], actual[1] - expected[1])).toBeLessThan(tolerance);
}

// Eyes, nose, mouth of a 112x112 crop; BlazeFace keypoints 0-3.
const TEMPLATE: AlignTemplate = {
  size: 112,
  points: [
    [38.5, 50],
    [73.5, 50],
    [56, 70],
    [56, 90],
  ],
  indices: [0, 1, 2, 3],
};

/** Six BlazeFace keypoints whose first four are the template mapped through crop->frame `g`; ears are off-template. */
function keypointsFor(g: Matrix2x3): Point[] {
  return [...TEMPLATE.points, [10, 55], [102, 55]].map((p) => applyMatrix(g, p as Point));
}

describe("sharp's affine geometry (what warpAffine relies on)", () => {
  // Output pixel c holds input pixel x where c = A x + od - origin, origin = round(min of A over the
  // input's corners): the canvas ignores od, so a large od shifts content off the canvas.
  async function litPixelAfterAffine(A: [number, number, number, number], od: Point) {
    const raw = Buffer.alloc(60 * 40 * 3);
    raw.fill(255, (25 * 60 + 20) * 3, (25 * 60 + 20) * 3 + 3); // pixel (20, 25)
    const { data, info } = await sharp(raw, { raw: { width: 60, height: 40, channels: 3 } })
      .affine(A, { odx: od[0], ody: od[1], interpolator: 'nearest' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    const i = data.indexOf(255);
    return {
      size: [info.width, info.height],
      lit: i < 0 ? null : [(i / 3) % info.width, Math.floor(i / 3 / info.width)],
    };
  }

  it('sizes the canvas from the untranslated bounds and applies od within it', async () => {
    // 180 degrees, scale 1: corners span [-60, 0] x [-40, 0], so origin = (-60, -40).
    expect(await litPixelAfterAffine([-1, 0, 0, -1], [0, 0])).toEqual({ size: [60, 40], lit: [40, 15] });
    expect(await litPixelAfterAffine([-1, 0, 0, -1], [7, 3])).toEqual({ size: [60, 40], lit: [47, 18] });
    // Pushed off the canvas entirely: same canvas, no content.
    expect(await litPixelAfterAffine([-1, 0, 0, -1], [100, 0])).toEqual({ size: [60, 40], lit: null });
    // 90 degrees: x' = -y, y' = x; corners span [-40, 0] x [0, 60].
    expect(await litPixelAfterAffine([0, -1, 1, 0], [0, 0])).toEqual({ size: [40, 60], lit: [15, 20] });
  });
});

describe('estimateSimilarity', () => {
  const src: Point[] = [
    [10, 20],
    [50, 22],
    [31, 45],
    [28, 70],
    [0, 0],
  ];

  it('recovers a known rotation, scale and translation exactly', () => {
    const truth = similarity(1.7, 0.6, 12, -5);
    const m = estimateSimilarity(
      src,
      src.map((p) => applyMatrix(truth, p)),
    );
    m.flat().forEach((v, i) => {
      expect(v).toBeCloseTo(truth.flat()[i], 10);
    });
  });

  it('handles rotations past 90 degrees and shrinking', () => {
    const truth = similarity(0.3, 2.8, -40, 300);
    const m = estimateSimilarity(
      src,
      src.map((p) => applyMatrix(truth, p)),
    );
    m.flat().forEach((v, i) => {
      expect(v).toBeCloseTo(truth.flat()[i], 10);
    });
  });

  it('is the least-squares fit under noise', () => {
    const truth = similarity(0.8, -0.3, 40, 10);
    const noise: Point[] = [
      [0.7, -0.4],
      [-0.5, 0.9],
      [0.2, 0.3],
      [-0.8, -0.6],
      [0.4, -0.2],
    ];
    const dst = src.map((p, i) => {
      const [x, y] = applyMatrix(truth, p);
      return [x + noise[i][0], y + noise[i][1]] as Point;
    });
    const m = estimateSimilarity(src, dst);
    // Close to the truth (the translation absorbs the lever arm of small angle/scale errors)...
    m.flat().forEach((v, i) => {
      expect(Math.abs(v - truth.flat()[i])).toBeLessThan(i % 3 === 2 ? 2 : 0.05);
    });
    // Any nudge of the four free parameters (p, q, tx, ty) makes the fit worse.
    const best = residual(m, src, dst);
    const [[p, mq, tx], [q, , ty]] = m;
    for (const [dp, dq, dx, dy] of [
      [1e-3, 0, 0, 0],
      [-1e-3, 0, 0, 0],
      [0, 1e-3, 0, 0],
      [0, -1e-3, 0, 0],
      [0, 0, 1e-2, 0],
      [0, 0, -1e-2, 0],
      [0, 0, 0, 1e-2],
      [0, 0, 0, -1e-2],
    ]) {
      const nudged: Matrix2x3 = [
        [p + dp, mq - dq, tx + dx],
        [q + dq, p + dp, ty + dy],
      ];
      expect(residual(nudged, src, dst)).toBeGreaterThan(best);
    }
  });

  it('never returns a reflection', () => {
    const mirrored = src.map(([x, y]) => [-x, y] as Point);
    const [[a, b], [c, d]] = estimateSimilarity(src, mirrored);
    expect(a).toBeCloseTo(d, 12);
    expect(b).toBeCloseTo(-c, 12);
    expect(a * d - b * c).toBeGreaterThanOrEqual(0);
  });

  it('rejects degenerate input', () => {
    expect(() => estimateSimilarity([[1, 1]], [[2, 2]])).toThrow(/at least 2/);
    expect(() =>
      estimateSimilarity(
        [
          [3, 3],
          [3, 3],
        ],
        [
          [0, 0],
          [1, 1],
        ],
      ),
    ).toThrow(/coincide/);
    expect(() => estimateSimilarity(src, src.slice(1))).toThrow();
  });
});

describe('alignFace', () => {
  it.each([
    // crop -> frame: scale, rotation, translation; frame size; dot radius in frame pixels
    ['a larger, rotated face (downscale)', 2.3, 0.45, [330, 60], [640, 480], 4],
    ['a small, upside-down face (upscale)', 0.6, 2.8, [250, 190], [320, 240], 1.5],
    ['an upright face at an odd scale', 1.37, 0, [101.3, 57.8], [400, 300], 3],
  ] as const)('puts the keypoints of %s on the template points', async (_, s, theta, t, size, radius) => {
    const g = similarity(s, theta, t[0], t[1]);
    const keypoints = keypointsFor(g);
    const frame = await dotsFrame(size[0], size[1], keypoints.slice(0, 4), radius);
    // The measuring tool itself is accurate on the frame.
    keypoints.slice(0, 4).forEach((k) => {
      expectNear(centroid(frame, k, radius + 3), k, 0.05);
    });

    const { rgb, matrix } = await alignFace(frame, keypoints, TEMPLATE);
    expect(rgb).toHaveLength(112 * 112 * 3);
    keypoints.slice(0, 4).forEach((k, i) => {
      expectNear(applyMatrix(matrix, k), TEMPLATE.points[i], 1e-9);
    });
    const crop = { rgb, width: 112, height: 112 };
    // Measured within 0.05 px; mixing up pixel-centre conventions would cost 0.2-0.45 px here.
    for (const p of TEMPLATE.points) expectNear(centroid(crop, p, radius / s + 3), p, 0.1);
  });

  it('fills the part of the crop that falls outside the frame with black', async () => {
    // Face near the top-left corner of a grey frame: the crop's upper-left region samples x, y < 0.
    const g = similarity(1.5, 0.2, -20, -30);
    const keypoints = keypointsFor(g);
    const frame = await dotsFrame(300, 200, keypoints.slice(0, 4), 3, 100);
    const { rgb, matrix } = await alignFace(frame, keypoints, TEMPLATE);
    const crop = { rgb, width: 112, height: 112 };
    for (const p of TEMPLATE.points) expectNear(centroid(crop, p, 5, 100), p, 0.3);

    let outside = 0;
    let inside = 0;
    for (let y = 0; y < 112; y++) {
      for (let x = 0; x < 112; x++) {
        const [fx, fy] = applyMatrix(g, [x + 0.5, y + 0.5]);
        const v = rgb[(y * 112 + x) * 3];
        if (fx < -1 || fy < -1) {
          expect(v).toBe(0);
          outside++;
        } else if (
          fx > 1 &&
          fy > 1 &&
          Math.min(...TEMPLATE.points.map((p) => Math.hypot(p[0] - x, p[1] - y))) > 6
        ) {
          expect(v).toBe(100);
          inside++;
        }
      }
    }
    expect(outside).toBeGreaterThan(500);
    expect(inside).toBeGreaterThan(5000);
    expectNear(applyMatrix(matrix, applyMatrix(g, [30, 40])), [30, 40], 1e-9);
  });

  it('returns an all-black crop when the face maps entirely outside the frame', async () => {
    const frame = await dotsFrame(100, 100, [], 1, 100);
    const { rgb } = await alignFace(frame, keypointsFor(similarity(1, 0, 500, 500)), TEMPLATE);
    expect(rgb.every((v) => v === 0)).toBe(true);
  });

  it('uses template.indices to pick keypoints', async () => {
    // Template on the ears and nose only; the eyes are deliberately wrong.
    const g = similarity(1.8, -0.3, 200, 120);
    const keypoints = keypointsFor(g);
    keypoints[0] = [0, 0];
    keypoints[1] = [5, 5];
    const template: AlignTemplate = {
      size: 112,
      points: [
        [10, 55],
        [102, 55],
        [56, 70],
      ],
      indices: [4, 5, 2],
    };
    const frame = await dotsFrame(600, 400, [keypoints[4], keypoints[5], keypoints[2]], 3);
    const { rgb } = await alignFace(frame, keypoints, template);
    const crop = { rgb, width: 112, height: 112 };
    for (const p of template.points) expectNear(centroid(crop, p, 5), p, 0.25);
    await expect(alignFace(frame, keypoints.slice(0, 3), template)).rejects.toThrow(/no keypoint 4/);
  });
});

describe('centreCrop', () => {
  it('takes the central square of side fraction * min(w, h)', async () => {
    // 400x300, fraction 0.6: side 180 = [110, 290] x [60, 240]; a 90 px crop halves it.
    const dots: Point[] = [
      [200, 150],
      [140, 90],
      [260, 210],
    ];
    const frame = await dotsFrame(400, 300, dots, 3);
    const { rgb, matrix } = await centreCrop(frame, 90);
    expect(rgb).toHaveLength(90 * 90 * 3);
    expect(applyMatrix(matrix, [110, 60])).toEqual([0, 0]);
    expect(applyMatrix(matrix, [290, 240])).toEqual([90, 90]);
    const crop = { rgb, width: 90, height: 90 };
    const expected: Point[] = [
      [45, 45],
      [15, 15],
      [75, 75],
    ];
    for (const p of expected) expectNear(centroid(crop, p, 4), p, 0.25);
  });

  it('honours a custom fraction', async () => {
    const frame = await dotsFrame(400, 300, [[200, 150]], 3);
    const { rgb, matrix } = await centreCrop(frame, 150, 1);
    // fraction 1: side 300 = [50, 350] x [0, 300], scale 0.5
    expect(applyMatrix(matrix, [50, 0])).toEqual([0, 0]);
    expectNear(centroid({ rgb, width: 150, height: 150 }, [75, 75], 4), [75, 75], 0.25);
  });
});
