// One interface for every inference backend (ONNX Runtime today, the native kernels later).

export interface TensorIn {
  data: Float32Array;
  dims: number[];
}

export interface InferenceEngine {
  readonly name: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs one batch; returns outputs by name as flat float arrays with their dims. */
  run(inputs: Record<string, TensorIn>): Promise<Record<string, { data: Float32Array; dims: number[] }>>;
  close(): Promise<void>;
}
