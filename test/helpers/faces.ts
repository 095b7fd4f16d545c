// Real aligned faces for engine tests: the benchmark's faces (every training photo of the
// face_recognition examples, detected and aligned as the pipeline does), as normalised NCHW inputs of
// the given embedder manifest.
import { alignedFaces } from '../../runtime/bench/embedder.ts';
import type { ModelManifest } from '../../runtime/models/manifest.ts';
import { rgbToNchw } from '../../runtime/vision/tensor.ts';
import { MODELS_DIR } from './paths.ts';

export async function alignedTrainFeeds(manifest: ModelManifest): Promise<Float32Array[]> {
  const size = manifest.input.shape[3];
  return (await alignedFaces(MODELS_DIR)).map((crop) =>
    rgbToNchw(crop, size, manifest.input.mean, manifest.input.std),
  );
}
