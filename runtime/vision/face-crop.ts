// The crops the models see: the aligned face chip for the embedder, and the square box crop for the
// presentation-attack models (human's face tensor: the detector box enlarged and squared).
import { alignFace, centreCrop, type Matrix2x3, warpAffine } from './align.ts';
import type { FaceDetector } from './detector.ts';
import { FACEREC_TEMPLATE } from './face-template.ts';
import type { RgbImage } from './image.ts';
import type { FaceDetection } from './types.ts';

/** The face a portrait-style photo is about: the most central of the large detections. */
export function primaryFace(
  faces: FaceDetection[],
  width: number,
  height: number,
): FaceDetection | undefined {
  const largest = Math.max(0, ...faces.map((f) => f.box[2] * f.box[3]));
  const distance = (f: FaceDetection) =>
    Math.hypot(f.box[0] + f.box[2] / 2 - width / 2, f.box[1] + f.box[3] / 2 - height / 2);
  return faces.filter((f) => f.box[2] * f.box[3] >= largest / 2).sort((a, b) => distance(a) - distance(b))[0];
}

/** Detect, align, or fall back to a centre crop (face undefined): what the embedder sees for a photo. */
export async function alignedFaceCrop(
  detector: FaceDetector,
  image: RgbImage,
): Promise<{ crop: Buffer; face?: FaceDetection }> {
  const face = primaryFace(await detector.detect(image), image.width, image.height);
  if (face) return { crop: (await alignFace(image, face.keypoints, FACEREC_TEMPLATE)).rgb, face };
  return { crop: (await centreCrop(image, FACEREC_TEMPLATE.size)).rgb };
}

/** human enlarges BlazeFace boxes by 1.4 before cropping the face. */
export const BOX_ENLARGE = 1.4;

export async function boxCrop(
  image: RgbImage,
  face: FaceDetection,
  size: number,
  enlarge = BOX_ENLARGE,
): Promise<Buffer> {
  const [x, y, w, h] = face.box;
  const side = Math.max(w, h) * enlarge;
  const s = size / side;
  const cx = x + w / 2;
  const cy = y + h / 2;
  const m: Matrix2x3 = [
    [s, 0, size / 2 - s * cx],
    [0, s, size / 2 - s * cy],
  ];
  return warpAffine(image, m, size);
}
