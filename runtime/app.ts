// The application: the one place that knows every stage. It wires config -> models -> cameras ->
// pipelines -> events -> MQTT, and tears them down in reverse on stop.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Gallery } from './auth/gallery.ts';
import { createFrameSource } from './capture/index.ts';
import { type Config, redactSecrets } from './config/index.ts';
import { type EventQueue, openEventQueue } from './events/queue.ts';
import { type DeviceState, EVENT_SCHEMA_VERSION, type FaceEvent } from './events/schema.ts';
import { ensureModels } from './models/build/ensure.ts';
import { type InProcessBroker, startInProcessBroker } from './mqtt/broker.ts';
import { type FacegateMqttClient, startMqttClient } from './mqtt/client.ts';
import { buildTopics, type Topics } from './mqtt/topics.ts';
import { FaceAnalyzer } from './pipeline/analyzer.ts';
import { CameraPipeline, type EventMeta, type PipelineConfig } from './pipeline/camera-pipeline.ts';
import { enrollPhotos, seedGallery } from './pipeline/enroll.ts';

export interface AppOptions {
  /** Where the face data for building missing models lives. */
  dataDir: string;
  log: (line: string) => void;
  /** Called for every event after it was handed to MQTT, with the publish outcome and its latency. */
  onEvent?: (event: FaceEvent, info: { outcome: string; latencyMs: number }) => void;
  /** Called after every processed frame with its capture-to-done latency. */
  onFrame?: (camera: string, latencyMs: number, faces: number) => void;
}

const STATE_INTERVAL_MS = 10_000;
const VERSION = '0.1.0';

export class App {
  private pipelines: CameraPipeline[] = [];
  private stateTimer: NodeJS.Timeout | null = null;
  private readonly started = Date.now();

  private constructor(
    private config: Config,
    private readonly opts: AppOptions,
    readonly analyzer: FaceAnalyzer,
    readonly gallery: Gallery,
    private readonly queue: EventQueue,
    readonly mqtt: FacegateMqttClient,
    readonly topics: Topics,
    private readonly broker: InProcessBroker | null,
  ) {}

  static async start(config: Config, opts: AppOptions): Promise<App> {
    const { log } = opts;
    const modelsDir = resolve(config.models.dir);
    await ensureModels(modelsDir, opts.dataDir, log);
    const analyzer = await FaceAnalyzer.open({ ...config, models: { ...config.models, dir: modelsDir } });

    mkdirSync(dirname(resolve(config.gallery.path)), { recursive: true });
    const gallery = Gallery.open(config.gallery.path);
    if (config.gallery.seedDir) {
      const seeded = await seedGallery(analyzer, gallery, config.gallery.seedDir);
      if (seeded.length > 0) log(`[gallery] enrolled ${seeded.join(', ')} from ${config.gallery.seedDir}`);
    }

    const broker = config.mqtt.url
      ? null
      : await startInProcessBroker({
          host: config.mqtt.inProcessBrokerHost,
          port: config.mqtt.inProcessBrokerPort,
        });
    if (broker) log(`[mqtt] no broker configured: in-process broker on ${broker.url}`);
    const url = config.mqtt.url ?? (broker as InProcessBroker).url;

    const topics = buildTopics({ baseTopic: config.mqtt.baseTopic, deviceId: config.device.id });
    const queue = await openEventQueue(config.offlineQueue.path, {
      maxEvents: config.offlineQueue.maxEvents,
      policy: config.offlineQueue.whenFull,
    });
    const { username, password, tls, keepaliveSeconds, clientId } = config.mqtt;
    const mqtt = await startMqttClient({
      url,
      topics,
      queue,
      clientId,
      username,
      password,
      tls: tls.ca || tls.cert || tls.key ? tls : undefined,
      keepaliveSeconds,
      log: (level, message) => log(`[mqtt] ${level}: ${message}`),
    });
    const app = new App(config, opts, analyzer, gallery, queue, mqtt, topics, broker);
    mqtt.publishRetained(topics.config, redactSecrets(config));
    await app.startCameras();
    app.stateTimer = setInterval(() => app.publishState('running'), STATE_INTERVAL_MS);
    app.publishState('running');
    return app;
  }

  private pipelineConfig(): PipelineConfig {
    const { detection, quality, recognition, presentationAttack, mqtt } = this.config;
    return { detection, quality, recognition, presentationAttack, snapshots: mqtt.snapshots };
  }

  private async startCameras(): Promise<void> {
    for (const camera of this.config.cameras) {
      const source = createFrameSource(camera);
      source.on('error', (e) => this.opts.log(`[camera ${camera.id}] ${e.message}`));
      source.on('restart', (r) =>
        this.opts.log(
          `[camera ${camera.id}] restarting in ${r.delayMs} ms (attempt ${r.attempt}): ${r.reason}`,
        ),
      );
      const pipeline = new CameraPipeline(
        camera.id,
        source,
        () => this.analyzer,
        this.gallery,
        this.pipelineConfig(),
        (event, meta) => this.publish(event, meta),
        (e) => this.opts.log(`[camera ${camera.id}] frame failed: ${e.message}`),
        (latencyMs, faces) => this.opts.onFrame?.(camera.id, latencyMs, faces),
      );
      await pipeline.start();
      this.pipelines.push(pipeline);
    }
  }

  private publish(event: FaceEvent, meta: EventMeta): void {
    this.mqtt.publishEvent(event).then(
      (outcome) => this.opts.onEvent?.(event, { outcome, latencyMs: Date.now() - meta.capturedAt }),
      (e: Error) => this.opts.log(`[mqtt] event ${event.id} not published: ${e.message}`),
    );
  }

  /** Enrols one person from photo files or buffers (the same path as `facegate enroll`). */
  enrollPhoto(name: string, ...photos: (string | Buffer)[]): Promise<{ added: number }> {
    return enrollPhotos(
      this.analyzer,
      this.gallery,
      name,
      photos.map((data, i) => ({ source: typeof data === 'string' ? data : `photo ${i + 1}`, data })),
    );
  }

  cameraStats() {
    return this.pipelines.map((p) => p.stats());
  }

  private publishState(status: DeviceState['status']): void {
    const stats = this.mqtt.stats();
    const state: DeviceState = {
      schemaVersion: EVENT_SCHEMA_VERSION,
      time: new Date().toISOString(),
      status,
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      cameras: this.pipelines.map((p) => ({ id: p.camera, online: true, fps: p.stats().fps })),
      model: this.analyzer.modelRef,
      events: { published: stats.published, queued: stats.queued, dropped: stats.dropped },
    };
    this.mqtt.publishRetained(this.topics.state, state);
  }

  /** Stops cameras first so no new event starts, then flushes events and says `stopped`. */
  async stop(): Promise<void> {
    if (this.stateTimer) clearInterval(this.stateTimer);
    await Promise.all(this.pipelines.map((p) => p.stop()));
    this.publishState('stopping');
    await this.mqtt.stop();
    await this.queue.close();
    this.gallery.close();
    await this.analyzer.close();
    await this.broker?.stop();
  }
}
