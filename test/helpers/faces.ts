// Real aligned faces for engine tests: every training photo of the face_recognition examples, detected
// and aligned as the pipeline does, as normalised NCHW inputs of the given embedder manifest.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelManifest } from '../../runtime/models/manifest.ts';
import { openModel } from '../../runtime/models/registry.ts';
import { FaceDetector } from '../../runtime/vision/detector.ts';
import { alignedFaceCrop } from '../../runtime/vision/face-crop.ts';
import { decodeImage } from '../../runtime/vision/image.ts';
import { rgbToNchw } from '../../runtime/vision/tensor.ts';
import { FACES_DIR, MODELS_DIR } from './paths.ts';

const TRAIN = join(FACES_DIR, 'face_recognition_examples', 'knn_examples', 'train');

export async function alignedTrainFeeds(manifest: ModelManifest): Promise<Float32Array[]> {
  const detectorModel = await openModel({ dir: MODELS_DIR, name: 'blazeface', precision: 'fp32' });
  const detector = new FaceDetector(detectorModel.engine);
  const size = manifest.input.shape[3];
  const feeds: Float32Array[] = [];
  try {
    for (const person of readdirSync(TRAIN).sort())
      for (const file of readdirSync(join(TRAIN, person)).sort()) {
        const { crop, face } = await alignedFaceCrop(detector, await decodeImage(join(TRAIN, person, file)));
        if (!face) throw new Error(`no face found in ${person}/${file}`);
        feeds.push(rgbToNchw(crop, size, manifest.input.mean, manifest.input.std));
      }
  } finally {
    await detectorModel.engine.close();
  }
  return feeds;
}
