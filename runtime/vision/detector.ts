// Face detection: letterbox the frame, run BlazeFace on an inference engine, decode, map back.
import type { InferenceEngine } from '../types.ts';
import {
  BLAZEFACE_INPUT_SIZE,
  type BlazeFaceDecodeOptions,
  decodeBlazeFace,
  detectionsToFrame,
  iou,
} from './blazeface.ts';
import { letterbox, type RgbImage } from './image.ts';
import type { FaceDetection } from './types.ts';

export const DEFAULT_DETECTION: FaceDetectorOptions = {
  minScore: 0.5,
  iouThreshold: 0.3,
  maxFaces: 10,
  mirrorAverage: true,
};

/** BlazeFace emits its two anchor grids as separate outputs: 512 (stride 16) then 384 (stride 32)
 * anchors, each as regressors [1, n, 16] and logits [1, n, 1]. Output names vary between
 * conversions, so they are told apart by shape, as human does. */
export function joinBlazeFaceOutputs(outputs: { data: Float32Array; dims: number[] }[]): {
  regressors: Float32Array;
  logits: Float32Array;
} {
  const pick = (anchors: number, width: number) => {
    const t = outputs.find((o) => o.dims[1] === anchors && o.dims[2] === width);
    if (!t) throw new Error(`BlazeFace model has no [1, ${anchors}, ${width}] output`);
    return t.data;
  };
  const concat = (a: Float32Array, b: Float32Array) => {
    const out = new Float32Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  };
  return { regressors: concat(pick(512, 16), pick(384, 16)), logits: concat(pick(512, 1), pick(384, 1)) };
}

export interface FaceDetectorOptions extends BlazeFaceDecodeOptions {
  /** Also detect on the mirrored frame and average the two: BlazeFace's keypoints scatter a few
   * pixels, and the mirror's error is largely independent, so alignment (and accuracy) improves. */
  mirrorAverage: boolean;
}

/** Keypoint order after mirroring: right and left swap. */
const MIRRORED_KEYPOINT = [1, 0, 2, 3, 5, 4];

export class FaceDetector {
  constructor(
    private engine: InferenceEngine,
    private options: FaceDetectorOptions = DEFAULT_DETECTION,
  ) {}

  async detect(image: RgbImage): Promise<FaceDetection[]> {
    const lb = await letterbox(image, BLAZEFACE_INPUT_SIZE);
    let faces = await this.run(lb.tensor.data);
    if (this.options.mirrorAverage && faces.length > 0) {
      const mirrored = (await this.run(mirror(lb.tensor.data, BLAZEFACE_INPUT_SIZE))).map((f) =>
        unmirror(f, BLAZEFACE_INPUT_SIZE),
      );
      faces = faces.map((f) => average(f, mirrored));
    }
    return detectionsToFrame(faces, lb.transform);
  }

  private async run(data: Float32Array): Promise<FaceDetection[]> {
    const size = BLAZEFACE_INPUT_SIZE;
    const out = await this.engine.run({ [this.engine.inputNames[0]]: { data, dims: [1, 3, size, size] } });
    const { regressors, logits } = joinBlazeFaceOutputs(Object.values(out));
    return decodeBlazeFace(regressors, logits, this.options);
  }
}

function mirror(nchw: Float32Array, size: number): Float32Array {
  const out = new Float32Array(nchw.length);
  for (let row = 0; row < nchw.length; row += size)
    for (let x = 0; x < size; x++) out[row + x] = nchw[row + size - 1 - x];
  return out;
}

function unmirror(f: FaceDetection, size: number): FaceDetection {
  return {
    box: [size - f.box[0] - f.box[2], f.box[1], f.box[2], f.box[3]],
    score: f.score,
    keypoints: MIRRORED_KEYPOINT.map((k) => [size - f.keypoints[k][0], f.keypoints[k][1]]),
  };
}

/** The mean of a detection and its best-overlapping mirrored twin (itself when there is none). */
function average(f: FaceDetection, mirrored: FaceDetection[]): FaceDetection {
  const twin = mirrored.reduce<FaceDetection | undefined>(
    (best, m) => (iou(f.box, m.box) > (best ? iou(f.box, best.box) : 0.5) ? m : best),
    undefined,
  );
  if (!twin) return f;
  return {
    box: [0, 1, 2, 3].map((i) => (f.box[i] + twin.box[i]) / 2) as FaceDetection['box'],
    score: f.score,
    keypoints: f.keypoints.map((p, k) => [
      (p[0] + twin.keypoints[k][0]) / 2,
      (p[1] + twin.keypoints[k][1]) / 2,
    ]),
  };
}
