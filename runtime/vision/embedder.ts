// Face embedding: aligned RGB crops -> normalised NCHW batch -> engine -> unit-length embeddings.

import type { ModelManifest } from '../models/manifest.ts';
import type { InferenceEngine } from '../types.ts';
import { rgbToNchw } from './tensor.ts';

export class FaceEmbedder {
  readonly size: number;
  private readonly mean: number[];
  private readonly std: number[];

  constructor(
    private engine: InferenceEngine,
    readonly manifest: ModelManifest,
    private mirrorAverage = true,
  ) {
    if (manifest.task !== 'face-embedding')
      throw new Error(`model ${manifest.name} is a ${manifest.task} model, not an embedder`);
    this.size = manifest.input.shape[3];
    this.mean = manifest.input.mean;
    this.std = manifest.input.std;
  }

  /** Each crop is size*size*3 packed RGB. With `mirrorAverage` each crop is embedded together with its
   * mirror image and the two summed: the standard flip test-time augmentation, measured to help on LFW. */
  async embed(crops: Buffer[]): Promise<Float32Array[]> {
    if (crops.length === 0) return [];
    if (this.mirrorAverage) {
      const both = await this.embedRaw([...crops, ...crops.map((c) => mirrorRgb(c, this.size))]);
      return crops.map((_, n) => normalize(both[n].map((v, i) => v + both[n + crops.length][i])));
    }
    return (await this.embedRaw(crops)).map(normalize);
  }

  private async embedRaw(crops: Buffer[]): Promise<Float32Array[]> {
    const plane = this.size * this.size;
    const data = new Float32Array(crops.length * 3 * plane);
    crops.forEach((crop, n) => {
      rgbToNchw(crop, this.size, this.mean, this.std, data, n * 3 * plane);
    });
    const out = await this.engine.run({
      [this.manifest.input.name]: { data, dims: [crops.length, 3, this.size, this.size] },
    });
    const emb = out[this.manifest.outputs[0].name];
    const dim = emb.dims[1];
    return crops.map((_, n) => emb.data.slice(n * dim, (n + 1) * dim));
  }
}

/** The crop flipped left-right. Plain byte moves: a Buffer.copy per pixel made Node allocate a Uint8Array
 * view per call (22,500 per 150x150 crop, ~30 MB/s of V8 heap garbage at 30 fps), and that churn is what
 * grew V8's young generation and RSS over a long run (docs/benchmarks.md). */
export function mirrorRgb(rgb: Uint8Array, size: number): Buffer {
  if (rgb.length !== size * size * 3)
    throw new Error(
      `expected a ${size}x${size} RGB image (${size * size * 3} bytes), got ${rgb.length} bytes`,
    );
  const out = Buffer.allocUnsafe(rgb.length);
  const stride = size * 3;
  for (let row = 0; row < rgb.length; row += stride) {
    for (let x = 0, from = row + stride - 3; x < stride; x += 3, from -= 3) {
      out[row + x] = rgb[from];
      out[row + x + 1] = rgb[from + 1];
      out[row + x + 2] = rgb[from + 2];
    }
  }
  return out;
}

export function normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const inv = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  return v.map((x) => x * inv);
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot;
}
