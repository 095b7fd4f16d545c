// Decoding of BlazeFace (MediaPipe short-range, the 256x256 variant shipped with @vladmandic/human).
// The model itself runs elsewhere; this turns its raw outputs into FaceDetections.

import { type LetterboxTransform, letterboxToFrame } from './image.ts';
import type { FaceDetection, Point } from './types.ts';

export const BLAZEFACE_INPUT_SIZE = 256;
export const BLAZEFACE_ANCHOR_COUNT = 896;
/** Per anchor: box centre offset (2), box size (2), six keypoint offsets (12). */
export const BLAZEFACE_REGRESSOR_SIZE = 16;

function generateAnchors(): readonly Point[] {
  const anchors: Point[] = [];
  const layers = [
    { stride: 16, perCell: 2 },
    { stride: 32, perCell: 6 },
  ];
  for (const { stride, perCell } of layers) {
    const grid = Math.ceil(BLAZEFACE_INPUT_SIZE / stride);
    for (let gy = 0; gy < grid; gy++) {
      for (let gx = 0; gx < grid; gx++) {
        for (let n = 0; n < perCell; n++) anchors.push([stride * (gx + 0.5), stride * (gy + 0.5)]);
      }
    }
  }
  return anchors;
}

/** Anchor centres in input pixels, in the model's output order (all stride-16 ones, then stride-32). */
export const BLAZEFACE_ANCHORS: readonly Point[] = generateAnchors();

export interface BlazeFaceDecodeOptions {
  minScore: number;
  iouThreshold: number;
  maxFaces: number;
}

function sigmoid(logit: number): number {
  // MediaPipe clamps so exp() stays finite on garbage outputs.
  const clamped = Math.min(100, Math.max(-100, logit));
  return 1 / (1 + Math.exp(-clamped));
}

export function iou(a: FaceDetection['box'], b: FaceDetection['box']): number {
  const ix = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const iy = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  if (ix <= 0 || iy <= 0) return 0;
  const inter = ix * iy;
  return inter / (a[2] * a[3] + b[2] * b[3] - inter);
}

/**
 * Decodes raw BlazeFace outputs (regressors [896, 16], logits [896]) into detections in input
 * pixels (0..256), merged by MediaPipe's weighted NMS and sorted by score.
 */
export function decodeBlazeFace(
  regressors: Float32Array,
  logits: Float32Array,
  opts: BlazeFaceDecodeOptions,
): FaceDetection[] {
  if (regressors.length !== BLAZEFACE_ANCHOR_COUNT * BLAZEFACE_REGRESSOR_SIZE) {
    throw new Error(
      `BlazeFace regressors: expected ${BLAZEFACE_ANCHOR_COUNT * BLAZEFACE_REGRESSOR_SIZE} floats, got ${regressors.length}`,
    );
  }
  if (logits.length !== BLAZEFACE_ANCHOR_COUNT) {
    throw new Error(`BlazeFace logits: expected ${BLAZEFACE_ANCHOR_COUNT} floats, got ${logits.length}`);
  }

  const candidates: FaceDetection[] = [];
  for (let i = 0; i < BLAZEFACE_ANCHOR_COUNT; i++) {
    const score = sigmoid(logits[i]);
    if (score < opts.minScore) continue;
    const [ax, ay] = BLAZEFACE_ANCHORS[i];
    const r = i * BLAZEFACE_REGRESSOR_SIZE;
    const w = regressors[r + 2];
    const h = regressors[r + 3];
    const keypoints: Point[] = [];
    for (let k = 0; k < 6; k++) {
      keypoints.push([ax + regressors[r + 4 + 2 * k], ay + regressors[r + 5 + 2 * k]]);
    }
    candidates.push({
      box: [ax + regressors[r] - w / 2, ay + regressors[r + 1] - h / 2, w, h],
      score,
      keypoints,
    });
  }
  return weightedNms(candidates, opts.iouThreshold, opts.maxFaces);
}

/**
 * MediaPipe's weighted NMS: each output averages the top candidate's whole overlapping cluster,
 * which steadies boxes and keypoints compared with keeping the single best anchor.
 */
function weightedNms(candidates: FaceDetection[], iouThreshold: number, maxFaces: number): FaceDetection[] {
  let remaining = [...candidates].sort((a, b) => b.score - a.score);
  const out: FaceDetection[] = [];
  while (remaining.length > 0 && out.length < maxFaces) {
    const top = remaining[0];
    const cluster: FaceDetection[] = [];
    const rest: FaceDetection[] = [];
    for (const c of remaining) {
      if (c === top || iou(top.box, c.box) > iouThreshold) cluster.push(c);
      else rest.push(c);
    }
    out.push(mergeCluster(cluster, top.score));
    remaining = rest;
  }
  return out;
}

function mergeCluster(cluster: FaceDetection[], score: number): FaceDetection {
  let total = 0;
  const box = [0, 0, 0, 0];
  const keypoints: Point[] = cluster[0].keypoints.map(() => [0, 0]);
  for (const c of cluster) {
    total += c.score;
    for (let j = 0; j < 4; j++) box[j] += c.score * c.box[j];
    c.keypoints.forEach((p, k) => {
      keypoints[k][0] += c.score * p[0];
      keypoints[k][1] += c.score * p[1];
    });
  }
  return {
    // Averaging x, y, w, h equals averaging the corners, since both are linear in the box.
    box: [box[0] / total, box[1] / total, box[2] / total, box[3] / total],
    score,
    keypoints: keypoints.map(([x, y]) => [x / total, y / total]),
  };
}

/** Maps detections from detector-input pixels to the pixels of the frame that was letterboxed. */
export function detectionsToFrame(detections: FaceDetection[], t: LetterboxTransform): FaceDetection[] {
  return detections.map((d) => {
    const [x, y] = letterboxToFrame(t, [d.box[0], d.box[1]]);
    return {
      box: [x, y, d.box[2] / t.scaleX, d.box[3] / t.scaleY],
      score: d.score,
      keypoints: d.keypoints.map((p) => letterboxToFrame(t, p)),
    };
  });
}
