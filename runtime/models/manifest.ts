// Model manifests: the JSON beside each .onnx file. Loading a model always goes through here, so a
// model whose bytes do not match its manifest never reaches an inference engine.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import type { InferenceEngine } from '../types.ts';
import schema from './manifest.schema.json' with { type: 'json' };

export type ModelTask = 'face-detection' | 'face-embedding' | 'anti-spoof' | 'liveness';
export type Precision = 'fp32' | 'int8';
export type CalibrationMethodName = 'minmax' | 'percentile' | 'entropy';

export interface ModelManifest {
  schemaVersion: 1;
  name: string;
  version: string;
  task: ModelTask;
  file: string;
  sha256: string;
  bytes: number;
  precision: Precision;
  input: {
    name: string;
    layout: 'NCHW';
    shape: number[];
    channelOrder: 'RGB' | 'BGR';
    mean: number[];
    std: number[];
    description?: string;
  };
  outputs: { name: string; shape: number[]; description?: string }[];
  quantization?: {
    format: 'QDQ';
    weights: 'int8 symmetric per-channel';
    activations: 'uint8 asymmetric per-tensor';
    method: CalibrationMethodName;
    percentile?: number;
    calibration: { dataset: string; samples: number; heldOut?: number };
    methodFidelity?: Partial<Record<CalibrationMethodName, number>>;
    quantizedTensors?: number;
  };
  thresholds?: {
    far: { '0.01': number; '0.001': number };
    /** [FAR, threshold] from FAR 0.1 down to the lowest the calibration measured; absent in older manifests. */
    curve?: [number, number][];
    measuredOn: string;
    impostorPairs: number;
    genuinePairs: number;
  };
  source: { package: string; version: string; files: string[]; license?: string };
  gates?: Record<string, unknown>;
  /** Allows installing this version over a newer one; honoured only on a signed manifest. */
  rollback?: boolean;
  signature?: { algorithm: 'ed25519'; keyId: string; value: string };
}

export class ManifestError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`model manifest ${path}: ${reason}`);
    this.name = 'ManifestError';
  }
}

const validator = new Ajv({ allErrors: true }).compile(schema);

export function validateManifest(value: unknown): string[] {
  if (validator(value)) return curveProblems(value as unknown as ModelManifest);
  // "field input.shape must be array", "the manifest must have required property 'file'".
  return (validator.errors ?? []).map(
    (e) =>
      `${e.instancePath ? `field ${e.instancePath.slice(1).replaceAll('/', '.')}` : 'the manifest'} ${e.message}`,
  );
}

/**
 * A curve the schema admits can still contradict itself: thresholds are interpolated between its points,
 * so it must be ordered, and it must agree with the two FAR points the update policy checks.
 */
function curveProblems(manifest: ModelManifest): string[] {
  const thresholds = manifest.thresholds;
  if (!thresholds?.curve) return [];
  const { curve, far } = thresholds;
  const problems: string[] = [];
  for (let i = 1; i < curve.length; i++)
    if (!(curve[i][0] < curve[i - 1][0] && curve[i][1] >= curve[i - 1][1]))
      problems.push(
        `field thresholds.curve[${i}] must have a lower FAR and no lower threshold than the point before it`,
      );
  for (const key of ['0.01', '0.001'] as const) {
    const point = curve.find(([f]) => f === Number(key));
    if (!point || point[1] !== far[key])
      problems.push(`field thresholds.curve must contain [${key}, ${far[key]}], the point of thresholds.far`);
  }
  return problems;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function manifestPathFor(dir: string, name: string, precision: Precision): string {
  return join(dir, `${name}.${precision}.json`);
}

export interface LoadedModel {
  manifest: ModelManifest;
  manifestPath: string;
  onnx: Uint8Array;
}

/** Reads a manifest and its model, verifying schema, size and sha256. */
export function loadModel(manifestPath: string): LoadedModel {
  if (!existsSync(manifestPath)) throw new ManifestError(manifestPath, 'missing (run `npm run models`)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (e) {
    throw new ManifestError(manifestPath, `not valid JSON (${(e as Error).message})`);
  }
  const errors = validateManifest(parsed);
  if (errors.length > 0) throw new ManifestError(manifestPath, `invalid: ${errors.join('; ')}`);
  const manifest = parsed as ModelManifest;
  const onnxPath = join(dirname(manifestPath), manifest.file);
  if (basename(onnxPath) !== manifest.file)
    throw new ManifestError(manifestPath, `file "${manifest.file}" must be a plain name`);
  if (!existsSync(onnxPath)) throw new ManifestError(manifestPath, `model file ${onnxPath} is missing`);
  const onnx = readFileSync(onnxPath);
  if (onnx.length !== manifest.bytes) {
    throw new ManifestError(
      manifestPath,
      `${manifest.file} has ${onnx.length} bytes, the manifest says ${manifest.bytes} (truncated or replaced)`,
    );
  }
  const digest = sha256(onnx);
  if (digest !== manifest.sha256) {
    throw new ManifestError(
      manifestPath,
      `${manifest.file} sha256 ${digest} does not match the manifest's ${manifest.sha256} (tampered or corrupt)`,
    );
  }
  return { manifest, manifestPath, onnx };
}

export const MODEL_NAMES = {
  detector: 'blazeface',
  embedder: 'facerec',
  /** The embedder with ReLU-zero gates (docs/relu-zero.md); an alternative to `embedder`. */
  gatedEmbedder: 'facerec-gated',
  antispoof: 'antispoof',
  liveness: 'liveness',
} as const;

export interface OpenedModel {
  manifest: ModelManifest;
  engine: InferenceEngine;
}
