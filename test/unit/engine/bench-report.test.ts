// The bench report's embedder ratios: X_vs_Y = p50(Y) / p50(X), null (never invented) without rows.
import { describe, expect, it } from 'vitest';
import { type EmbedderBenchRow, embedderRatios } from '../../../runtime/bench/embedder.ts';
import { formatBench } from '../../../runtime/cli/bench.ts';

const row = (o: Partial<EmbedderBenchRow>): EmbedderBenchRow => ({
  engine: 'ort',
  precision: 'int8',
  relu_zero: false,
  threads: 1,
  p50_ms: 1,
  p95_ms: 2,
  skip_ratio: 0,
  macs: 270_821_376,
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
      kernels_relu0_vs_ort_int8_1t: null,
      kernels_relu0_vs_ort_int8_2t: null,
      ort_int8_vs_fp32_1t: 2,
    });
  });

  it('fills the ReLU-zero ratios once such rows exist', () => {
    const rows = [
      ...DENSE,
      row({ engine: 'kernels', relu_zero: true, p50_ms: 0.5, skip_ratio: 0.4 }),
      row({ engine: 'kernels', relu_zero: true, threads: 2, p50_ms: 0.5 }),
    ];
    expect(embedderRatios(rows)).toMatchObject({
      kernels_relu0_vs_kernels_dense_1t: 2,
      kernels_relu0_vs_ort_int8_1t: 4,
      kernels_relu0_vs_ort_int8_2t: 3,
    });
  });

  it('formats a table with the embedder rows first and the per-model rows after', () => {
    const text = formatBench({
      rows: DENSE,
      ratios: embedderRatios(DENSE),
      models: {
        rows: [{ model: 'facerec', engine: 'ort', precision: 'int8', threads: 1, p50_ms: 2, p95_ms: 3 }],
        ratios: { facerec_ort_int8_vs_fp32_1t: 2 },
      },
    });
    expect(text).toContain('kernels  int8      false           1    1.000    2.000       0.00   270.8');
    expect(text).toMatch(/kernels_relu0_vs_ort_int8_2t\s+-/);
    expect(text.indexOf('kernels_dense_vs_ort_int8_1t')).toBeLessThan(text.indexOf('facerec    ort'));
  });
});
