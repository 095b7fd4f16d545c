// The native int8 kernels behind the InferenceEngine interface: the QDQ model lowered once into a
// Network plan (batch 1, NHWC), run once per batch item.

import type { OnnxModel } from '../models/onnx/reader.ts';
import type { InferenceEngine, TensorIn } from '../types.ts';
import type { KernelsBinding, NetworkOp, RunMacs } from './kernels-addon.ts';
import { type LoweredModel, lowerQdqModel } from './lower.ts';

export class KernelsEngine implements InferenceEngine {
  readonly name = 'kernels';
  readonly model: LoweredModel;
  private network: NetworkOp | null;

  /** Throws (LoweringError) when the model is not an int8 QDQ model the kernels can run. */
  constructor(
    binding: KernelsBinding,
    /** The model's bytes, or the model already read (e.g. changed in memory by eval sweep). */
    onnx: Uint8Array | OnnxModel,
    /** Threads per run; 1 by default, like OrtEngine. */
    readonly threads = 1,
  ) {
    this.model = lowerQdqModel(onnx);
    this.network = new binding.Network({ ...this.model.plan, threads });
  }

  get inputNames(): readonly string[] {
    return [this.model.input.name];
  }

  get outputNames(): readonly string[] {
    return [this.model.output.name];
  }

  async run(
    inputs: Record<string, TensorIn>,
  ): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
    if (!this.network) throw new Error('kernels engine: run() after close()');
    const { name, channels: c, height: h, width: w } = this.model.input;
    const t = inputs[name];
    const names = Object.keys(inputs);
    if (!t || names.length !== 1)
      throw new Error(`kernels engine: expected the single input "${name}", got [${names.join(', ')}]`);
    const n = t.dims[0];
    if (
      t.dims.length !== 4 ||
      !Number.isInteger(n) ||
      n < 1 ||
      t.dims[1] !== c ||
      t.dims[2] !== h ||
      t.dims[3] !== w
    )
      throw new Error(`kernels engine: input dims [${t.dims.join(', ')}] must be [N, ${c}, ${h}, ${w}]`);
    const itemSize = c * h * w;
    if (t.data.length !== n * itemSize)
      throw new Error(
        `kernels engine: input has ${t.data.length} values, dims [${t.dims.join(', ')}] need ${n * itemSize}`,
      );
    const size = this.model.output.size;
    const { scale, zeroPoint } = this.model.input;
    // One native call for the batch: with 2+ threads its items (a face and its mirror) run side by side.
    const out = this.network.runFloat(t.data, scale, zeroPoint, this.threads) as Float32Array;
    return { [this.model.output.name]: { data: out, dims: [n, size] } };
  }

  /** Multiply-accumulates of the last batch, summed over its items (what ReLU-zero prediction skipped). */
  lastRunMacs(): RunMacs {
    if (!this.network) throw new Error('kernels engine: lastRunMacs() after close()');
    return this.network.lastRunMacs;
  }

  /** Each plan op's wall time in the last run (its first batch item), labelled `op:tensor`. */
  lastRunProfile(): { op: string; micros: number }[] {
    if (!this.network) throw new Error('kernels engine: lastRunProfile() after close()');
    const micros = this.network.lastRunOpMicros;
    // A gate's mask tensor has no ONNX name of its own: it is named after the first conv it gates.
    const gated = (id: number) => this.model.gates.find((g) => g.mask === id)?.conv;
    return this.model.plan.ops.map((op, k) => ({
      op: `${op.op}:${(op.op === 'gate' ? gated(op.output) : this.model.tensorNames[op.output]) ?? op.output}`,
      micros: micros[k] ?? 0,
    }));
  }

  /** Each ReLU-zero gate's mask in the last run (its first batch item; 1 = open), before the conv1
   * widening, with the conv it gates. Empty for a model without gates. */
  lastGateMasks(): { conv: string; mask: Uint8Array; dilate: number }[] {
    const network = this.network;
    if (!network) throw new Error('kernels engine: lastGateMasks() after close()');
    return this.model.gates.map((g) => ({
      conv: g.conv,
      mask: network.tensor(g.mask) as Uint8Array,
      dilate: g.dilate,
    }));
  }

  async close(): Promise<void> {
    this.network = null;
  }
}
