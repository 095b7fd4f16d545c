// The alignment template is where our detector puts its keypoints on dlib-aligned face chips.
import { describe, expect, it } from 'vitest';
import { OrtEngine } from '../../../runtime/engine/ort.ts';
import { loadModel, manifestPathFor } from '../../../runtime/models/manifest.ts';
import { FaceDetector } from '../../../runtime/vision/detector.ts';
import { FACEREC_TEMPLATE } from '../../../runtime/vision/face-template.ts';
import { deriveTemplatePoints } from '../../../tools/models/derive-template.ts';
import { FACES_DIR, MODELS_DIR } from '../../helpers/paths.ts';

describe('FACEREC_TEMPLATE', () => {
  it('matches a fresh derivation from the dlib chips within 0.5 px', async () => {
    const detector = new FaceDetector(
      await OrtEngine.create(loadModel(manifestPathFor(MODELS_DIR, 'blazeface', 'fp32')).onnx),
    );
    const points = await deriveTemplatePoints(
      detector,
      FACEREC_TEMPLATE.indices,
      `${FACES_DIR}/dlib_examples/johns`,
    );
    points.forEach(([x, y], i) => {
      expect(Math.abs(x - FACEREC_TEMPLATE.points[i][0])).toBeLessThan(0.5);
      expect(Math.abs(y - FACEREC_TEMPLATE.points[i][1])).toBeLessThan(0.5);
    });
  });
});
