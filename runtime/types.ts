// Types that folders at several levels of the data flow share (as zigbee2mqtt's lib/types/), kept here so
// that sharing one never makes a lower folder import a higher one. It imports nothing.

/** A value, or a promise of one: what injected callbacks may answer. */
export type Awaitable<T> = T | Promise<T>;

/** [x, y, width, height] in pixels of the camera frame. */
export type Box = [number, number, number, number];

/** The inference backends: ONNX Runtime, or the native kernels (docs/kernels.md). */
export type EngineKind = 'ort' | 'kernels';

export interface TensorIn {
  data: Float32Array;
  dims: number[];
}

/** One interface for every inference backend. */
export interface InferenceEngine {
  readonly name: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs one batch; returns outputs by name as flat float arrays with their dims. */
  run(inputs: Record<string, TensorIn>): Promise<Record<string, { data: Float32Array; dims: number[] }>>;
  close(): Promise<void>;
}
