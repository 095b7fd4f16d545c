// The face models: where each comes from, how it is fed, and what it is calibrated on.
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelManifest, ModelTask } from '../../runtime/models/manifest.ts';
import type { Graph } from '../../runtime/models/onnx/graph.ts';
import { PACKAGE_ROOT } from '../../runtime/paths.ts';
import type { InferenceEngine } from '../../runtime/types.ts';
import { rgbToNchw } from '../../runtime/vision/tensor.ts';
import type { CalibrationSample } from './calibration-set.ts';
import {
  buildFaceRecGraph,
  FACEREC_INPUT_SIZE,
  FACEREC_MEAN_RGB,
  FACEREC_STD,
  loadFaceRecWeights,
} from './facerec/build.ts';
import { buildGatedFaceRec, currentGatesDir, loadGates } from './gated/build.ts';
import { FACE_API, HUMAN, sourceFile, sourcePackage } from './sources.ts';
import { convertTfjsFile } from './tfjs/convert.ts';

/** Version of the models this toolchain builds; bump when the conversion or calibration changes. */
export const MODELS_VERSION = '1.0.0';

export type CalibrationFeed = Record<string, ort.Tensor>;
/** A model's outputs by name, as an InferenceEngine returns them. */
export type EngineOutputs = Awaited<ReturnType<InferenceEngine['run']>>;

export interface ModelSpec {
  name: string;
  task: ModelTask;
  input: ModelManifest['input'];
  outputs: ModelManifest['outputs'];
  source(): ModelManifest['source'];
  build(): Graph;
  /** One feed per usable sample. */
  calibrationInputs(samples: CalibrationSample[]): CalibrationFeed[];
  /** Calibration cost grows with activation size; large-activation models use an evenly spaced subset. */
  maxCalibrationSamples: number;
  /** How close an int8 output is to the fp32 one (1 = identical); used to pick the calibration method. */
  fidelity(fp32: EngineOutputs, int8: EngineOutputs): number;
  /** ReLU-zero gate parameters, for a gated model's manifest. */
  gates?(): Record<string, unknown>;
}

/** RGB bytes (HWC) -> normalised NCHW tensor, as the manifest's mean/std say. */
export function rgbToTensor(rgb: Buffer, size: number, mean: number[], std: number[]): ort.Tensor {
  return new ort.Tensor('float32', rgbToNchw(rgb, size, mean, std), [1, 3, size, size]);
}

function flatCosine(a: EngineOutputs, b: EngineOutputs): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const name of Object.keys(a)) {
    const x = a[name].data;
    const y = b[name].data;
    for (let i = 0; i < x.length; i++) {
      dot += x[i] * y[i];
      na += x[i] * x[i];
      nb += y[i] * y[i];
    }
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

function scoreAgreement(a: EngineOutputs, b: EngineOutputs): number {
  const name = Object.keys(a)[0];
  const x = a[name].data;
  const y = b[name].data;
  return 1 - Math.abs(x[x.length - 1] - y[y.length - 1]);
}

const PA_NORMALISATION = { channelOrder: 'RGB' as const, mean: [0, 0, 0], std: [255, 255, 255] };

/** The manifest's `source`: files of an npm package, at the version installed. */
function packageSource(pkg: string, files: string[]): ModelManifest['source'] {
  const src = sourcePackage(pkg);
  return { package: src.package, version: src.version, license: src.license, files };
}

/** Files of a tfjs graph in human's package; `name` is the graph's file stem. */
function humanTfjsFiles(name: string): string[] {
  return [`models/${name}.json`, `models/${name}.bin`];
}

/** A tfjs graph from human's package, converted, its input renamed to `input`. */
function convertHumanGraph(name: string): Graph {
  return renameInput(convertTfjsFile(sourceFile(sourcePackage(HUMAN), `models/${name}.json`), name));
}

/** A human model fed a square crop around the face, its one output `scores` wide; calibrated on the sample's crop of its name. */
function boxCropModel(
  name: 'antispoof' | 'liveness',
  task: ModelTask,
  size: number,
  scores: number,
  description: string,
): ModelSpec {
  const input = {
    name: 'input',
    layout: 'NCHW' as const,
    shape: [-1, 3, size, size],
    ...PA_NORMALISATION,
    description: `square box crop around the detected face (box enlarged 1.4x), ${size}x${size}, values 0..1`,
  };
  return {
    name,
    task,
    input,
    outputs: [{ name: 'Identity', shape: [-1, scores], description }],
    source: () => packageSource(HUMAN, humanTfjsFiles(name)),
    build: () => convertHumanGraph(name),
    calibrationInputs: (samples) =>
      samples.flatMap((s) => {
        const crop = s[name];
        return crop ? [{ input: rgbToTensor(crop, size, input.mean, input.std) }] : [];
      }),
    maxCalibrationSamples: 800,
    fidelity: scoreAgreement,
  };
}

/** Converted graphs keep tfjs' placeholder names; the runtime addresses every model's input as `input`. */
function renameInput(g: Graph): Graph {
  const old = g.inputs[0].name;
  g.inputs[0] = { ...g.inputs[0], name: 'input' };
  for (const n of g.nodes) n.inputs = n.inputs.map((i) => (i === old ? 'input' : i));
  return g;
}

/** FaceRecognitionNet as built from face-api's weights, or a variant of it (the gated embedder). */
function faceRecSpec(
  name: string,
  build: () => Graph,
  gates?: () => Record<string, unknown>,
  extraFiles: () => string[] = () => [],
): ModelSpec {
  return {
    name,
    task: 'face-embedding',
    input: {
      name: 'input',
      layout: 'NCHW',
      shape: [-1, 3, FACEREC_INPUT_SIZE, FACEREC_INPUT_SIZE],
      channelOrder: 'RGB',
      mean: FACEREC_MEAN_RGB,
      std: [FACEREC_STD, FACEREC_STD, FACEREC_STD],
      description: '150x150 face chip aligned by similarity transform onto the dlib template',
    },
    outputs: [
      { name: 'embedding', shape: [-1, 128], description: '128-d embedding (L2-normalise before cosine)' },
    ],
    source: () =>
      packageSource(FACE_API, [
        'model/face_recognition_model-weights_manifest.json',
        'model/face_recognition_model.bin',
        ...extraFiles(),
      ]),
    build,
    calibrationInputs: (samples) =>
      samples.map((s) => ({
        input: rgbToTensor(s.aligned, FACEREC_INPUT_SIZE, FACEREC_MEAN_RGB, [
          FACEREC_STD,
          FACEREC_STD,
          FACEREC_STD,
        ]),
      })),
    maxCalibrationSamples: Number.POSITIVE_INFINITY,
    fidelity: flatCosine,
    gates,
  };
}

/** The gates' files for the manifest's source: repository paths, or absolute for a candidate elsewhere. */
function gatesFiles(): string[] {
  return ['gates.json', 'gates.bin'].map((f) => {
    const path = join(currentGatesDir(), f);
    const inRepo = relative(PACKAGE_ROOT, path);
    return inRepo.startsWith('..') ? path : inRepo;
  });
}

/** What the manifest says of the gates: their design and what training measured (training/output). */
function gatesManifest(): Record<string, unknown> {
  const { doc } = loadGates();
  const training = JSON.parse(readFileSync(join(currentGatesDir(), 'manifest.json'), 'utf8'));
  return {
    pattern: 'docs/relu-zero.md',
    granularity: doc.granularity,
    threshold: doc.threshold,
    sites: doc.sites.map((s) => s.convs),
    training: {
      seed: training.seed,
      steps: training.steps,
      data: training.data.folders,
      heldOut: {
        skippedMacs: training.heldOut.skippedMacs,
        netSkippedMacs: training.heldOut.netSkippedMacs,
        cosine: training.heldOut.cosine,
      },
    },
  };
}

export const MODEL_SPECS: ModelSpec[] = [
  {
    name: 'blazeface',
    task: 'face-detection',
    input: {
      name: 'input',
      layout: 'NCHW',
      shape: [1, 3, 256, 256],
      channelOrder: 'RGB',
      mean: [127.5, 127.5, 127.5],
      std: [127.5, 127.5, 127.5],
      description: 'whole frame letterboxed (aspect kept, black padding) to 256x256, values -1..1',
    },
    outputs: [
      { name: 'Identity', shape: [1, 512, 1], description: 'logits, stride-16 anchors' },
      { name: 'Identity_1', shape: [1, 384, 1], description: 'logits, stride-32 anchors' },
      {
        name: 'Identity_2',
        shape: [1, 512, 16],
        description: 'box (cx, cy, w, h) + 6 keypoints, anchor-relative pixels, stride 16',
      },
      { name: 'Identity_3', shape: [1, 384, 16], description: 'box + keypoints, stride 32' },
    ],
    source: () => packageSource(HUMAN, humanTfjsFiles('blazeface')),
    build: () => convertHumanGraph('blazeface'),
    calibrationInputs: (samples) =>
      samples.map((s) => ({ input: new ort.Tensor('float32', s.detectorInput, [1, 3, 256, 256]) })),
    maxCalibrationSamples: 400,
    fidelity: flatCosine,
  },
  faceRecSpec('facerec', () =>
    buildFaceRecGraph(
      loadFaceRecWeights(
        sourceFile(sourcePackage(FACE_API), 'model/face_recognition_model-weights_manifest.json'),
      ),
    ),
  ),
  // The same network fine-tuned with ReLU-zero gates (training/, docs/relu-zero.md); not calibrated
  // on anything the plain embedder was not.
  faceRecSpec('facerec-gated', () => buildGatedFaceRec(), gatesManifest, gatesFiles),
  boxCropModel('antispoof', 'anti-spoof', 128, 1, 'real-face score 0..1 (human reads it as `real`)'),
  boxCropModel(
    'liveness',
    'liveness',
    32,
    2,
    'softmax; index 0 is the live score (human reads it as `live`)',
  ),
];
