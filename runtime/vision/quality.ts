// Cheap quality checks run before embedding, so tiny, blurred or strongly turned faces never reach
// the gallery or produce low-confidence matches.

import sharp from 'sharp';
import type { RgbImage } from './image.ts';
import type { FaceDetection, Point } from './types.ts';

export interface FaceQuality {
  /** min(box width, box height), frame pixels. */
  size: number;
  /** Variance of the Laplacian of the grey face crop, resampled to a fixed side. */
  sharpness: number;
  /** Degrees, approximate; positive when the nose is towards the image right (the leftEye side). */
  yaw: number;
  /** Degrees; angle of the eye line from horizontal, positive clockwise on screen (y down). */
  roll: number;
}

/** The limits the quality checks hold a face to. */
export interface QualityLimits {
  minSize: number;
  minSharpness: number;
  maxYaw: number;
  maxRoll: number;
}

/** Side the crop is resampled to before the Laplacian (about an embedder crop): a fixed scale makes
 * one threshold mean the same for near and far faces. */
export const SHARPNESS_SIDE = 112;

/** Nose-tip depth in front of the ear line over half the distance between the ears (tragion to
 * tragion ~14.5 cm, tragion to nose tip ~11-12 cm in depth): converts the nose's sideways shift
 * into an angle. */
const NOSE_DEPTH_OVER_HALF_EAR_SPAN = 1.6;

const toDegrees = (rad: number) => (rad * 180) / Math.PI;

/** Grey face crop (BT.601 luma, as OpenCV's cvtColor) of the box, clipped to the frame. */
async function greyCrop(
  frame: RgbImage,
  box: FaceDetection['box'],
  side: number,
): Promise<Float64Array | null> {
  const left = Math.max(0, Math.floor(box[0]));
  const top = Math.max(0, Math.floor(box[1]));
  const right = Math.min(frame.width, Math.ceil(box[0] + box[2]));
  const bottom = Math.min(frame.height, Math.ceil(box[1] + box[3]));
  if (right - left < 3 || bottom - top < 3) return null;
  const rgb = await sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .extract({ left, top, width: right - left, height: bottom - top })
    // An antialiasing resize: point-sampled downscales would alias and fake sharpness.
    .resize(side, side, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
  const grey = new Float64Array(side * side);
  for (let i = 0; i < grey.length; i++) {
    grey[i] = 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
  }
  return grey;
}

/** Variance of the 4-neighbour Laplacian over interior pixels. */
export function laplacianVariance(grey: ArrayLike<number>, width: number, height: number): number {
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const i = y * width + x;
      const v = grey[i - 1] + grey[i + 1] + grey[i - width] + grey[i + width] - 4 * grey[i];
      sum += v;
      sumSq += v * v;
      n++;
    }
  }
  if (n === 0) return 0;
  const mean = sum / n;
  return sumSq / n - mean * mean;
}

/** Roll from the eye line; yaw from where the nose sits between the ears once roll is undone. */
export function headPose(keypoints: Point[]): { yaw: number; roll: number } {
  const [rightEye, leftEye, nose, , rightEar, leftEar] = keypoints;
  const rollRad = Math.atan2(leftEye[1] - rightEye[1], leftEye[0] - rightEye[0]);
  // Only x along the de-rotated eye line matters for yaw.
  const along = (p: Point) => p[0] * Math.cos(rollRad) + p[1] * Math.sin(rollRad);
  const earMid = (along(rightEar) + along(leftEar)) / 2;
  const halfSpan = (along(leftEar) - along(rightEar)) / 2;
  // Ears collapsed or crossed means a profile view or garbage keypoints: let it read as extreme.
  const shift = (along(nose) - earMid) / Math.max(halfSpan, 1e-6);
  // Ears at +-R on the head's lateral axis, nose tip D in front: shift = (D / R) tan(yaw).
  return { yaw: toDegrees(Math.atan(shift / NOSE_DEPTH_OVER_HALF_EAR_SPAN)), roll: toDegrees(rollRad) };
}

export async function faceQuality(
  frame: RgbImage,
  detection: FaceDetection,
  side = SHARPNESS_SIDE,
): Promise<FaceQuality> {
  const grey = await greyCrop(frame, detection.box, side);
  return {
    size: Math.min(detection.box[2], detection.box[3]),
    sharpness: grey ? laplacianVariance(grey, side, side) : 0,
    ...headPose(detection.keypoints),
  };
}

export function passesQuality(q: FaceQuality, limits: QualityLimits): { ok: boolean; reasons: string[] } {
  const reasons: string[] = [];
  if (q.size < limits.minSize) reasons.push(`size ${q.size.toFixed(1)} px < ${limits.minSize}`);
  if (q.sharpness < limits.minSharpness)
    reasons.push(`sharpness ${q.sharpness.toFixed(1)} < ${limits.minSharpness}`);
  if (Math.abs(q.yaw) > limits.maxYaw)
    reasons.push(`|yaw| ${Math.abs(q.yaw).toFixed(1)}° > ${limits.maxYaw}°`);
  if (Math.abs(q.roll) > limits.maxRoll)
    reasons.push(`|roll| ${Math.abs(q.roll).toFixed(1)}° > ${limits.maxRoll}°`);
  return { ok: reasons.length === 0, reasons };
}

/**
 * How fit a face is to be matched, 0..1, for the quality-weighted decision (runtime/matching/match.ts): the
 * product of sharpness (0 at the limit, 1 at 8 times it), size (0 at the limit, 1 at twice it) and pose
 * (1 frontal, 0.5 at the yaw or roll limit).
 */
export function qualityScore(q: FaceQuality, limits: QualityLimits): number {
  const clamp01 = (x: number) => Math.max(0, Math.min(1, x));
  const sharp = clamp01(Math.log2(q.sharpness / Math.max(limits.minSharpness, 1e-6)) / 3);
  const size = clamp01(q.size / Math.max(limits.minSize, 1e-6) - 1);
  const turned = Math.max(Math.abs(q.yaw) / limits.maxYaw, Math.abs(q.roll) / limits.maxRoll);
  const pose = clamp01(1 - 0.5 * turned);
  return sharp * size * pose;
}
