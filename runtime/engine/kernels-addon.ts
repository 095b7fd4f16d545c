// Loader and types for the native int8 kernels (kernels/, see docs/kernels.md).
// Loading never throws: without the built addon the runtime keeps using ONNX Runtime.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defaultLogger, type Logger } from '../util/log.ts';

export type KernelIsa = 'avx512-vnni' | 'avx-vnni' | 'avx2' | 'neon-dotprod' | 'neon' | 'scalar';

/** [top, left, bottom, right], the ONNX 2-D `pads` order. */
export type Pads4 = [number, number, number, number];
/** A square size or [height, width]. */
export type Size2 = number | [number, number];
/** [h, w, c] of an NHWC tensor (batch 1). */
export type Shape3 = [number, number, number];

export interface KernelInfo {
  /** Path every op currently takes. */
  isa: KernelIsa;
  /** Fastest path this CPU supports (chosen once at load). */
  bestIsa: KernelIsa;
  /** Default thread count (setThreads, else the CPU count). */
  threads: number;
  /** Output channels per block; active channel block lists index blocks of this size. */
  channelBlock: number;
  /** Paths forceIsa accepts on this CPU. */
  isas: KernelIsa[];
}

export interface ConvOptions {
  /** int8 in [-127, 127], layout [cout][kh][kw][cin] (OHWI; transpose ONNX's OIHW). */
  weights: Int8Array;
  /** int32 per output channel, scale s_in * s_w[c], zero point 0. */
  bias: Int32Array;
  /** s_in * s_w[c] / s_out per output channel, as float32. */
  multipliers: Float32Array;
  cin: number;
  cout: number;
  kh: number;
  kw: number;
  stride?: Size2;
  pads?: Pads4;
  zpIn: number;
  zpOut: number;
  /** Clamp below at zpOut (fused ReLU). */
  relu?: boolean;
}

export interface AddOptions {
  zpA: number;
  zpB: number;
  zpOut: number;
  /** s_a / s_out */
  multA: number;
  /** s_b / s_out */
  multB: number;
  relu?: boolean;
}

export interface PoolOptions {
  kernel: Size2;
  stride: Size2;
  pads?: Pads4;
}

/** Requantization from the input's parameters to the output's (avgpool and mean). */
export interface Requantization {
  zpIn: number;
  zpOut: number;
  /** s_in / s_out */
  mult: number;
}

export type AvgPoolOptions = PoolOptions & Requantization;

export interface PadOptions {
  /** [top, left, front, bottom, right, back]: H, W and C begin pads, then the end pads. */
  pads: [number, number, number, number, number, number];
  /** Fill value: the tensor's zero point (real 0). */
  value: number;
}

export type MeanOptions = Requantization;

export interface FcOptions {
  /** int8, layout [cout][cin]. */
  weights: Int8Array;
  /** s_in * s_w[c] per output channel. */
  scale: Float32Array;
  /** float bias per output channel. */
  bias: Float32Array;
  cin: number;
  cout: number;
  zpIn: number;
}

/**
 * A ReLU-zero gate (docs/relu-zero.md): uint8 [outH, outW, 1], 1 where the gated conv is computed.
 * The one-channel predictor conv is requantized to (scaleLogit, zpLogit), dequantized, averaged over
 * tile x tile blocks, optionally requantized to `decision`, and compared with `threshold`.
 */
export interface GateOptions {
  /** int8 in [-127, 127], layout [kh][kw][cin] (the single output channel). */
  weights: Int8Array;
  /** int32 at the accumulator scale s_in * s_w. */
  bias: number;
  /** s_in * s_w / scaleLogit, as float32. */
  mult: number;
  cin: number;
  kh: number;
  kw: number;
  stride?: Size2;
  pads?: Pads4;
  zpIn: number;
  scaleLogit: number;
  zpLogit: number;
  /** Logits are averaged over tile x tile blocks (1: per pixel). */
  tile: number;
  /** The gated conv's output size (the tiles are cropped to it). */
  outH: number;
  outW: number;
  /** The decision tensor's parameters, when the graph quantizes it. */
  decision?: { scale: number; zeroPoint: number };
  /** Open where the decision value is above it. */
  threshold: number;
}

export interface ConvOp {
  outShape(h: number, w: number, c: number): Shape3;
  /**
   * NHWC uint8 in, NHWC uint8 out. activeRows (output pixel indices oy * outW + ox) and
   * activeChannelBlocks (indices of `channelBlock`-channel blocks) restrict what is computed;
   * everything else is written as zpOut. threads 0/undefined = default.
   */
  run(
    input: Uint8Array,
    h: number,
    w: number,
    c: number,
    activeRows?: Int32Array | null,
    activeChannelBlocks?: Int32Array | null,
    threads?: number,
  ): Uint8Array;
}

export interface AddOp {
  run(a: Uint8Array, b: Uint8Array, threads?: number): Uint8Array;
}

export interface ShapeOp {
  outShape(h: number, w: number, c: number): Shape3;
  run(input: Uint8Array, h: number, w: number, c: number): Uint8Array;
}

export interface FcOp {
  run(input: Uint8Array): Float32Array;
}

export type PlanOp =
  /** mask: a gate's output; the conv is computed only where it is non-zero after a maskDilate x
   * maskDilate max (odd, default 1). */
  | ({ op: 'conv'; input: number; output: number; mask?: number; maskDilate?: number } & ConvOptions)
  | ({ op: 'gate'; input: number; output: number } & GateOptions)
  | ({ op: 'add'; inputs: [number, number]; output: number } & AddOptions)
  | ({ op: 'maxpool'; input: number; output: number } & PoolOptions)
  | ({ op: 'avgpool'; input: number; output: number } & AvgPoolOptions)
  | ({ op: 'pad'; input: number; output: number } & PadOptions)
  | ({ op: 'mean'; input: number; output: number } & MeanOptions)
  | ({ op: 'fc'; input: number; output: number } & FcOptions);

/** A whole forward pass; see docs/kernels.md "Plan format". */
export interface NetworkPlan {
  /** Number of tensor ids; ids are 0..tensors-1 and each is produced exactly once. */
  tensors: number;
  input: { id: number; shape: Shape3 };
  output: number;
  /** Threads for run() when it is not given one (0 = default). */
  threads?: number;
  /** In execution order; an op may only read tensors produced before it. */
  ops: PlanOp[];
}

export interface RunMacs {
  /** Everything executed: convs at their computed pixels, gate predictors, fc. */
  executed: number;
  /** The convs' share of `executed`. */
  conv: number;
  /** The convs computed densely. */
  convDense: number;
}

export interface NetworkOp {
  readonly numOps: number;
  /** Output tensor: Float32Array when produced by fc, else Uint8Array. */
  run(input: Uint8Array, threads?: number): Uint8Array | Float32Array;
  /** run() on float NCHW images (one, or a batch back to back), quantized natively as
   * QuantizeLinear(scale, zeroPoint) would; outputs back to back. With threads > 1 a batch's items
   * run side by side, one thread each. */
  runFloat(
    input: Float32Array,
    scale: number,
    zeroPoint: number,
    threads?: number,
  ): Uint8Array | Float32Array;
  /** Copy of any tensor from the last run, for layer-by-layer comparisons. */
  tensor(id: number): Uint8Array | Float32Array;
  shape(id: number): Shape3;
  /** Multiply-accumulates of the last run, summed over its batch. */
  readonly lastRunMacs: RunMacs;
  /** Wall time of each plan op in the last run, microseconds, in plan order (the per-layer profile). */
  readonly lastRunOpMicros: Float64Array;
}

export interface KernelsBinding {
  info(): KernelInfo;
  setThreads(n: number): void;
  /** Every op then takes this path; null restores the best one. Throws if unsupported. */
  forceIsa(isa: KernelIsa | null): void;
  Conv: new (options: ConvOptions) => ConvOp;
  Add: new (options: AddOptions) => AddOp;
  MaxPool: new (options: PoolOptions) => ShapeOp;
  AvgPool: new (options: AvgPoolOptions) => ShapeOp;
  Pad: new (options: PadOptions) => ShapeOp;
  Mean: new (options: MeanOptions) => ShapeOp;
  Fc: new (options: FcOptions) => FcOp;
  Network: new (plan: NetworkPlan) => NetworkOp;
}

export const KERNELS_ADDON_PATH = fileURLToPath(
  new URL('../../kernels/build/Release/facegate_kernels.node', import.meta.url),
);

let cached: { binding: KernelsBinding | null } | undefined;

/**
 * The native kernels, or null (after one warning) when the addon is not built or cannot load.
 * The result is cached; pass `path` to load another build (not cached).
 */
export function loadKernels(options: { path?: string; log?: Logger } = {}): KernelsBinding | null {
  if (cached && options.path === undefined) return cached.binding;
  const path = options.path ?? KERNELS_ADDON_PATH;
  const log = options.log ?? defaultLogger.child('engine');
  let binding: KernelsBinding | null = null;
  if (!existsSync(path)) {
    log.warn(`native kernels not found at ${path} (run 'node kernels/build.mjs'); using ONNX Runtime`);
  } else {
    try {
      binding = createRequire(import.meta.url)(path) as KernelsBinding;
    } catch (err) {
      log.warn(`native kernels failed to load (${(err as Error).message}); using ONNX Runtime`);
    }
  }
  if (options.path === undefined) cached = { binding };
  return binding;
}
