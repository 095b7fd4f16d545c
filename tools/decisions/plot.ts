// docs/decisions.md, "PNG plots": runtime/report/plot.ts against vega-lite + vega rendering the same
// charts to SVG, both rasterised by sharp. The charts: the sweep's (runtime/eval/sweep.ts sweepChart) on
// the points of docs/relu-zero.md's candidate sweep, and `eval lfw --roc`'s (rocChart) on a smooth curve
// of --roc-points points (the all-pairs ROC of LFW dev has one per impostor score, ~10^5 and more).
// vega is loaded from a scratch install:
//   npm install --prefix DIR vega vega-lite
//   npx tsx tools/decisions/plot.ts --candidate DIR [--rounds 20] [--roc-points 100000] [--out DIR]
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { integerFlag } from '../../runtime/cli/flags.ts';
import { type SweepPoint, sweepChart } from '../../runtime/eval/sweep.ts';
import { type LineChartSpec, lineChartSvg, rocChart } from '../../runtime/report/plot.ts';
import { interleaved } from '../../runtime/util/timing.ts';

const row = (
  name: string,
  candidate: string | null,
  threshold: number | null,
  ms: number,
  accuracy: number,
  allPairs: number,
): SweepPoint => ({
  name,
  engine: name.startsWith('ORT') ? 'ort' : 'kernels',
  relu_zero: candidate !== null,
  candidate,
  threshold,
  ms_per_run: ms,
  skip_ratio: 0,
  input_dependent_share: null,
  accuracy: accuracy / 100,
  accuracy_std: 0,
  tpr_at_far: { '0.01': 0, '0.001': 0 },
  tpr_at_far_all_pairs: { '0.01': allPairs / 100, '0.001': 0 },
});
const POINTS = [
  row('ORT int8', null, null, 6.047, 99.1, 98.78),
  row('kernels dense', null, null, 2.623, 99.23, 98.71),
  row('kernels ReLU-zero t=-1', 'kernels ReLU-zero', -1, 1.949, 98.8, 97.78),
  row('kernels ReLU-zero t=0', 'kernels ReLU-zero', 0, 1.957, 98.57, 97.6),
  row('budget-240steps t=-1', 'budget-240steps', -1, 2.586, 97.37, 94.11),
  row('budget-240steps t=0', 'budget-240steps', 0, 2.017, 97.0, 90.33),
];

// --- The adapter: what the project would keep instead of plot.ts (counted in docs/decisions.md). ---
function vegaLiteSpec(spec: LineChartSpec): object {
  const values = spec.series.flatMap((s) =>
    s.points.map(([x, y], order) => ({ series: s.name, dashed: !!s.dashed, order, x, y })),
  );
  const scale = (range: readonly [number, number] | undefined, log = false) => ({
    ...(range ? { domain: range } : { zero: false }),
    ...(log ? { type: 'log' } : {}),
  });
  const x = { field: 'x', type: 'quantitative', title: spec.xLabel, scale: scale(spec.xRange, spec.xLog) };
  const y = { field: 'y', type: 'quantitative', title: spec.yLabel, scale: scale(spec.yRange) };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: (spec.width ?? 900) - 115,
    height: (spec.height ?? 600) - 120,
    background: 'white',
    title: spec.title,
    layer: [
      {
        data: { values },
        mark: { type: 'line', clip: true, strokeWidth: 2 },
        encoding: {
          x,
          y,
          order: { field: 'order' },
          color: {
            field: 'series',
            type: 'nominal',
            sort: null,
            title: null,
            legend: { orient: spec.legend ?? 'bottom-right', labelLimit: 0 },
          },
          strokeDash: {
            field: 'dashed',
            type: 'nominal',
            legend: null,
            scale: {
              domain: [false, true],
              range: [
                [1, 0],
                [8, 5],
              ],
            },
          },
        },
      },
      {
        data: { values: spec.markers ?? [] },
        mark: { type: 'point', filled: true, color: '#111111', size: 40 },
        encoding: { x, y },
      },
      {
        data: { values: spec.markers ?? [] },
        mark: { type: 'text', align: 'left', dx: 8, dy: -8, fontSize: 12 },
        encoding: { x, y, text: { field: 'label' } },
      },
    ],
  };
}
// --- end of the adapter ---

interface Vega {
  parse(spec: object): unknown;
  View: new (runtime: unknown, opts: { renderer: 'none' }) => { toSVG(): Promise<string> };
}
interface VegaLite {
  compile(spec: object): { spec: object };
}

const { values } = parseArgs({
  options: {
    candidate: { type: 'string' },
    rounds: { type: 'string', default: '20' },
    'roc-points': { type: 'string', default: '100000' },
    out: { type: 'string' },
  },
});
if (!values.candidate) throw new Error('--candidate DIR: the folder vega and vega-lite were installed into');
const fromCandidate = createRequire(join(values.candidate, 'package.json'));
const load = async (name: string) => import(pathToFileURL(fromCandidate.resolve(name)).href);
const vega = (await load('vega')) as Vega;
const vl = (await load('vega-lite')) as VegaLite;

const rocPoints = integerFlag('roc-points', values['roc-points']);
const roc = Array.from({ length: rocPoints }, (_, i) => {
  const far = 10 ** (-4 + (4 * i) / (rocPoints - 1));
  return { far, tpr: 1 - 0.3 * (1 - (Math.log10(far) + 4) / 4) ** 3 };
});
const charts: [string, LineChartSpec][] = [
  ['sweep', sweepChart(POINTS)],
  [`roc-${rocPoints}`, rocChart([{ name: 'synthetic', points: roc }], 'ROC', { tprRange: [0.6, 1] })],
];
const digest = (png: Buffer) => createHash('sha256').update(png).digest('hex').slice(0, 16);
for (const [chart, spec] of charts) {
  const renderers: [string, () => Promise<Buffer>][] = [
    [
      'plot.ts',
      () =>
        sharp(Buffer.from(lineChartSvg(spec)))
          .png()
          .toBuffer(),
    ],
    [
      'vega-lite+vega',
      async () => {
        const view = new vega.View(vega.parse(vl.compile(vegaLiteSpec(spec)).spec), { renderer: 'none' });
        return sharp(Buffer.from(await view.toSVG()))
          .png()
          .toBuffer();
      },
    ],
  ];
  for (const [name, render] of renderers) {
    const [a, b] = [await render(), await render()];
    console.log(
      `${chart} ${name.padEnd(16)} png ${a.length} bytes, sha256 ${digest(a)}; second render identical: ${a.equals(b)}`,
    );
    if (values.out) writeFileSync(join(values.out, `${chart}-${name.replace(/\W+/g, '-')}.png`), a);
  }
  const timings = await interleaved(
    renderers.map(([name, run]) => ({ name, run })),
    { warmup: 2, rounds: integerFlag('rounds', values.rounds) },
  );
  for (const t of timings)
    console.log(
      `${chart} ${t.name.padEnd(16)} render to PNG p50 ${t.p50.toFixed(1)} ms  p95 ${t.p95.toFixed(1)} ms`,
    );
}
