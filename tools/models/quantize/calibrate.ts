// Activation range calibration: run the fp32 graph in ONNX Runtime with every tensor of interest exposed
// as an output, collect per-tensor statistics, then derive a range per method.
import * as ort from 'onnxruntime-node';
import type { Graph } from '../../../runtime/models/onnx/graph.ts';
import { serializeModel } from '../onnx/writer.ts';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';
export const CALIBRATION_METHODS: CalibrationMethod[] = ['minmax', 'percentile', 'entropy'];
export const PERCENTILE = 99.999;
const BINS = 2048;

export interface Range {
  lo: number;
  hi: number;
}

export interface TensorStats {
  min: number;
  max: number;
  /** Histogram of the non-zero |x| over [0, absMax], BINS bins. */
  hist: Float64Array;
  absMax: number;
}

export type CalibrationInput = Record<string, ort.Tensor>;

/** Serialises `graph` with `tensors` added as outputs, without changing `graph`. */
export function withOutputs(graph: Graph, tensors: string[]): Uint8Array {
  const count = graph.outputs.length;
  const existing = new Set(graph.outputs.map((o) => o.name));
  for (const t of tensors) if (!existing.has(t)) graph.outputs.push({ name: t, type: 'float32' });
  try {
    return serializeModel(graph, { producerName: 'facegate-calibration', producerVersion: '0' });
  } finally {
    graph.outputs.length = count;
  }
}

export async function collectStats(
  graph: Graph,
  tensors: string[],
  inputs: () => Iterable<CalibrationInput>,
  onProgress?: (pass: number, done: number) => void,
): Promise<Map<string, TensorStats>> {
  // One thread: results must not depend on how work is split, so builds stay reproducible.
  const inputNames = new Set(graph.inputs.map((i) => i.name));
  const fetched = tensors.filter((t) => !inputNames.has(t));
  const session = await ort.InferenceSession.create(withOutputs(graph, fetched), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  const stats = new Map<string, TensorStats>(
    tensors.map((t) => [t, { min: 0, max: 0, absMax: 0, hist: new Float64Array(BINS) }]),
  );
  // Pass 1: extremes. Pass 2: histograms over the now-known extent.
  for (let pass = 1; pass <= 2; pass++) {
    let done = 0;
    for (const feed of inputs()) {
      const out = { ...(await session.run(feed)), ...feed };
      for (const t of tensors) {
        if (!out[t])
          throw new Error(
            `calibration: tensor ${t} missing from outputs (${Object.keys(out).length} present)`,
          );
        const data = out[t].data as Float32Array;
        const s = stats.get(t) as TensorStats;
        if (pass === 1) {
          for (let i = 0; i < data.length; i++) {
            const v = data[i];
            if (v < s.min) s.min = v;
            if (v > s.max) s.max = v;
          }
          s.absMax = Math.max(-s.min, s.max);
        } else if (s.absMax > 0) {
          const k = BINS / s.absMax;
          // Exact zeros (ReLU's output for ~half the values) are exact at any scale: leaving them out
          // keeps them from swamping the tail that percentile and entropy must judge.
          for (let i = 0; i < data.length; i++) {
            if (data[i] !== 0) s.hist[Math.min(BINS - 1, Math.floor(Math.abs(data[i]) * k))]++;
          }
        }
      }
      onProgress?.(pass, ++done);
    }
  }
  await session.release();
  return stats;
}

export function rangeFor(s: TensorStats, method: CalibrationMethod): Range {
  // Ranges always contain 0 so that real zero (ReLU output, padding) is exactly representable.
  const lo = Math.min(0, s.min);
  const hi = Math.max(0, s.max);
  if (method === 'minmax' || s.absMax === 0) return round({ lo, hi });
  const clip = method === 'percentile' ? percentileClip(s) : entropyClip(s, lo < 0 ? 128 : 256);
  return round({ lo: Math.max(lo, -clip), hi: Math.min(hi, clip) });
}

/** Rounded to 6 significant digits: tiny float-summation differences between machines then rarely
 * change the file. */
function round(r: Range): Range {
  const f = (v: number) => (v === 0 ? 0 : Number(v.toPrecision(6)));
  return { lo: f(r.lo), hi: f(r.hi) };
}

function percentileClip(s: TensorStats): number {
  const total = s.hist.reduce((a, b) => a + b, 0);
  const target = (total * PERCENTILE) / 100;
  let acc = 0;
  for (let i = 0; i < BINS; i++) {
    acc += s.hist[i];
    if (acc >= target) return ((i + 1) / BINS) * s.absMax;
  }
  return s.absMax;
}

/** TensorRT-style KL-divergence calibration on the |x| histogram: the clip threshold whose quantized
 * distribution (with `levels` levels) loses the least information. */
function entropyClip(s: TensorStats, levels: number): number {
  const hist = s.hist;
  let best = BINS;
  let bestKl = Number.POSITIVE_INFINITY;
  for (let i = levels; i <= BINS; i += 16) {
    const p = Array.from(hist.subarray(0, i));
    let outliers = 0;
    for (let j = i; j < BINS; j++) outliers += hist[j];
    p[i - 1] += outliers;
    // Merge the clipped histogram (without the outliers folded into p) into `levels` bins and spread
    // each back over p's non-empty bins: clipping shows up as the mass p has and q lacks.
    const q = new Array<number>(i).fill(0);
    const per = i / levels;
    for (let l = 0; l < levels; l++) {
      const start = Math.floor(l * per);
      const end = l === levels - 1 ? i : Math.floor((l + 1) * per);
      let sum = 0;
      let nonEmpty = 0;
      for (let j = start; j < end; j++) {
        sum += hist[j];
        if (p[j] > 0) nonEmpty++;
      }
      for (let j = start; j < end; j++) if (p[j] > 0) q[j] = sum / nonEmpty;
    }
    const kl = klDivergence(p, q);
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return (best / BINS) * s.absMax;
}

function klDivergence(p: number[], q: number[]): number {
  const ps = p.reduce((a, b) => a + b, 0);
  const qs = q.reduce((a, b) => a + b, 0);
  if (ps === 0 || qs === 0) return Number.POSITIVE_INFINITY;
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    const pi = p[i] / ps;
    const qi = q[i] / qs;
    kl += qi === 0 ? pi * 20 : pi * Math.log(pi / qi);
  }
  return kl;
}
