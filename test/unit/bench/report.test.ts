// The bench report's embedder ratios: X_vs_Y = p50(Y) / p50(X), null (never invented) without rows.
import { describe, expect, it } from 'vitest';
import {
  type EmbedderBenchRow,
  embedderRatios,
  inputDependentShare,
} from '../../../runtime/bench/embedder.ts';
import { formatBench } from '../../../runtime/cli/bench.ts';
import type { LoweredModel } from '../../../runtime/engine/lower.ts';

const row = (o: Partial<EmbedderBenchRow>): EmbedderBenchRow => ({
  engine: 'ort',
  precision: 'int8',
  relu_zero: false,
  batch: 1,
  threads: 1,
  p50_ms: 1,
  p95_ms: 2,
  skip_ratio: 0,
  macs: 270_821_376,
  input_dependent_share: null,
  ...o,
});

const DENSE = [
  row({ precision: 'fp32', p50_ms: 4 }),
  row({ p50_ms: 2 }),
  row({ engine: 'kernels', p50_ms: 1 }),
  row({ precision: 'fp32', threads: 2, p50_ms: 3 }),
  row({ threads: 2, p50_ms: 1.5 }),
  row({ engine: 'kernels', threads: 2, p50_ms: 0.75 }),
];

describe('embedderRatios', () => {
  it('has exactly the issue keys, null where the ReLU-zero rows do not exist yet', () => {
    expect(embedderRatios(DENSE)).toEqual({
      kernels_dense_vs_ort_int8_1t: 2,
      kernels_relu0_vs_kernels_dense_1t: null,
      kernels_relu0_vs_kernels_dense_2t: null,
      kernels_relu0_vs_ort_int8_1t: null,
      kernels_relu0_vs_ort_int8_2t: null,
      kernels_relu0_vs_kernels_dense_mirror_2t: null,
      kernels_relu0_vs_ort_int8_mirror_2t: null,
      ort_int8_vs_fp32_1t: 2,
    });
  });

  it('fills the ReLU-zero ratios once such rows exist', () => {
    const rows = [
      ...DENSE,
      row({ engine: 'kernels', relu_zero: true, p50_ms: 0.5, skip_ratio: 0.4 }),
      row({ engine: 'kernels', relu_zero: true, threads: 2, p50_ms: 0.5 }),
      row({ batch: 2, threads: 2, p50_ms: 2 }),
      row({ engine: 'kernels', batch: 2, threads: 2, p50_ms: 1 }),
      row({ engine: 'kernels', relu_zero: true, batch: 2, threads: 2, p50_ms: 0.8 }),
    ];
    expect(embedderRatios(rows)).toMatchObject({
      kernels_relu0_vs_kernels_dense_1t: 2,
      kernels_relu0_vs_kernels_dense_2t: 1.5,
      kernels_relu0_vs_ort_int8_1t: 4,
      kernels_relu0_vs_ort_int8_2t: 3,
      kernels_relu0_vs_kernels_dense_mirror_2t: 1.25,
      kernels_relu0_vs_ort_int8_mirror_2t: 2.5,
    });
  });

  it('formats a table with the embedder rows first and the per-model rows after', () => {
    const text = formatBench({
      kernels: { isa: 'avx2', best_isa: 'avx2' },
      gates: {
        model: 'facerec-gated.int8',
        granularity: 'tile4',
        threshold: 0,
        convs: ['conv32_down', 'conv32_1/conv1'],
      },
      rows: DENSE,
      ratios: embedderRatios(DENSE),
      layers: [
        { site: 'conv32_down', dense_us: 100, relu0_us: 80 },
        { site: 'conv32_1', dense_us: 50, relu0_us: 55.5 },
      ],
      models: {
        rows: [{ model: 'facerec', engine: 'ort', precision: 'int8', threads: 1, p50_ms: 2, p95_ms: 3 }],
        ratios: { facerec_ort_int8_vs_fp32_1t: 2 },
      },
    });
    expect(text).toContain(
      'kernels  int8      false         1       1    1.000    2.000       0.00   270.8         -',
    );
    expect(text).toMatch(/kernels_relu0_vs_ort_int8_2t\s+-/);
    expect(text).toMatch(/conv32_down\s+100\.0\s+80\.0/);
    expect(text).toMatch(/total\s+150\.0\s+135\.5/);
    expect(text.indexOf('kernels_dense_vs_ort_int8_1t')).toBeLessThan(text.indexOf('facerec    ort'));
    expect(text).toContain('engines: kernels (native int8, avx2 path; best on this CPU avx2) and ort');
    expect(text).toContain(
      'gates (relu_zero rows): facerec-gated.int8, granularity tile4, threshold 0, 2 gated convs: conv32_down conv32_1/conv1',
    );
  });

  it('says when the kernels did not load and no gates ran', () => {
    const text = formatBench({
      kernels: null,
      gates: null,
      rows: DENSE.filter((r) => r.engine === 'ort'),
      ratios: embedderRatios(DENSE),
      layers: [],
      models: { rows: [], ratios: {} },
    });
    expect(text).toContain('engines: ort (ONNX Runtime) only: the native kernels did not load');
    expect(text).toContain('gates: none (no relu_zero rows)');
  });
});

describe('inputDependentShare', () => {
  // Two gates on a 2x2 output: a stem-like conv (dilate 1) and a conv1 reading its mask widened by 3.
  const conv = (mask: number, maskDilate?: number) => ({
    op: 'conv' as const,
    input: 0,
    output: 9,
    mask,
    ...(maskDilate ? { maskDilate } : {}),
    kh: 1,
    kw: 1,
    cin: 1,
    cout: 10,
  });
  const gate = (output: number) => ({ op: 'gate' as const, input: 0, output, outH: 2, outW: 2 });
  const model = {
    plan: { ops: [gate(1), conv(1), gate(2), conv(2, 3)] },
    gates: [
      { conv: 'a', open: 'a/open', mask: 1, dilate: 1 },
      { conv: 'b', open: 'b/open', mask: 2, dilate: 3 },
    ],
  } as unknown as LoweredModel;

  it('counts MACs closed for every face as static and the rest as input-dependent', () => {
    const face = (a: number[], b: number[]) => [
      { mask: Uint8Array.from(a), dilate: 1 },
      { mask: Uint8Array.from(b), dilate: 3 },
    ];
    // Gate a: pixel 0 closed for both faces (static), pixel 1 closed for one (dependent).
    // Gate b: one open pixel widens to all four on face 1; all closed on face 2 (4 dependent pixels).
    const share = inputDependentShare(model, [
      face([0, 0, 1, 1], [1, 0, 0, 0]),
      face([0, 1, 1, 1], [0, 0, 0, 0]),
    ]);
    // skipped: a 2 + 1 = 3 pixel-faces, b 0 + 4; dependent: a 1, b 4 -> 5 of 7.
    expect(share).toBeCloseTo(5 / 7, 10);
  });
});
