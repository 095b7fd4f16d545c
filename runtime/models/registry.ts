// Opens a built model by name and precision: manifest verified, then handed to an inference engine.
import { OrtEngine } from '../engine/ort.ts';
import type { InferenceEngine } from '../engine/types.ts';
import { loadModel, type ModelManifest, manifestPathFor, type Precision } from './manifest.ts';

export const MODEL_NAMES = {
  detector: 'blazeface',
  embedder: 'facerec',
  antispoof: 'antispoof',
  liveness: 'liveness',
} as const;

export type EngineKind = 'ort' | 'kernels';

export interface OpenModelOptions {
  dir: string;
  name: string;
  precision: Precision;
  threads?: number;
}

export interface OpenedModel {
  manifest: ModelManifest;
  engine: InferenceEngine;
}

export async function openModel(opts: OpenModelOptions): Promise<OpenedModel> {
  const { manifest, onnx } = loadModel(manifestPathFor(opts.dir, opts.name, opts.precision));
  return { manifest, engine: await OrtEngine.create(onnx, { threads: opts.threads }) };
}
