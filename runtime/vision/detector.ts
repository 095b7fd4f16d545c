// Face detection: letterbox the frame, run BlazeFace on an inference engine, decode, map back.
import type { InferenceEngine } from '../engine/types.ts';
import {
  BLAZEFACE_INPUT_SIZE,
  type BlazeFaceDecodeOptions,
  decodeBlazeFace,
  detectionsToFrame,
} from './blazeface.ts';
import { letterbox, type RgbImage } from './image.ts';
import type { FaceDetection } from './types.ts';

export const DEFAULT_DETECTION: BlazeFaceDecodeOptions = { minScore: 0.5, iouThreshold: 0.3, maxFaces: 10 };

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

export class FaceDetector {
  constructor(
    private engine: InferenceEngine,
    private options: BlazeFaceDecodeOptions = DEFAULT_DETECTION,
  ) {}

  async detect(image: RgbImage): Promise<FaceDetection[]> {
    const lb = await letterbox(image, BLAZEFACE_INPUT_SIZE);
    const out = await this.engine.run({ [this.engine.inputNames[0]]: lb.tensor });
    const { regressors, logits } = joinBlazeFaceOutputs(Object.values(out));
    return detectionsToFrame(decodeBlazeFace(regressors, logits, this.options), lb.transform);
  }
}
