import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { RgbImage } from '../../../runtime/vision/image.ts';
import {
  type FaceQuality,
  faceQuality,
  headPose,
  laplacianVariance,
  passesQuality,
} from '../../../runtime/vision/quality.ts';
import type { FaceDetection, Point } from '../../../runtime/vision/types.ts';

/** Deterministic high-frequency texture: a stand-in for skin pores, hair and edges. */
function texture(width: number, height: number): RgbImage {
  const rgb = Buffer.alloc(width * height * 3);
  let seed = 12345;
  for (let i = 0; i < width * height; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const v = 60 + (seed % 140);
    rgb[3 * i] = v;
    rgb[3 * i + 1] = v;
    rgb[3 * i + 2] = v;
  }
  return { rgb, width, height };
}

async function blurred(img: RgbImage, sigma: number): Promise<RgbImage> {
  const rgb = await sharp(img.rgb, { raw: { width: img.width, height: img.height, channels: 3 } })
    .blur(sigma)
    .raw()
    .toBuffer();
  return { ...img, rgb };
}

/** Frontal keypoints of a face centred on (cx, cy), then rolled by `rollDeg` about that centre. */
function frontalKeypoints(cx: number, cy: number, rollDeg = 0, noseShift = 0): Point[] {
  const local: Point[] = [
    [-20, -15], // rightEye (image left)
    [20, -15], // leftEye
    [noseShift, 5], // nose
    [0, 25], // mouth
    [-45, -5], // rightEar
    [45, -5], // leftEar
  ];
  const r = (rollDeg * Math.PI) / 180;
  return local.map(([x, y]) => [
    cx + x * Math.cos(r) - y * Math.sin(r),
    cy + x * Math.sin(r) + y * Math.cos(r),
  ]);
}

function detection(box: FaceDetection['box'], keypoints: Point[]): FaceDetection {
  return { box, score: 0.9, keypoints };
}

describe('laplacianVariance', () => {
  it('is zero on flat and linear images, and matches a hand computation on a checkerboard', () => {
    const flat = new Array(25).fill(7);
    expect(laplacianVariance(flat, 5, 5)).toBe(0);
    const ramp = Array.from({ length: 25 }, (_, i) => 3 * (i % 5) + 2 * Math.floor(i / 5));
    expect(laplacianVariance(ramp, 5, 5)).toBeCloseTo(0, 12);
    // +-1 checkerboard: the Laplacian is -8 on the five +1 interior pixels, +8 on the four -1 ones.
    const board = Array.from({ length: 25 }, (_, i) => (((i % 5) + Math.floor(i / 5)) % 2 === 0 ? 1 : -1));
    expect(laplacianVariance(board, 5, 5)).toBeCloseTo(64 - (8 / 9) ** 2, 12);
  });
});

describe('faceQuality', () => {
  it('reports the box size and a sharpness that blur lowers', async () => {
    const frame = texture(320, 240);
    const face = detection([100, 60, 120, 140], frontalKeypoints(160, 130));
    const sharp0 = await faceQuality(frame, face);
    const soft = await faceQuality(await blurred(frame, 1.5), face);
    const softer = await faceQuality(await blurred(frame, 4), face);
    expect(sharp0.size).toBe(120);
    expect(sharp0.sharpness).toBeGreaterThan(2 * soft.sharpness);
    expect(soft.sharpness).toBeGreaterThan(2 * softer.sharpness);
    expect(softer.sharpness).toBeGreaterThan(0);
  });

  it('gives zero sharpness for a box outside the frame, without throwing', async () => {
    const q = await faceQuality(texture(100, 100), detection([200, 200, 50, 50], frontalKeypoints(225, 225)));
    expect(q.sharpness).toBe(0);
    expect(q.size).toBe(50);
  });

  it('measures roll from the eye line and yaw from the nose between the ears', async () => {
    const frame = texture(200, 200);
    const frontal = await faceQuality(frame, detection([50, 50, 100, 100], frontalKeypoints(100, 100)));
    expect(frontal.roll).toBeCloseTo(0, 9);
    expect(frontal.yaw).toBeCloseTo(0, 9);
    // Positive roll is clockwise on screen (image y points down).
    expect(headPose(frontalKeypoints(100, 100, 20)).roll).toBeCloseTo(20, 9);
    expect(headPose(frontalKeypoints(100, 100, -35)).roll).toBeCloseTo(-35, 9);
  });

  it('estimates yaw independently of roll, signed towards the leftEye side', () => {
    // Nose shifted by half the half-ear-span (22.5 of 45): yaw = atan(0.5 / 1.6).
    const expected = (Math.atan(0.5 / 1.6) * 180) / Math.PI;
    for (const roll of [0, 25, -60]) {
      const pose = headPose(frontalKeypoints(100, 100, roll, 22.5));
      expect(pose.yaw).toBeCloseTo(expected, 9);
      expect(pose.roll).toBeCloseTo(roll, 9);
      expect(headPose(frontalKeypoints(100, 100, roll, -22.5)).yaw).toBeCloseTo(-expected, 9);
    }
    // Larger shifts read as larger angles.
    expect(headPose(frontalKeypoints(100, 100, 0, 40)).yaw).toBeGreaterThan(expected);
  });

  it('reads collapsed ears as an extreme yaw rather than a frontal face', () => {
    const k = frontalKeypoints(100, 100, 0, 10);
    k[4] = [100, 95];
    k[5] = [100, 95];
    expect(Math.abs(headPose(k).yaw)).toBeGreaterThan(80);
  });
});

describe('passesQuality', () => {
  const limits = { minSize: 64, minSharpness: 50, maxYaw: 30, maxRoll: 25 };
  const good: FaceQuality = { size: 100, sharpness: 120, yaw: -10, roll: 5 };

  it('accepts a good face', () => {
    expect(passesQuality(good, limits)).toEqual({ ok: true, reasons: [] });
  });

  it('lists every failing check', () => {
    const r = passesQuality({ size: 40, sharpness: 12.34, yaw: -41, roll: 30 }, limits);
    expect(r.ok).toBe(false);
    expect(r.reasons).toHaveLength(4);
    expect(r.reasons[0]).toMatch(/^size 40\.0 px < 64$/);
    expect(r.reasons[1]).toMatch(/^sharpness 12\.3 < 50$/);
    expect(r.reasons[2]).toMatch(/yaw/);
    expect(r.reasons[3]).toMatch(/roll/);
  });

  it.each([
    ['size', { ...good, size: 63.9 }],
    ['sharpness', { ...good, sharpness: 49 }],
    ['yaw', { ...good, yaw: 30.5 }],
    ['roll', { ...good, roll: -25.1 }],
  ])('fails on %s alone', (name, q) => {
    const r = passesQuality(q, limits);
    expect(r.ok).toBe(false);
    expect(r.reasons).toHaveLength(1);
    expect(r.reasons[0]).toContain(name);
  });
});
