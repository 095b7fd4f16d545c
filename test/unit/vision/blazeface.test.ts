import { describe, expect, it } from 'vitest';
import {
  BLAZEFACE_ANCHOR_COUNT,
  BLAZEFACE_ANCHORS,
  BLAZEFACE_REGRESSOR_SIZE,
  decodeBlazeFace,
  detectionsToFrame,
} from '../../../runtime/vision/blazeface.ts';
import type { LetterboxTransform } from '../../../runtime/vision/image.ts';
import type { FaceDetection, Point } from '../../../runtime/vision/types.ts';

interface Planted {
  anchor: number;
  logit: number;
  /** Box centre offset from the anchor, box size, keypoint offsets from the anchor. */
  offset: Point;
  size: [number, number];
  keypointOffsets?: Point[];
}

const NO_FACE_LOGIT = -20;

function rawOutputs(planted: Planted[]): { regressors: Float32Array; logits: Float32Array } {
  const regressors = new Float32Array(BLAZEFACE_ANCHOR_COUNT * BLAZEFACE_REGRESSOR_SIZE);
  const logits = new Float32Array(BLAZEFACE_ANCHOR_COUNT).fill(NO_FACE_LOGIT);
  for (const p of planted) {
    const r = p.anchor * BLAZEFACE_REGRESSOR_SIZE;
    regressors.set([...p.offset, ...p.size, ...(p.keypointOffsets ?? defaultKeypointOffsets).flat()], r);
    logits[p.anchor] = p.logit;
  }
  return { regressors, logits };
}

const defaultKeypointOffsets: Point[] = [
  [-8, -6],
  [8, -6],
  [0, 2],
  [0, 10],
  [-18, -2],
  [18, -2],
];

/** Anchor index of cell (gx, gy), copy n, in the stride-16 layer. */
const stride16 = (gx: number, gy: number, n = 0) => 2 * (gy * 16 + gx) + n;
/** Same for the stride-32 layer, which follows all 512 stride-16 anchors. */
const stride32 = (gx: number, gy: number, n = 0) => 512 + 6 * (gy * 8 + gx) + n;

/** Weighted averaging of a one-member cluster may cost an ulp, so compare to 1e-9. */
function expectBox(actual: FaceDetection['box'], expected: FaceDetection['box']): void {
  actual.forEach((v, j) => {
    expect(v).toBeCloseTo(expected[j], 9);
  });
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const opts = { minScore: 0.5, iouThreshold: 0.3, maxFaces: 10 };

describe('BLAZEFACE_ANCHORS', () => {
  it('has 896 anchors: 16x16x2 at stride 16, then 8x8x6 at stride 32', () => {
    expect(BLAZEFACE_ANCHORS).toHaveLength(896);
    expect(BLAZEFACE_ANCHORS[0]).toEqual([8, 8]);
    expect(BLAZEFACE_ANCHORS[1]).toEqual([8, 8]);
    expect(BLAZEFACE_ANCHORS[2]).toEqual([24, 8]);
    expect(BLAZEFACE_ANCHORS[31]).toEqual([248, 8]);
    expect(BLAZEFACE_ANCHORS[32]).toEqual([8, 24]);
    expect(BLAZEFACE_ANCHORS[511]).toEqual([248, 248]);
    expect(BLAZEFACE_ANCHORS[512]).toEqual([16, 16]);
    expect(BLAZEFACE_ANCHORS[517]).toEqual([16, 16]);
    expect(BLAZEFACE_ANCHORS[518]).toEqual([48, 16]);
    expect(BLAZEFACE_ANCHORS[895]).toEqual([240, 240]);
  });

  it('is row-major: x varies fastest within a layer', () => {
    for (let gy = 0; gy < 16; gy++) {
      for (let gx = 0; gx < 16; gx++) {
        expect(BLAZEFACE_ANCHORS[stride16(gx, gy, 1)]).toEqual([16 * gx + 8, 16 * gy + 8]);
      }
    }
    for (let gy = 0; gy < 8; gy++) {
      for (let gx = 0; gx < 8; gx++) {
        expect(BLAZEFACE_ANCHORS[stride32(gx, gy, 5)]).toEqual([32 * gx + 16, 32 * gy + 16]);
      }
    }
  });
});

describe('decodeBlazeFace', () => {
  it('decodes a planted box and keypoints relative to their anchor', () => {
    const anchor = stride16(7, 5); // anchor centre (120, 88)
    const { regressors, logits } = rawOutputs([{ anchor, logit: 3, offset: [3, -2], size: [40, 50] }]);
    const faces = decodeBlazeFace(regressors, logits, opts);
    expect(faces).toHaveLength(1);
    expectBox(faces[0].box, [123 - 20, 86 - 25, 40, 50]);
    expect(faces[0].score).toBeCloseTo(sigmoid(3), 12);
    faces[0].keypoints.forEach(([x, y], k) => {
      expect(x).toBeCloseTo(120 + defaultKeypointOffsets[k][0], 9);
      expect(y).toBeCloseTo(88 + defaultKeypointOffsets[k][1], 9);
    });
  });

  it('decodes anchors in the stride-32 layer', () => {
    const { regressors, logits } = rawOutputs([
      { anchor: stride32(2, 6, 4), logit: 2, offset: [0, 0], size: [80, 80] },
    ]);
    const [face] = decodeBlazeFace(regressors, logits, opts);
    // anchor centre (80, 208)
    expectBox(face.box, [40, 168, 80, 80]);
    expect(face.keypoints[2][0]).toBeCloseTo(80, 9);
    expect(face.keypoints[2][1]).toBeCloseTo(210, 9);
  });

  it('merges overlapping candidates by score-weighted average and keeps the top score', () => {
    // Same cell (120, 88): A = [100, 60, 40, 40], B = [104, 62, 40, 40]; IoU = 36*38/(3200-1368) = 0.75.
    const a = {
      anchor: stride16(7, 5, 0),
      logit: Math.log(3),
      offset: [0, -8] as Point,
      size: [40, 40] as [number, number],
    };
    const b = {
      anchor: stride16(7, 5, 1),
      logit: 0,
      offset: [4, -6] as Point,
      size: [40, 40] as [number, number],
      keypointOffsets: defaultKeypointOffsets.map(([x, y]) => [x + 4, y + 2] as Point),
    };
    const { regressors, logits } = rawOutputs([a, b]);
    const faces = decodeBlazeFace(regressors, logits, { ...opts, minScore: 0.1 });
    expect(faces).toHaveLength(1);
    const sa = sigmoid(Math.fround(Math.log(3))); // 0.75 up to float32 rounding of the logit
    const sb = 0.5;
    const wa = sa / (sa + sb);
    const wb = sb / (sa + sb);
    expect(wa).toBeCloseTo(0.6, 6);
    const [x, y, w, h] = faces[0].box;
    expect(x).toBeCloseTo(wa * 100 + wb * 104, 9);
    expect(y).toBeCloseTo(wa * 60 + wb * 62, 9);
    expect(w).toBeCloseTo(40, 9);
    expect(h).toBeCloseTo(40, 9);
    expect(x).toBeCloseTo(101.6, 5);
    expect(y).toBeCloseTo(60.8, 5);
    expect(faces[0].score).toBeCloseTo(sa, 12);
    faces[0].keypoints.forEach(([kx, ky], k) => {
      const [ox, oy] = defaultKeypointOffsets[k];
      expect(kx).toBeCloseTo(120 + ox + wb * 4, 9);
      expect(ky).toBeCloseTo(88 + oy + wb * 2, 9);
    });
  });

  it('averages sizes too, and clusters only around the top candidate', () => {
    // IoU(A, B) = 0.58, IoU(B, C) = 0.40, IoU(A, C) = 0.25, IoU(A+B merged, C) = 0.33: C must be
    // judged against A's own box, and survives as a face of its own once A's cluster is removed.
    const { regressors, logits } = rawOutputs([
      { anchor: stride16(4, 4, 0), logit: 4, offset: [0, 0], size: [40, 40] }, // A: [52, 52, 40, 40]
      { anchor: stride16(5, 4, 0), logit: 2, offset: [-8, 0], size: [48, 48] }, // B: [56, 48, 48, 48]
      { anchor: stride16(6, 4, 0), logit: 1, offset: [-8, 0], size: [40, 40] }, // C: [76, 52, 40, 40]
    ]);
    const faces = decodeBlazeFace(regressors, logits, { ...opts, minScore: 0.5 });
    expect(faces).toHaveLength(2);
    const [sa, sb, sc] = [sigmoid(4), sigmoid(2), sigmoid(1)];
    const wa = sa / (sa + sb);
    const wb = sb / (sa + sb);
    const expected = [52 * wa + 56 * wb, 52 * wa + 48 * wb, 40 * wa + 48 * wb, 40 * wa + 48 * wb];
    faces[0].box.forEach((v, j) => {
      expect(v).toBeCloseTo(expected[j], 9);
    });
    expect(faces[0].score).toBeCloseTo(sa, 12);
    expectBox(faces[1].box, [76, 52, 40, 40]);
    expect(faces[1].score).toBeCloseTo(sc, 12);
  });

  it('keeps non-overlapping faces separate, sorted by score', () => {
    const { regressors, logits } = rawOutputs([
      { anchor: stride16(2, 2), logit: 1, offset: [0, 0], size: [30, 30] },
      { anchor: stride16(12, 3), logit: 5, offset: [0, 0], size: [30, 30] },
      { anchor: stride32(3, 6), logit: 3, offset: [0, 0], size: [60, 60] },
    ]);
    const faces = decodeBlazeFace(regressors, logits, opts);
    expect(faces).toHaveLength(3);
    expectBox(faces[0].box, [200 - 15, 56 - 15, 30, 30]);
    expectBox(faces[1].box, [112 - 30, 208 - 30, 60, 60]);
    expectBox(faces[2].box, [40 - 15, 40 - 15, 30, 30]);
    expect(faces.map((f) => f.score)).toEqual([sigmoid(5), sigmoid(3), sigmoid(1)]);
  });

  it('merges only above the IoU threshold', () => {
    // [40, 40, 40, 40] vs [60, 40, 40, 40]: IoU = 800 / 2400 = 1/3.
    const { regressors, logits } = rawOutputs([
      { anchor: stride16(3, 3), logit: 3, offset: [4, 4], size: [40, 40] },
      { anchor: stride16(4, 3), logit: 2, offset: [8, 4], size: [40, 40] },
    ]);
    expect(decodeBlazeFace(regressors, logits, { ...opts, iouThreshold: 0.34 })).toHaveLength(2);
    expect(decodeBlazeFace(regressors, logits, { ...opts, iouThreshold: 0.33 })).toHaveLength(1);
  });

  it('drops candidates below minScore before merging', () => {
    const { regressors, logits } = rawOutputs([
      { anchor: stride16(7, 7, 0), logit: 2, offset: [0, 0], size: [40, 40] },
      { anchor: stride16(7, 7, 1), logit: -0.5, offset: [10, 10], size: [40, 40] }, // score 0.38
      { anchor: stride16(1, 14), logit: -0.4, offset: [0, 0], size: [20, 20] }, // score 0.40
    ]);
    const faces = decodeBlazeFace(regressors, logits, { ...opts, minScore: 0.5 });
    expect(faces).toHaveLength(1);
    expectBox(faces[0].box, [100, 100, 40, 40]); // unmerged: the 0.38 candidate was dropped
    expect(decodeBlazeFace(regressors, logits, { ...opts, minScore: 0.39 })).toHaveLength(2);
  });

  it('returns at most maxFaces, the best ones', () => {
    const { regressors, logits } = rawOutputs([
      { anchor: stride16(2, 2), logit: 1, offset: [0, 0], size: [20, 20] },
      { anchor: stride16(8, 2), logit: 4, offset: [0, 0], size: [20, 20] },
      { anchor: stride16(14, 2), logit: 2, offset: [0, 0], size: [20, 20] },
      { anchor: stride16(8, 10), logit: 3, offset: [0, 0], size: [20, 20] },
    ]);
    const faces = decodeBlazeFace(regressors, logits, { ...opts, maxFaces: 2 });
    expect(faces.map((f) => f.score)).toEqual([sigmoid(4), sigmoid(3)]);
    expect(decodeBlazeFace(regressors, logits, { ...opts, maxFaces: 0 })).toEqual([]);
  });

  it('finds nothing in an all-background output and survives extreme logits', () => {
    const { regressors, logits } = rawOutputs([]);
    expect(decodeBlazeFace(regressors, logits, opts)).toEqual([]);
    logits.fill(-1e30);
    logits[stride16(8, 8)] = 1e30;
    const faces = decodeBlazeFace(regressors, logits, opts);
    expect(faces).toHaveLength(1);
    expect(faces[0].score).toBe(1);
  });

  it('rejects outputs of the wrong size', () => {
    const { regressors, logits } = rawOutputs([]);
    expect(() => decodeBlazeFace(regressors.subarray(16), logits, opts)).toThrow(/regressors/);
    expect(() => decodeBlazeFace(regressors, logits.subarray(1), opts)).toThrow(/logits/);
  });
});

describe('detectionsToFrame', () => {
  it('undoes the letterbox on boxes and keypoints', () => {
    // A 640x360 frame letterboxed into 256: scale 0.4, 56 px of padding above and below.
    const t: LetterboxTransform = { size: 256, scaleX: 0.4, scaleY: 0.4, padX: 0, padY: 56 };
    const face: FaceDetection = {
      box: [100, 76, 40, 60],
      score: 0.9,
      keypoints: [
        [110, 96],
        [130, 96],
        [120, 106],
        [120, 116],
        [102, 100],
        [138, 100],
      ],
    };
    const [mapped] = detectionsToFrame([face], t);
    expect(mapped.box[0]).toBeCloseTo(250, 9);
    expect(mapped.box[1]).toBeCloseTo(50, 9);
    expect(mapped.box[2]).toBeCloseTo(100, 9);
    expect(mapped.box[3]).toBeCloseTo(150, 9);
    expect(mapped.score).toBe(0.9);
    expect(mapped.keypoints[0][0]).toBeCloseTo(275, 9);
    expect(mapped.keypoints[0][1]).toBeCloseTo(100, 9);
    expect(mapped.keypoints[5][0]).toBeCloseTo(345, 9);
    expect(mapped.keypoints[5][1]).toBeCloseTo(110, 9);
  });
});
