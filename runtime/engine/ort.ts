// ONNX Runtime behind the InferenceEngine interface.
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { InferenceEngine, TensorIn } from '../types.ts';

/**
 * Whether ONNX Runtime's int8 convolutions can saturate on this CPU. On x86-64 without VNNI, its MLAS
 * kernels multiply u8 activations by s8 weights with vpmaddubsw, which clamps each pair's sum to int16,
 * so results drift from exact int8 arithmetic (the int8 embedder then sits at cosine ~0.97 to its exact
 * output; docs/kernels.md). VNNI (vpdpbusd) and ARM accumulate in int32 and are exact; so are the native
 * kernels on every ISA. `cpuinfo` is /proc/cpuinfo's text (tests pass their own).
 */
export function ortInt8Saturates(arch: string = process.arch, cpuinfo?: string): boolean {
  if (arch !== 'x64') return false;
  const text = cpuinfo ?? readCpuinfo();
  const flags = /^flags\s*:(.*)$/m.exec(text)?.[1].split(/\s+/) ?? [];
  return !flags.includes('avx512_vnni') && !flags.includes('avx_vnni');
}

function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

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
