// End-to-end pipeline figures: capture (ffmpeg) -> detect -> embed -> decide -> MQTT (in-process broker),
// on a real 640x360 one-face video.
//  - throughput: the video decoded as fast as possible (no pacing, no drops), every face embedded;
//    int8 and fp32, and the dense and the ReLU-zero gated embedder, alternate run by run so all see
//    the same machine state; each run also gives the detect time per frame and the embedder's per face;
//  - latency: the video paced at its own 30 fps like a camera; capture-to-done per frame and
//    capture-to-PUBACK per event;
//  - memory (measured first, in the freshly started process): RSS sampled while the paced video loops,
//    for `soakSeconds`, with where the memory is (V8 spaces, ArrayBuffers, the rest) in the log.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapSpaceStatistics } from 'node:v8';
import { App } from '../app.ts';
import { type Config, loadConfig } from '../config/index.ts';
import { MODEL_NAMES } from '../models/manifest.ts';
import { Progress } from '../report/progress.ts';
import type { Logger } from '../util/log.ts';
import { median, percentile } from '../util/timing.ts';

export interface PipelineBenchOptions {
  video: string;
  enrolPhoto: string;
  modelsDir: string;
  runs: number;
  latencySeconds: number;
  soakSeconds: number;
  /** detection.mirrorAverage: the mirror pass doubles the detector's cost. */
  mirrorAverage: boolean;
  log: Logger;
}

export interface ThroughputRow {
  /** models.precision and models.embedder the run was configured with. */
  precision: string;
  embedder: string;
  /** models.engine in the config ('kernels' by default). */
  engine_asked: string;
  /** What the running analyzer opened (name.precision of the files) and the engine each runs on:
   * 'ort' under engine_asked 'kernels' means the kernels fell back (no addon, or an fp32 model). */
  embedder_model: string;
  embedder_engine: string;
  detector_model: string;
  detector_engine: string;
  fps_p50: number;
  runs: number[];
  frames: number;
  faces_per_frame: number;
  /** Medians over the runs of each run's mean, from the pipeline's summed stage times (not its moving
   * averages): detection per frame (mirror pass included), the embedder alone per face embedded. */
  detect_ms_per_frame_p50: number;
  embed_ms_per_face_p50: number;
  /** Each run's mean embed ms per face, in run order: its spread shows the machine's noise. */
  embed_ms_per_face_runs: number[];
}

export interface PipelineBenchReport {
  mirror_average: boolean;
  throughput: ThroughputRow[];
  int8_vs_fp32_fps: number;
  /** Embed ms per face of the dense embedder / of the gated one (above 1: the gated one is faster). */
  embed_dense_vs_relu0: number;
  latency: {
    frames: number;
    frame_p50_ms: number;
    frame_p95_ms: number;
    events: number;
    event_p50_ms: number;
    event_p95_ms: number;
  };
  memory: {
    seconds: number;
    rss_mb_start: number;
    rss_mb_end: number;
    rss_mb_max: number;
    slope_mb_per_min: number;
    /** Mean RSS over the first and the last minute after warm-up: steadier than single samples. */
    rss_mb_first_minute: number;
    rss_mb_last_minute: number;
  };
}

/** The embedder configurations the throughput runs alternate. */
const VARIANTS = [
  { precision: 'int8', embedder: MODEL_NAMES.embedder },
  { precision: 'fp32', embedder: MODEL_NAMES.embedder },
  { precision: 'int8', embedder: MODEL_NAMES.gatedEmbedder },
] as const;
type Variant = (typeof VARIANTS)[number];
const DEFAULT_MODELS: Variant = VARIANTS[0];

async function withApp<T>(
  opts: PipelineBenchOptions,
  camera: { realtime: boolean; loop: boolean; fps: number },
  models: Variant,
  body: (app: App, config: Config, frames: number[], events: number[]) => Promise<T>,
  recognition: Record<string, number> = {},
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'facegate-bench-'));
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      cameras: [
        {
          id: 'bench',
          source: { kind: 'video', path: opts.video, loop: camera.loop, realtime: camera.realtime },
          width: 640,
          height: 360,
          fps: camera.fps,
          restart: { initialDelayMs: 200, maxDelayMs: 1000, stallTimeoutMs: 10000, healthyAfterMs: 5000 },
        },
      ],
      models: { dir: opts.modelsDir, precision: models.precision, embedder: models.embedder },
      detection: { mirrorAverage: opts.mirrorAverage },
      recognition,
      // Port 0: the in-process broker takes any free port.
      mqtt: { inProcessBrokerPort: 0 },
      gallery: { path: join(dir, 'gallery.db'), seedDir: null },
      offlineQueue: { path: join(dir, 'queue') },
    }),
  );
  const frames: number[] = [];
  const events: number[] = [];
  const config = loadConfig({ file, env: {} });
  const app = await App.start(config, {
    log: () => {},
    onFrame: (_camera, latencyMs) => frames.push(latencyMs),
    onEvent: (_event, { latencyMs }) => events.push(latencyMs),
  });
  try {
    await app.enrollPhoto('enrolled', opts.enrolPhoto);
    return await body(app, config, frames, events);
  } finally {
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Resolves when no frame has arrived for `quietMs` (the unpaced, non-looping video has ended). */
async function untilQuiet(frames: number[], quietMs: number): Promise<void> {
  let last = -1;
  let since = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    if (frames.length !== last) {
      last = frames.length;
      since = Date.now();
    } else if (frames.length > 0 && Date.now() - since > quietMs) return;
  }
}

export async function benchPipeline(opts: PipelineBenchOptions): Promise<PipelineBenchReport> {
  // Memory first, in a process that has only started the app, as on a device: the unpaced throughput
  // runs touch far more of V8's young generation than a 30 fps camera does, and until V8 shrinks it
  // again (minutes later) those pages would read as the soak's starting RSS.
  opts.log.child('bench pipeline').info(`memory: paced video looping for ${opts.soakSeconds} s`);
  const memory = await withApp(opts, { realtime: true, loop: true, fps: 30 }, DEFAULT_MODELS, async () => {
    const samples: [number, number][] = [];
    const soak = new Progress('bench pipeline soak (s)', opts.soakSeconds, opts.log.info, 30_000);
    const start = Date.now();
    while (Date.now() - start < opts.soakSeconds * 1000) {
      await new Promise((r) => setTimeout(r, 1000));
      samples.push([(Date.now() - start) / 60_000, process.memoryUsage.rss() / 2 ** 20]);
      if (samples.length % 30 === 0) opts.log.info(memoryLine(samples.length));
      soak.tick();
    }
    soak.done();
    // Growth is judged after warm-up (the first fifth), by a least-squares slope.
    const steady = samples.slice(Math.floor(samples.length / 5));
    return {
      seconds: opts.soakSeconds,
      rss_mb_start: round(steady[0][1]),
      rss_mb_end: round(samples[samples.length - 1][1]),
      rss_mb_max: round(Math.max(...samples.map((s) => s[1]))),
      slope_mb_per_min: round(slope(steady)),
      rss_mb_first_minute: round(mean(steady.filter((p) => p[0] <= steady[0][0] + 1).map((p) => p[1]))),
      rss_mb_last_minute: round(
        mean(steady.filter((p) => p[0] >= steady[steady.length - 1][0] - 1).map((p) => p[1])),
      ),
    };
  });

  const measured = VARIANTS.map(() => ({
    fps: [] as number[],
    detect: [] as number[],
    embed: [] as number[],
  }));
  const last: Omit<
    ThroughputRow,
    'fps_p50' | 'runs' | 'detect_ms_per_frame_p50' | 'embed_ms_per_face_p50' | 'embed_ms_per_face_runs'
  >[] = [];
  const progress = new Progress('bench pipeline throughput', opts.runs * VARIANTS.length, opts.log.info, 0);
  for (let r = 0; r < opts.runs; r++) {
    for (const [v, variant] of VARIANTS.entries()) {
      await withApp(
        opts,
        { realtime: false, loop: false, fps: 120 },
        variant,
        async (app, config, latencies) => {
          const started = performance.now();
          await untilQuiet(latencies, 1500);
          const stats = app.cameraStats()[0];
          // The quiet period is not work: subtract it.
          const seconds = (performance.now() - started - 1500) / 1000;
          measured[v].fps.push(stats.framesProcessed / seconds);
          measured[v].detect.push(stats.sumMs.detect / Math.max(1, stats.framesProcessed));
          measured[v].embed.push(stats.sumMs.embedder / Math.max(1, stats.facesEmbedded));
          const { detector, embedder } = app.analyzer.current.engines();
          last[v] = {
            precision: variant.precision,
            embedder: variant.embedder,
            engine_asked: config.models.engine,
            embedder_model: embedder.model,
            embedder_engine: embedder.engine,
            detector_model: detector.model,
            detector_engine: detector.engine,
            frames: stats.framesProcessed,
            faces_per_frame: round(stats.facesEmbedded / Math.max(1, stats.framesProcessed)),
          };
        },
      );
      progress.tick();
    }
  }
  progress.done();
  const throughput: ThroughputRow[] = VARIANTS.map((_, v) => ({
    ...last[v],
    fps_p50: round(median(measured[v].fps)),
    runs: measured[v].fps.map(round),
    detect_ms_per_frame_p50: round(median(measured[v].detect)),
    embed_ms_per_face_p50: round(median(measured[v].embed)),
    embed_ms_per_face_runs: measured[v].embed.map(round),
  }));

  opts.log.child('bench pipeline').info(`latency: paced video for ${opts.latencySeconds} s`);
  // One decision per frame (k = n = 1, every frame a new track, no cooldown), so every frame with the
  // enrolled face publishes an event and capture-to-PUBACK has a distribution, not one sample.
  const perFrameDecisions = { k: 1, n: 1, cooldownSeconds: 0, trackMaxAgeMs: 1 };
  const latency = await withApp(
    opts,
    { realtime: true, loop: true, fps: 30 },
    DEFAULT_MODELS,
    async (_app, _config, frameLat, eventLat) => {
      await new Promise((r) => setTimeout(r, opts.latencySeconds * 1000));
      const f = [...frameLat].sort((a, b) => a - b);
      const e = [...eventLat].sort((a, b) => a - b);
      return {
        frames: f.length,
        frame_p50_ms: round(percentile(f, 50)),
        frame_p95_ms: round(percentile(f, 95)),
        events: e.length,
        event_p50_ms: round(percentile(e, 50)),
        event_p95_ms: round(percentile(e, 95)),
      };
    },
    perFrameDecisions,
  );

  const [int8, fp32, gated] = throughput;
  return {
    mirror_average: opts.mirrorAverage,
    throughput,
    int8_vs_fp32_fps: round(int8.fps_p50 / fp32.fps_p50),
    embed_dense_vs_relu0: round(int8.embed_ms_per_face_p50 / gated.embed_ms_per_face_p50),
    latency,
    memory,
  };
}

/** Where the memory is, for the soak's log: V8 heap vs ArrayBuffers vs the rest (native), MB. */
function memoryLine(seconds: number): string {
  const m = process.memoryUsage();
  const mb = (v: number) => (v / 2 ** 20).toFixed(1);
  let anon = '';
  try {
    const rollup = readFileSync('/proc/self/smaps_rollup', 'utf8');
    const kb = /^Anonymous:\s+(\d+) kB/m.exec(rollup);
    if (kb) anon = `, anonymous ${mb(Number(kb[1]) * 1024)}`;
  } catch {
    // Not Linux: the process.memoryUsage() fields are enough.
  }
  const spaces = getHeapSpaceStatistics()
    .filter((s) => s.space_size > 0)
    .map((s) => `${s.space_name.replace(/_space$/, '')} ${mb(s.space_size)}`)
    .join(' ');
  return `[bench pipeline soak] ${seconds} s: rss ${mb(m.rss)}, heapUsed ${mb(m.heapUsed)}, heapTotal ${mb(m.heapTotal)} (${spaces}), external ${mb(m.external)}, arrayBuffers ${mb(m.arrayBuffers)}, rss - heapTotal - external ${mb(m.rss - m.heapTotal - m.external)}${anon} MB`;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function slope(points: [number, number][]): number {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  const num = points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0);
  const den = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
  return den > 0 ? num / den : 0;
}

const round = (v: number) => Math.round(v * 100) / 100;
