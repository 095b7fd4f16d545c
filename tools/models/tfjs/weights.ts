// Reads TensorFlow.js weight manifests and their .bin shards, dequantizing as tfjs does.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface WeightEntry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number };
}

export interface WeightGroup {
  paths: string[];
  weights: WeightEntry[];
}

export interface WeightTensor {
  shape: number[];
  dtype: 'float32' | 'int32';
  values: Float32Array | Int32Array;
}

export class ModelFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'ModelFileError';
  }
}

const BYTES_PER_STORED: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 };

/** Reads `<dir>/<file>` or throws a ModelFileError that names it. */
export function readModelFile(path: string): Buffer {
  if (!existsSync(path)) throw new ModelFileError(path, 'missing');
  return readFileSync(path);
}

export function parseJsonFile<T>(path: string): T {
  const text = readModelFile(path).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new ModelFileError(path, `not valid JSON (${(e as Error).message})`);
  }
}

export function loadWeights(manifestPath: string, groups: WeightGroup[]): Map<string, WeightTensor> {
  const out = new Map<string, WeightTensor>();
  const dir = dirname(manifestPath);
  for (const group of groups) {
    const shardFiles = group.paths.map((p) => join(dir, p));
    const data = Buffer.concat(shardFiles.map(readModelFile));
    const needed = group.weights.reduce((sum, w) => sum + storedBytes(w), 0);
    if (data.length !== needed) {
      throw new ModelFileError(
        shardFiles.join('+'),
        `holds ${data.length} bytes but ${manifestPath} describes ${needed}: truncated or from another model`,
      );
    }
    let offset = 0;
    for (const w of group.weights) {
      const size = storedBytes(w);
      out.set(w.name, decodeWeight(w, data.subarray(offset, offset + size)));
      offset += size;
    }
  }
  return out;
}

function storedBytes(w: WeightEntry): number {
  const count = w.shape.reduce((a, b) => a * b, 1);
  const stored = w.quantization?.dtype ?? w.dtype;
  const bytes = BYTES_PER_STORED[stored];
  if (bytes === undefined) throw new Error(`weight ${w.name}: unsupported storage dtype ${stored}`);
  return count * bytes;
}

function decodeWeight(w: WeightEntry, bytes: Buffer): WeightTensor {
  // Copy into an aligned buffer: shards are concatenated, so offsets need not be multiples of 4.
  const raw = new Uint8Array(bytes).buffer;
  const q = w.quantization;
  let values: Float32Array | Int32Array;
  if (!q) {
    values = w.dtype === 'int32' ? new Int32Array(raw) : new Float32Array(raw);
  } else if (q.dtype === 'float16') {
    values = Float32Array.from(new Uint16Array(raw), halfToFloat);
  } else {
    // tfjs' affine dequantization: value = q * scale + min.
    const stored = q.dtype === 'uint8' ? new Uint8Array(raw) : new Uint16Array(raw);
    const scale = q.scale ?? 1;
    const min = q.min ?? 0;
    values = Float32Array.from(stored, (v) => v * scale + min);
    if (w.dtype === 'int32') values = Int32Array.from(values, Math.round);
  }
  return { shape: w.shape, dtype: w.dtype, values };
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}
