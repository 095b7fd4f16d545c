// `facegate bench-pipeline`: end-to-end throughput (int8 vs fp32, dense vs ReLU-zero gated embedder) with
// the detect and embed stage times, latency and memory of the camera path.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchPipeline, type PipelineBenchReport, type ThroughputRow } from '../bench/pipeline.ts';
import { DEMO_DIR, FACES_DIR, modelsDir } from '../paths.ts';
import { createLogger } from '../util/log.ts';
import { integerFlag } from './flags.ts';

export async function benchPipelineCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      runs: { type: 'string', default: '3' },
      'latency-seconds': { type: 'string', default: '20' },
      'soak-seconds': { type: 'string', default: '60' },
      'no-mirror': { type: 'boolean', default: false },
      models: { type: 'string', default: modelsDir() },
    },
  });
  const report = await benchPipeline({
    // The demo clip (face_recognition's short_hamilton_clip.mp4) and the committed photo of its person.
    video: join(DEMO_DIR, 'door.mp4'),
    enrolPhoto: join(FACES_DIR, 'face_recognition_examples', 'misc', 'lin-manuel-miranda.png'),
    modelsDir: resolve(values.models),
    runs: integerFlag('runs', values.runs),
    latencySeconds: integerFlag('latency-seconds', values['latency-seconds']),
    soakSeconds: integerFlag('soak-seconds', values['soak-seconds']),
    mirrorAverage: !values['no-mirror'],
    log: createLogger({ level: 'info' }),
  });
  console.log(values.json ? JSON.stringify(report) : formatPipelineBench(report));
  return 0;
}

/** The model and the engine it ran on, saying why where it is not the engine asked for. */
function ranOn(t: ThroughputRow): string {
  const { embedder_model: model, embedder_engine: engine, engine_asked: asked } = t;
  if (engine === asked) return `${model} on ${engine}`;
  // The kernels run int8 graphs only; ONNX Runtime runs fp32 models by design, not as a fallback.
  if (t.precision === 'fp32') return `${model} on ${engine} (the kernels run int8 models only)`;
  return `${model} on ${engine} (models.engine ${asked} fell back)`;
}

function throughputLine(t: ThroughputRow): string {
  return [
    `  ${t.precision} ${t.embedder}: ${t.fps_p50} frames/s (median of runs ${t.runs.join(', ')}; ${t.frames} frames, ${t.faces_per_frame} faces embedded per frame);`,
    `embedder ${ranOn(t)},`,
    // The detector always runs on ORT: the kernels lower only the embedder.
    `detector ${t.detector_model} on ${t.detector_engine};`,
    `detect ${t.detect_ms_per_frame_p50} ms/frame, embed ${t.embed_ms_per_face_p50} ms/face (runs ${t.embed_ms_per_face_runs.join(', ')})`,
  ].join(' ');
}

export function formatPipelineBench(r: PipelineBenchReport): string {
  const { latency: l, memory: m } = r;
  return [
    `end-to-end, 640x360 one-face video (assets/demo/door.mp4), capture -> MQTT, embedding every face (detector mirror averaging ${r.mirror_average ? 'on' : 'off'}):`,
    ...r.throughput.map(throughputLine),
    `  int8_vs_fp32_fps ${r.int8_vs_fp32_fps}`,
    `  embed_dense_vs_relu0 ${r.embed_dense_vs_relu0} (embed ms/face, dense / gated: above 1, the gated embedder is faster)`,
    '  (detect: ms per frame; embed: the embedder alone, a face and its mirror in one batch, ms per face; each the median over the runs of the run mean)',
    `latency at 30 fps: frame capture->done p50 ${l.frame_p50_ms} ms, p95 ${l.frame_p95_ms} ms (${l.frames} frames); event capture->PUBACK p50 ${l.event_p50_ms} ms, p95 ${l.event_p95_ms} ms (${l.events} events, one decision per frame)`,
    `memory over ${m.seconds} s: RSS ${m.rss_mb_start} MB after warm-up, ${m.rss_mb_end} MB at the end, max ${m.rss_mb_max} MB; mean of the first / last minute ${m.rss_mb_first_minute} / ${m.rss_mb_last_minute} MB; slope ${m.slope_mb_per_min} MB/min`,
  ].join('\n');
}
