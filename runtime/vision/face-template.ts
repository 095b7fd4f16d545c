// Where FaceRecognitionNet wants the face: dlib's 150x150 face chip (its 68-landmark mean face, padding
// 0.25). The points are where *our* detector's keypoints land on real dlib chips, so the similarity
// transform maps BlazeFace keypoints straight onto the chip geometry the embedder was trained on.
// Derived by deriveTemplatePoints() in runtime/models/build/derive-template.ts (mean over the 55
// dlib-aligned chips in shared/data/faces/dlib_examples/johns, each centred on a black 450x450 canvas;
// a test re-derives it); ears are left out:
// BlazeFace's ear points scatter ~11 px on them against ~3 px for the eyes.
import type { AlignTemplate } from './align.ts';

export const FACEREC_TEMPLATE: AlignTemplate = {
  size: 150,
  indices: [0, 1, 2, 3], // rightEye, leftEye, nose, mouth
  points: [
    [46.61, 47.59],
    [100.41, 48.04],
    [74.42, 78.44],
    [73.88, 105.91],
  ],
};
