// Derives FACEREC_TEMPLATE: runs the detector on dlib-aligned 150x150 chips and averages where its
// keypoints land.
import { join } from 'node:path';
import sharp from 'sharp';
import { listFaceFolder } from '../../runtime/util/face-folder.ts';
import type { FaceDetector } from '../../runtime/vision/detector.ts';
import { decodeImage } from '../../runtime/vision/image.ts';
import type { Point } from '../../runtime/vision/types.ts';

const CANVAS_PAD = 150;

/** `chipsDir`: a face folder of 150x150 dlib face chips (DLIB_CHIPS_DIR). */
export async function deriveTemplatePoints(
  detector: FaceDetector,
  indices: number[],
  chipsDir: string,
): Promise<Point[]> {
  const files = listFaceFolder(chipsDir).map((photo) => join(chipsDir, photo.file));
  const sums = indices.map(() => [0, 0]);
  let found = 0;
  for (const file of files) {
    // Centred on a larger canvas the face has the size BlazeFace sees at a door (a third of the frame).
    const padded = await sharp(file)
      .removeAlpha()
      .extend({
        top: CANVAS_PAD,
        bottom: CANVAS_PAD,
        left: CANVAS_PAD,
        right: CANVAS_PAD,
        background: '#000',
      })
      .png()
      .toBuffer();
    const [face] = await detector.detect(await decodeImage(padded));
    if (!face) continue;
    found++;
    indices.forEach((k, i) => {
      sums[i][0] += face.keypoints[k][0] - CANVAS_PAD;
      sums[i][1] += face.keypoints[k][1] - CANVAS_PAD;
    });
  }
  if (found === 0) throw new Error(`no face found on any chip in ${chipsDir}`);
  return sums.map(([x, y]) => [Math.round((x / found) * 100) / 100, Math.round((y / found) * 100) / 100]);
}
