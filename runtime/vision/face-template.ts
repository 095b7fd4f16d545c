// Where FaceRecognitionNet wants the face: dlib's 150x150 face chip (its 68-landmark mean face, padding
// 0.25). The points are where *our* detector's keypoints land on real dlib chips, so the similarity
// transform maps BlazeFace keypoints straight onto the chip geometry the embedder was trained on.
// Derived by deriveTemplatePoints() in tools/models/derive-template.ts (mean over the 55
// dlib-aligned chips in test/fixtures/faces/dlib_examples/johns, each centred on a black 450x450 canvas, with the
// detector's default mirror averaging;
// a test and every calibration re-derive it, docs/data.md). Only eyes and mouth are used: on those chips BlazeFace's nose point scatters
// ~5 px and its ear points ~11 px, against under 3 px for eyes and mouth.
import type { AlignTemplate } from './align.ts';

export const FACEREC_TEMPLATE: AlignTemplate = {
  size: 150,
  indices: [0, 1, 3], // rightEye, leftEye, mouth
  points: [
    [47.06, 47.42],
    [100.91, 47.95],
    [73.83, 105.77],
  ],
};
