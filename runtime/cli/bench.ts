// `facegate bench`: performance figures measured side by side in one process (`npm run bench`).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  benchEmbedder,
  type EmbedderBenchRow,
  type EmbedderRatios,
  embedderRatios,
  type GatesInUse,
  type LayerTime,
} from '../bench/embedder.ts';
import { benchModels, type ModelBenchRow } from '../bench/models.ts';
import { loadKernels } from '../engine/kernels-addon.ts';
import { modelsDir } from '../paths.ts';
import { createLogger } from '../util/log.ts';
import { integerFlag } from './flags.ts';

export interface BenchReport {
  /** The native kernels' SIMD path in use and the best this CPU has; null when the addon did not load
   * (no kernels rows then). */
  kernels: { isa: string; best_isa: string } | null;
  /** The gates the relu_zero rows ran; null without them. */
  gates: GatesInUse | null;
  /** The embedder on every engine (the native-kernels issue's format). */
  rows: EmbedderBenchRow[];
  ratios: EmbedderRatios;
  /** Per-site time of the embedder on the kernels, dense vs ReLU-zero, 1 thread. */
  layers: LayerTime[];
  /** ORT fp32 vs int8 for every face model. */
  models: { rows: ModelBenchRow[]; ratios: Record<string, number> };
}

export async function benchCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      rounds: { type: 'string', default: '200' },
      models: { type: 'string', default: modelsDir() },
    },
  });
  const rounds = integerFlag('rounds', values.rounds);
  const log = createLogger({ level: 'info' });
  const dirs = { modelsDir: resolve(values.models), rounds, log };
  const { rows, layers, gates } = await benchEmbedder(dirs);
  const modelRows = await benchModels(dirs);
  const info = loadKernels({ log })?.info();
  const report: BenchReport = {
    kernels: info ? { isa: info.isa, best_isa: info.bestIsa } : null,
    gates,
    rows,
    ratios: embedderRatios(rows),
    layers,
    models: { rows: modelRows, ratios: modelRatios(modelRows) },
  };
  console.log(values.json ? JSON.stringify(report) : formatBench(report));
  return 0;
}

/** `<model>_ort_int8_vs_fp32_<t>t`: p50 of fp32 divided by p50 of int8 (above 1: int8 is faster). */
export function modelRatios(rows: ModelBenchRow[]): Record<string, number> {
  const ratios: Record<string, number> = {};
  for (const r of rows.filter((r) => r.precision === 'int8')) {
    const fp32 = rows.find((f) => f.model === r.model && f.threads === r.threads && f.precision === 'fp32');
    if (fp32)
      ratios[`${r.model}_ort_int8_vs_fp32_${r.threads}t`] = Math.round((fp32.p50_ms / r.p50_ms) * 100) / 100;
  }
  return ratios;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

export function formatBench(report: BenchReport): string {
  const embedder = report.rows.map(
    (r) =>
      `${r.engine.padEnd(8)} ${r.precision.padEnd(9)} ${String(r.relu_zero).padEnd(9)} ${String(r.batch).padStart(5)} ${String(r.threads).padStart(7)} ${r.p50_ms.toFixed(3).padStart(8)} ${r.p95_ms.toFixed(3).padStart(8)} ${r.skip_ratio.toFixed(2).padStart(10)} ${(r.macs / 1e6).toFixed(1).padStart(7)} ${r.input_dependent_share === null ? '-'.padStart(9) : r.input_dependent_share.toFixed(2).padStart(9)}`,
  );
  const models = report.models.rows.map(
    (r) =>
      `${r.model.padEnd(10)} ${r.engine.padEnd(7)} ${r.precision.padEnd(10)} ${String(r.threads).padStart(7)} ${r.p50_ms.toFixed(3).padStart(8)} ${r.p95_ms.toFixed(3).padStart(8)}`,
  );
  const ratios = (entries: Record<string, number | null>) =>
    Object.entries(entries).map(([k, v]) => `${k.padEnd(40)} ${v === null ? '-' : v.toFixed(2)}`);
  const { kernels, gates } = report;
  return [
    kernels
      ? `engines: kernels (native int8, ${kernels.isa} path; best on this CPU ${kernels.best_isa}) and ort (ONNX Runtime)`
      : 'engines: ort (ONNX Runtime) only: the native kernels did not load, so there are no kernels rows',
    gates
      ? `gates (relu_zero rows): ${gates.model}, granularity ${gates.granularity ?? '-'}, threshold ${gates.threshold ?? '-'}, ${gates.convs.length} gated convs: ${gates.convs.join(' ')}`
      : 'gates: none (no relu_zero rows)',
    '',
    'embedder',
    'engine   precision relu_zero batch threads   p50 ms   p95 ms skip_ratio   MMACs input_dep',
    '(batch 2: a face and its mirror in one run, as the embedder runs them; MMACs per image;',
    ' input_dep: share of the skipped MACs that some bench face computes, i.e. not closed for every face)',
    ...embedder,
    '',
    'ratios X_vs_Y = p50(Y) / p50(X) (above 1: X is faster; - = no rows yet)',
    ...ratios(report.ratios),
    '',
    'per site, kernels, 1 thread: sum of per-op medians (us; a site is the stem or a block with its gate)',
    'site                      dense   relu0',
    ...report.layers.map(
      (l) =>
        `${l.site.padEnd(22)} ${l.dense_us.toFixed(1).padStart(8)} ${l.relu0_us === null ? '-'.padStart(7) : l.relu0_us.toFixed(1).padStart(7)}`,
    ),
    `${'total'.padEnd(22)} ${sum(report.layers.map((l) => l.dense_us))
      .toFixed(1)
      .padStart(8)} ${sum(report.layers.map((l) => l.relu0_us ?? 0))
      .toFixed(1)
      .padStart(7)}`,
    '',
    'all models, ONNX Runtime',
    'model      engine  precision  threads   p50 ms   p95 ms',
    ...models,
    '',
    'ratios (p50 of the slower / p50 of the faster; above 1: the first named is faster)',
    ...ratios(report.models.ratios),
  ].join('\n');
}
