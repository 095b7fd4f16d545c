// One int8 model on the kernels and on ONNX Runtime side by side, fed the real aligned faces: the
// fixture of the engine suites that compare the two.
import { afterAll, beforeAll } from 'vitest';
import { KernelsEngine } from '../../runtime/engine/kernels.ts';
import type { KernelsBinding } from '../../runtime/engine/kernels-addon.ts';
import { OrtEngine } from '../../runtime/engine/ort.ts';
import type { ModelManifest } from '../../runtime/models/manifest.ts';
import { alignedTrainFeeds } from './faces.ts';

export interface KernelsBesideOrt {
  feeds: Float32Array[];
  kernels: KernelsEngine;
  ort: OrtEngine;
}

/** Opens both engines and aligns the faces before the suite's tests, and closes the engines after;
 * the fields are set from the first test on. */
export function kernelsBesideOrt(
  binding: KernelsBinding,
  manifest: ModelManifest,
  onnx: Uint8Array,
): KernelsBesideOrt {
  const suite = {} as KernelsBesideOrt;
  beforeAll(async () => {
    suite.feeds = await alignedTrainFeeds(manifest);
    suite.kernels = new KernelsEngine(binding, onnx);
    suite.ort = await OrtEngine.create(onnx);
  });
  afterAll(async () => {
    await suite.kernels.close();
    await suite.ort.close();
  });
  return suite;
}
