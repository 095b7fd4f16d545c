// The fp32 ONNX models reproduce the original TensorFlow.js models (run here with tfjs' CPU backend)
// on real faces: embedding cosine >= 0.9999, detector box IoU >= 0.99, scores within 1e-3.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { OrtEngine } from '../../../runtime/engine/ort.ts';
import { loadModel, manifestPathFor } from '../../../runtime/models/manifest.ts';
import { decodeBlazeFace } from '../../../runtime/vision/blazeface.ts';
import { DEFAULT_DETECTION, FaceDetector, joinBlazeFaceOutputs } from '../../../runtime/vision/detector.ts';
import { cosine, FaceEmbedder, normalize } from '../../../runtime/vision/embedder.ts';
import { alignedFaceCrop, boxCrop } from '../../../runtime/vision/face-crop.ts';
import { decodeImage, letterbox, type RgbImage } from '../../../runtime/vision/image.ts';
import type { FaceDetection } from '../../../runtime/vision/types.ts';
import { FACE_API, HUMAN, sourceFile, sourcePackage } from '../../../tools/models/sources.ts';
import { rgbToTensor } from '../../../tools/models/specs.ts';
import { FACES_DIR, MODELS_DIR } from '../../helpers/paths.ts';

const PHOTOS = [
  'face_recognition_examples/knn_examples/train/obama/obama.jpg',
  'face_recognition_examples/knn_examples/train/biden/biden.jpg',
  'face_recognition_examples/knn_examples/train/rose_leslie/img1.jpg',
  'face_recognition_examples/knn_examples/train/kit_harington/john1.jpeg',
  'face_recognition_examples/misc/lin-manuel-miranda.png',
  'face_recognition_examples/knn_examples/test/alex_lacamoire1.jpg',
].map((p) => join(FACES_DIR, p));

const openOrt = async (name: string) => {
  const { manifest, onnx } = loadModel(manifestPathFor(MODELS_DIR, name, 'fp32'));
  return { manifest, engine: await OrtEngine.create(onnx) };
};

async function loadTfjsGraph(name: string): Promise<tf.GraphModel> {
  const human = sourcePackage(HUMAN);
  const json = JSON.parse(readFileSync(sourceFile(human, `models/${name}.json`), 'utf8'));
  const bin = readFileSync(sourceFile(human, `models/${name}.bin`));
  return tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length),
    }),
  );
}

function nchwToNhwc(data: Float32Array, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) out[p * c + ch] = data[ch * h * w + p];
  return out;
}

function iou(a: FaceDetection['box'], b: FaceDetection['box']): number {
  const ix = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  return (ix * iy) / (a[2] * a[3] + b[2] * b[3] - ix * iy);
}

let images: RgbImage[];
let detector: FaceDetector;

beforeAll(async () => {
  await tf.setBackend('cpu');
  images = await Promise.all(PHOTOS.map((p) => decodeImage(p)));
  detector = new FaceDetector((await openOrt('blazeface')).engine);
});

describe('fp32 ONNX vs the original TensorFlow.js models', () => {
  it('BlazeFace: same faces, box IoU >= 0.99, scores within 1e-3', async () => {
    const original = await loadTfjsGraph('blazeface');
    const { engine } = await openOrt('blazeface');
    let compared = 0;
    for (const image of images) {
      const lb = await letterbox(image, 256);
      const ours = await engine.run({ input: lb.tensor });
      const theirs = original.execute(
        tf.tensor(nchwToNhwc(lb.tensor.data, 3, 256, 256), [1, 256, 256, 3]),
      ) as tf.Tensor[];
      const a = joinBlazeFaceOutputs(Object.values(ours));
      const b = joinBlazeFaceOutputs(
        theirs.map((t) => ({ data: t.dataSync() as Float32Array, dims: t.shape })),
      );
      const da = decodeBlazeFace(a.regressors, a.logits, DEFAULT_DETECTION);
      const db = decodeBlazeFace(b.regressors, b.logits, DEFAULT_DETECTION);
      expect(da.length).toBe(db.length);
      expect(da.length).toBeGreaterThan(0);
      da.forEach((d, i) => {
        expect(iou(d.box, db[i].box)).toBeGreaterThanOrEqual(0.99);
        expect(Math.abs(d.score - db[i].score)).toBeLessThanOrEqual(1e-3);
        compared++;
      });
    }
    expect(compared).toBeGreaterThanOrEqual(PHOTOS.length);
  });

  it('FaceRecognitionNet: embedding cosine >= 0.9999 on aligned real faces', async () => {
    const faceapi = createRequire(import.meta.url)('@vladmandic/face-api/dist/face-api.node-wasm.js');
    const net = new faceapi.FaceRecognitionNet();
    await net.loadFromDisk(join(sourcePackage(FACE_API).dir, 'model'));
    const { manifest, engine } = await openOrt('facerec');
    // The model itself, without the runtime's mirror averaging.
    const embedder = new FaceEmbedder(engine, manifest, false);
    for (const image of images) {
      const { crop, face } = await alignedFaceCrop(detector, image);
      expect(face).toBeDefined();
      const [ours] = await embedder.embed([crop]);
      const theirs = normalize(
        (await net.computeFaceDescriptor(tf.tensor3d(crop, [150, 150, 3], 'int32'))) as Float32Array,
      );
      expect(cosine(ours, theirs)).toBeGreaterThanOrEqual(0.9999);
    }
  });

  for (const [name, size, index] of [
    ['antispoof', 128, 0],
    ['liveness', 32, 1],
  ] as const) {
    it(`${name}: outputs within 1e-3`, async () => {
      const original = await loadTfjsGraph(name);
      const { manifest, engine } = await openOrt(name);
      for (const image of images) {
        const [face] = await detector.detect(image);
        const crop = await boxCrop(image, face, size);
        const input = rgbToTensor(crop, size, manifest.input.mean, manifest.input.std);
        const ours = (
          await engine.run({ input: { data: input.data as Float32Array, dims: [1, 3, size, size] } })
        )[manifest.outputs[0].name].data;
        const theirs = (
          original.execute(
            tf.tensor(nchwToNhwc(input.data as Float32Array, 3, size, size), [1, size, size, 3]),
          ) as tf.Tensor
        ).dataSync();
        expect(Math.abs(ours[index] - theirs[index])).toBeLessThanOrEqual(1e-3);
      }
    });
  }
});
