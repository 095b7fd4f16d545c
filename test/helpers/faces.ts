// Real aligned faces for engine tests: every training photo of the face_recognition examples, detected
// and aligned as the pipeline does, as normalised NCHW inputs of the given embedder manifest.
import { join } from 'node:path';
import { openModel } from '../../runtime/engine/registry.ts';
import type { ModelManifest } from '../../runtime/models/manifest.ts';
import { TRAIN_FACES_DIR } from '../../runtime/paths.ts';
import { listFaceFolder } from '../../runtime/util/face-folder.ts';
import { FaceDetector } from '../../runtime/vision/detector.ts';
import { alignedFaceCrop } from '../../runtime/vision/face-crop.ts';
import { decodeImage } from '../../runtime/vision/image.ts';
import { rgbToNchw } from '../../runtime/vision/tensor.ts';
import { MODELS_DIR } from './paths.ts';

export async function alignedTrainFeeds(manifest: ModelManifest): Promise<Float32Array[]> {
  const detectorModel = await openModel({ dir: MODELS_DIR, name: 'blazeface', precision: 'fp32' });
  const detector = new FaceDetector(detectorModel.engine);
  const size = manifest.input.shape[3];
  const feeds: Float32Array[] = [];
  try {
    for (const { file } of listFaceFolder(TRAIN_FACES_DIR)) {
      const { crop, face } = await alignedFaceCrop(detector, await decodeImage(join(TRAIN_FACES_DIR, file)));
      if (!face) throw new Error(`no face found in ${file}`);
      feeds.push(rgbToNchw(crop, size, manifest.input.mean, manifest.input.std));
    }
  } finally {
    await detectorModel.engine.close();
  }
  return feeds;
}
