// Builds small TensorFlow.js graph models in memory, so each converter op can be checked against
// TensorFlow.js itself running the same graph.
import * as tf from '@tensorflow/tfjs';
import type { TfjsModelJson, TfNode } from '../../tools/models/tfjs/convert.ts';
import type { WeightEntry, WeightTensor } from '../../tools/models/tfjs/weights.ts';

type Attr = NonNullable<TfNode['attr']>[string];

export const b64 = (s: string) => Buffer.from(s).toString('base64');
export const ints = (...v: number[]): Attr => ({ list: { i: v.map(String) } });
export const str = (s: string): Attr => ({ s: b64(s) });
export const strs = (...v: string[]): Attr => ({ list: { s: v.map(b64) } });
export const bool = (b: boolean): Attr => ({ b });
const FLOAT: Attr = { type: 'DT_FLOAT' };

export class TfGraphBuilder {
  nodes: TfNode[] = [];
  private specs: WeightEntry[] = [];
  private data: Float32Array[] = [];
  weights = new Map<string, WeightTensor>();

  placeholder(name: string, shape: number[]): string {
    this.nodes.push({
      name,
      op: 'Placeholder',
      attr: { dtype: FLOAT, shape: { shape: { dim: shape.map((s) => ({ size: String(s) })) } } },
    });
    return name;
  }

  const(
    name: string,
    shape: number[],
    values: number[] | Float32Array,
    dtype: 'float32' | 'int32' = 'float32',
  ): string {
    this.nodes.push({
      name,
      op: 'Const',
      attr: { dtype: { type: dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT' }, value: {} as Attr },
    });
    this.specs.push({ name, shape, dtype });
    const arr =
      dtype === 'int32'
        ? new Float32Array(new Int32Array(Array.from(values)).buffer)
        : Float32Array.from(values);
    this.data.push(arr);
    this.weights.set(name, {
      shape,
      dtype,
      values: dtype === 'int32' ? Int32Array.from(values) : Float32Array.from(values),
    });
    return name;
  }

  /** Deterministic pseudo-random constant. */
  random(name: string, shape: number[], seed = 1, scale = 0.5): string {
    const n = shape.reduce((a, b) => a * b, 1);
    return this.const(
      name,
      shape,
      Float32Array.from({ length: n }, (_, i) => scale * Math.sin(seed * 12.9898 + i * 78.233)),
    );
  }

  op(name: string, op: string, inputs: string[], attr: Record<string, Attr> = {}): string {
    this.nodes.push({ name, op, input: inputs, attr: { T: FLOAT, ...attr } });
    return name;
  }

  json(outputs: string[]): TfjsModelJson {
    return {
      format: 'graph-model',
      modelTopology: { node: this.nodes },
      weightsManifest: [{ paths: ['weights.bin'], weights: this.specs }],
      signature: { outputs: Object.fromEntries(outputs.map((o) => [o, { name: `${o}:0` }])) },
    };
  }

  async runTfjs(
    inputs: Record<string, { data: Float32Array; shape: number[] }>,
    outputs: string[],
  ): Promise<Float32Array[]> {
    const weightData = concat(this.data);
    const model = await tf.loadGraphModel(
      tf.io.fromMemory({
        modelTopology: { node: this.nodes, versions: { producer: 1, minConsumer: 0 } },
        weightSpecs: this.specs as tf.io.WeightsManifestEntry[],
        weightData,
      }),
    );
    const feeds: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(inputs)) feeds[k] = tf.tensor(v.data, v.shape);
    const result = (await model.executeAsync(feeds, outputs)) as tf.Tensor | tf.Tensor[];
    return (Array.isArray(result) ? result : [result]).map((t) => t.dataSync() as Float32Array);
  }
}

function concat(parts: Float32Array[]): ArrayBuffer {
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), offset);
    offset += p.byteLength;
  }
  return out.buffer;
}

export function nhwcToNchw(data: Float32Array, [n, h, w, c]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let ch = 0; ch < c; ch++)
          out[((b * c + ch) * h + y) * w + x] = data[((b * h + y) * w + x) * c + ch];
  return out;
}

export function randomInput(shape: number[], seed = 3): { data: Float32Array; shape: number[] } {
  const n = shape.reduce((a, b) => a * b, 1);
  return { data: Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 3.1 + i * 0.731) * 2), shape };
}
