// Calibrates a model with each method, measures each int8 model against fp32 on held-out samples, and
// keeps the most faithful one's ranges (for the calibration table; the build quantizes with them).
import * as ort from 'onnxruntime-node';
import type { CalibrationMethodName } from '../../runtime/models/manifest.ts';
import type { Graph } from '../../runtime/models/onnx/graph.ts';
import { Progress } from '../../runtime/report/progress.ts';
import { serializeModel } from './onnx/writer.ts';
import { CALIBRATION_METHODS, collectStats, type Range, rangeFor } from './quantize/calibrate.ts';
import { planQuantization, quantizeGraph } from './quantize/qdq.ts';
import type { CalibrationFeed, ModelSpec } from './specs.ts';

/** Every HELD_OUT_EVERY-th sample is kept out of range fitting to judge the methods. */
const HELD_OUT_EVERY = 5;

export interface CalibrationResult {
  method: CalibrationMethodName;
  fidelity: Record<CalibrationMethodName, number>;
  calibrationSamples: number;
  heldOutSamples: number;
  /** The chosen method's range of every calibrated tensor, in the plan's order. */
  ranges: Map<string, Range>;
}

export async function calibrateBest(
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
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const reference = await ort.InferenceSession.create(fp32Bytes, options);
  const expected = [];
  for (const f of heldOut) expected.push(await reference.run(f));
  await reference.release();

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
    const session = await ort.InferenceSession.create(
      serializeModel(q.graph, { producerName: 'facegate', producerVersion: 'probe' }),
      options,
    );
    let sum = 0;
    for (let i = 0; i < heldOut.length; i++) sum += spec.fidelity(expected[i], await session.run(heldOut[i]));
    await session.release();
    fidelity[method] = Number((sum / heldOut.length).toFixed(6));
    log(`[models] ${spec.name}: ${method} fidelity ${fidelity[method]}`);
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
