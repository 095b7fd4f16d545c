// Opens a built model by name and precision: manifest verified, then handed to an inference engine.
import { openEngine } from '../engine/open.ts';
import type { InferenceEngine } from '../engine/types.ts';
import { loadModel, type ModelManifest, manifestPathFor, type Precision } from './manifest.ts';

export const MODEL_NAMES = {
  detector: 'blazeface',
  embedder: 'facerec',
  /** The embedder with ReLU-zero gates (docs/relu-zero.md); an alternative to `embedder`. */
  gatedEmbedder: 'facerec-gated',
  antispoof: 'antispoof',
  liveness: 'liveness',
} as const;

export type EngineKind = 'ort' | 'kernels';

export interface OpenModelOptions {
  dir: string;
  name: string;
  precision: Precision;
  threads?: number;
  /** 'kernels' runs int8 QDQ models natively, falling back to ORT (with a warning) when it cannot. */
  engine?: EngineKind;
}

export interface OpenedModel {
  manifest: ModelManifest;
  engine: InferenceEngine;
}

export async function openModel(opts: OpenModelOptions): Promise<OpenedModel> {
  const { manifest, onnx } = loadModel(manifestPathFor(opts.dir, opts.name, opts.precision));
  const engine = await openEngine(onnx, {
    engine: opts.engine ?? 'ort',
    threads: opts.threads,
    label: `${opts.name}.${opts.precision}`,
  });
  return { manifest, engine };
}
