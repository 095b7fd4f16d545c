// Calibration samples from lfw/calib (never lfw/dev), produced by the project's own fp32 detector and
// alignment, exactly as the runtime will produce them.
import { join } from 'node:path';
import { Progress } from '../../runtime/report/progress.ts';
import { listFaceFolder } from '../../runtime/util/face-folder.ts';
import { BLAZEFACE_INPUT_SIZE } from '../../runtime/vision/blazeface.ts';
import type { FaceDetector } from '../../runtime/vision/detector.ts';
import { alignedFaceCrop, boxCrop } from '../../runtime/vision/face-crop.ts';
import { decodeImage, letterbox } from '../../runtime/vision/image.ts';

export interface CalibrationSample {
  /** `<Person>/<file>` relative to the calib folder. */
  file: string;
  person: string;
  /** Detector input, NCHW [1,3,256,256] in [-1, 1]. */
  detectorInput: Float32Array;
  /** 150x150 aligned RGB crop (embedder). */
  aligned: Buffer;
  /** Box crops for the presentation-attack models (null when no face was found). */
  antispoof: Buffer | null;
  liveness: Buffer | null;
}

export function listCalibrationImages(dir: string, limit = Number.POSITIVE_INFINITY): string[] {
  const files = listFaceFolder(dir).map((photo) => photo.file);
  if (files.length === 0) throw new Error(`no calibration images under ${dir}`);
  return files.slice(0, limit);
}

export async function buildCalibrationSet(
  dir: string,
  files: string[],
  detector: FaceDetector,
  sizes: { antispoof: number; liveness: number },
): Promise<{ samples: CalibrationSample[]; noFace: number }> {
  const samples: CalibrationSample[] = [];
  let noFace = 0;
  const progress = new Progress('calibration faces', files.length);
  for (const file of files) {
    const image = await decodeImage(join(dir, file));
    const { crop, face } = await alignedFaceCrop(detector, image);
    if (!face) noFace++;
    samples.push({
      file,
      person: file.split('/')[0],
      detectorInput: (await letterbox(image, BLAZEFACE_INPUT_SIZE)).tensor.data,
      aligned: crop,
      antispoof: face ? await boxCrop(image, face, sizes.antispoof) : null,
      liveness: face ? await boxCrop(image, face, sizes.liveness) : null,
    });
    progress.tick();
  }
  progress.done();
  return { samples, noFace };
}
