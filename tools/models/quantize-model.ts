// Calibrates a model with each method, measures each int8 model against fp32 on held-out samples, and
// keeps the most faithful one's ranges (for the calibration table; the build quantizes with them).
import { KernelsEngine } from '../../runtime/engine/kernels.ts';
import { loadKernels } from '../../runtime/engine/kernels-addon.ts';
import { openEngine } from '../../runtime/engine/open.ts';
import { OrtEngine, ortInt8Saturates } from '../../runtime/engine/ort.ts';
import type { CalibrationMethodName } from '../../runtime/models/manifest.ts';
import type { Graph } from '../../runtime/models/onnx/graph.ts';
import { Progress } from '../../runtime/report/progress.ts';
import type { EngineKind, InferenceEngine, TensorIn } from '../../runtime/types.ts';
import { serializeModel } from './onnx/writer.ts';
import { CALIBRATION_METHODS, collectStats, type Range, rangeFor } from './quantize/calibrate.ts';
import { planQuantization, quantizeGraph } from './quantize/qdq.ts';
import type { CalibrationFeed, EngineOutputs, ModelSpec } from './specs.ts';

/** Every HELD_OUT_EVERY-th sample is kept out of range fitting to judge the methods. */
const HELD_OUT_EVERY = 5;
const PROBE = { producerName: 'facegate', producerVersion: 'probe' };

export interface CalibrationResult {
  method: CalibrationMethodName;
  fidelity: Record<CalibrationMethodName, number>;
  calibrationSamples: number;
  heldOutSamples: number;
  /** The chosen method's range of every calibrated tensor, in the plan's order. */
  ranges: Map<string, Range>;
}

/**
 * `judge` runs each method's int8 model: exactInt8Judge's choice (checked before the caller's slow
 * work, so a CPU that cannot judge a model refuses at once).
 */
export async function calibrateBest(
  judge: EngineKind,
  fp32Graph: Graph,
  fp32Bytes: Uint8Array,
  feeds: CalibrationFeed[],
  spec: ModelSpec,
  log: (line: string) => void,
): Promise<CalibrationResult> {
  const count = Math.min(feeds.length, spec.maxCalibrationSamples);
  const used = Array.from({ length: count }, (_, k) => feeds[Math.floor((k * feeds.length) / count)]);
  const fit = used.filter((_, i) => i % HELD_OUT_EVERY !== HELD_OUT_EVERY - 1);
  const heldOut = used.filter((_, i) => i % HELD_OUT_EVERY === HELD_OUT_EVERY - 1);
  if (fit.length === 0 || heldOut.length === 0)
    throw new Error(`${spec.name}: too few calibration samples (${feeds.length})`);
  const plan = planQuantization(fp32Graph);
  const progress = new Progress(`${spec.name} calibration (2 passes)`, 2 * fit.length, log);
  const stats = await collectStats(
    fp32Graph,
    plan.calibrated,
    () => fit,
    () => progress.tick(),
  );
  progress.done();
  const run = (engine: InferenceEngine, feed: CalibrationFeed) => engine.run(engineFeed(feed));
  const reference = await OrtEngine.create(fp32Bytes, { threads: 1 });
  const expected: EngineOutputs[] = [];
  for (const f of heldOut) expected.push(await run(reference, f));
  await reference.close();

  const fidelity = {} as Record<CalibrationMethodName, number>;
  let best: { method: CalibrationMethodName; ranges: Map<string, Range> } | undefined;
  for (const method of CALIBRATION_METHODS) {
    const ranges = new Map(
      plan.calibrated.map((t) => [
        t,
        rangeFor(stats.get(t) as NonNullable<ReturnType<typeof stats.get>>, method),
      ]),
    );
    const q = quantizeGraph(fp32Graph, plan, ranges);
    const engine = await openEngine(serializeModel(q.graph, PROBE), { engine: judge, label: spec.name });
    let sum = 0;
    for (let i = 0; i < heldOut.length; i++) sum += spec.fidelity(expected[i], await run(engine, heldOut[i]));
    await engine.close();
    fidelity[method] = Number((sum / heldOut.length).toFixed(6));
    log(`[models] ${spec.name}: ${method} fidelity ${fidelity[method]} (int8 on ${engine.name})`);
    if (!best || fidelity[method] > fidelity[best.method]) best = { method, ranges };
  }
  const chosen = best as { method: CalibrationMethodName; ranges: Map<string, Range> };
  log(`[models] ${spec.name}: using ${chosen.method}`);
  return {
    method: chosen.method,
    ranges: chosen.ranges,
    fidelity,
    calibrationSamples: fit.length,
    heldOutSamples: heldOut.length,
  };
}

function engineFeed(feed: CalibrationFeed): Record<string, TensorIn> {
  return Object.fromEntries(
    Object.entries(feed).map(([name, t]) => [name, { data: t.data as Float32Array, dims: [...t.dims] }]),
  );
}

/**
 * Which engine kind computes int8 exactly on this CPU, so the methods are judged by their own errors: ONNX
 * Runtime, or where its int8 saturates (x86 without VNNI) the native kernels, if they run the model.
 * Decided from the graph's structure alone (placeholder ranges), before any calibration work.
 */
export async function exactInt8Judge(fp32Graph: Graph, name: string): Promise<EngineKind> {
  if (!ortInt8Saturates()) return 'ort';
  const plan = planQuantization(fp32Graph);
  const placeholder = new Map(plan.calibrated.map((t) => [t, { lo: -1, hi: 1 }]));
  const int8 = serializeModel(quantizeGraph(fp32Graph, plan, placeholder).graph, PROBE);
  const binding = loadKernels();
  let why = 'the native kernels are not built';
  if (binding) {
    try {
      await new KernelsEngine(binding, int8, 1).close();
      return 'kernels';
    } catch (err) {
      why = `the native kernels cannot run it (${(err as Error).message})`;
    }
  }
  throw new Error(
    `${name}: calibration needs exact int8 to compare the methods; ONNX Runtime's int8 saturates on this CPU (x86 without VNNI) and ${why}: calibrate it on a CPU with AVX-512 VNNI or AVX-VNNI, or on arm64 (--thresholds-only runs anywhere)`,
  );
}
