// The bench-pipeline text report: each throughput row names the models and engines the app opened, and
// says why where a model did not run on the engine asked for.
import { describe, expect, it } from 'vitest';
import type { PipelineBenchReport, ThroughputRow } from '../../../runtime/bench/pipeline.ts';
import { formatPipelineBench } from '../../../runtime/cli/bench-pipeline.ts';

const row = (o: Partial<ThroughputRow>): ThroughputRow => ({
  precision: 'int8',
  embedder: 'facerec',
  engine_asked: 'kernels',
  embedder_model: 'facerec.int8',
  embedder_engine: 'kernels',
  detector_model: 'blazeface.fp32',
  detector_engine: 'ort',
  fps_p50: 30,
  runs: [29, 30, 31],
  frames: 275,
  faces_per_frame: 0.49,
  detect_ms_per_frame_p50: 20,
  embed_ms_per_face_p50: 6,
  embed_ms_per_face_runs: [6, 5, 7],
  ...o,
});

const report = (throughput: ThroughputRow[]): PipelineBenchReport => ({
  mirror_average: true,
  throughput,
  int8_vs_fp32_fps: 1.1,
  embed_dense_vs_relu0: 1.5,
  latency: {
    frames: 300,
    frame_p50_ms: 14,
    frame_p95_ms: 25,
    events: 150,
    event_p50_ms: 17,
    event_p95_ms: 29,
  },
  memory: {
    seconds: 10,
    rss_mb_start: 230,
    rss_mb_end: 231,
    rss_mb_max: 240,
    slope_mb_per_min: 0.1,
    rss_mb_first_minute: 230,
    rss_mb_last_minute: 231,
  },
});

describe('formatPipelineBench', () => {
  const lines = formatPipelineBench(
    report([
      row({}),
      row({ precision: 'fp32', embedder_model: 'facerec.fp32', embedder_engine: 'ort' }),
      row({
        embedder: 'facerec-gated',
        embedder_model: 'facerec-gated.int8',
        embed_ms_per_face_p50: 4,
        embed_ms_per_face_runs: [4, 3, 5],
      }),
    ]),
  ).split('\n');
  const lineOf = (start: string) => lines.find((l) => l.startsWith(start)) ?? '';

  it('names the models and engines each row ran on, with its stage times', () => {
    const gated = lineOf('  int8 facerec-gated:');
    expect(gated).toContain('embedder facerec-gated.int8 on kernels,');
    expect(gated).toContain('detector blazeface.fp32 on ort;');
    expect(gated).toContain('detect 20 ms/frame, embed 4 ms/face (runs 4, 3, 5)');
    expect(gated).not.toContain('fell back');
  });

  it('says why a model ran on ONNX Runtime under engine kernels: an fp32 model, or a fallback', () => {
    expect(lineOf('  fp32 facerec:')).toContain(
      'embedder facerec.fp32 on ort (the kernels run int8 models only)',
    );
    expect(lineOf('  int8 facerec:')).not.toContain('fell back');
    const [fallback] = formatPipelineBench(report([row({ embedder_engine: 'ort' })]))
      .split('\n')
      .filter((l) => l.startsWith('  int8 facerec:'));
    expect(fallback).toContain('embedder facerec.int8 on ort (models.engine kernels fell back)');
  });

  it('prints both ratios', () => {
    expect(lineOf('  int8_vs_fp32_fps')).toBe('  int8_vs_fp32_fps 1.1');
    expect(lineOf('  embed_dense_vs_relu0')).toMatch(/^ {2}embed_dense_vs_relu0 1\.5 \(/);
  });
});
