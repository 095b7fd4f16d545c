// ONNX Runtime behind the InferenceEngine interface.
import * as ort from 'onnxruntime-node';
import type { InferenceEngine, TensorIn } from '../types.ts';

export interface OrtOptions {
  threads?: number;
}

export class OrtEngine implements InferenceEngine {
  readonly name = 'ort';

  private constructor(private session: ort.InferenceSession) {}

  static async create(onnx: Uint8Array, opts: OrtOptions = {}): Promise<OrtEngine> {
    const session = await ort.InferenceSession.create(onnx, {
      intraOpNumThreads: opts.threads ?? 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      // Spinning workers burn the core the capture and decode stages need.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    return new OrtEngine(session);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(
    inputs: Record<string, TensorIn>,
  ): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor('float32', t.data, t.dims);
    const out = await this.session.run(feeds);
    const result: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const [name, t] of Object.entries(out))
      result[name] = { data: t.data as Float32Array, dims: [...t.dims] };
    return result;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
