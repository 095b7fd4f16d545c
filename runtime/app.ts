// The application: the one place that knows every stage. It wires config -> models -> cameras ->
// pipelines -> events -> MQTT, the remote control plane and the scheduled jobs on top, and tears them
// down in reverse on stop.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { createFrameSource } from './capture/index.ts';
import {
  type ChangeClassification,
  type Config,
  cameraSettings,
  checkTargetFars,
  isLoopback,
  redactSecrets,
} from './config/index.ts';
import { createHandlers, type DevicePort, type GalleryPort } from './control/handlers/index.ts';
import { OperatorKeyFile } from './control/operator-keys.ts';
import { configPort, devicePort, galleryPort, ModelControl } from './control/ports.ts';
import { ControlRouter } from './control/router.ts';
import { type EventQueue, openEventQueue } from './events/queue.ts';
import { type DeviceState, EVENT_SCHEMA_VERSION, type FaceEvent } from './events/schema.ts';
import { Gallery } from './matching/gallery.ts';
import { UnknownVisitors } from './matching/unknowns.ts';
import { type InProcessBroker, startInProcessBroker } from './mqtt/broker.ts';
import { type FacegateMqttClient, startMqttClient } from './mqtt/client.ts';
import { HomeAssistantDiscovery } from './mqtt/discovery.ts';
import { buildTopics, type Topics } from './mqtt/topics.ts';
import { type AnalyzerConfig, FaceAnalyzer, LiveAnalyzer, modelSlots } from './pipeline/analyzer.ts';
import {
  CameraPipeline,
  type EventMeta,
  type FaceMemory,
  type PipelineConfig,
} from './pipeline/camera-pipeline.ts';
import { enrollPhotos, seedGallery } from './pipeline/enroll.ts';
import { RecentFaces } from './pipeline/recent-faces.ts';
import { Scheduler } from './scheduler/scheduler.ts';
import { AppUpdater } from './service/app-update.ts';
import { createLogger, type Logger } from './util/log.ts';
import { startWebServer, type WebPort, type WebServer } from './web/server.ts';

export interface AppOptions {
  /** The file `config` was loaded from: config/set rewrites it. Without one, config/set is refused. */
  configFile?: string;
  /** Where log lines go; App.start filters them by `logging.level` (App.logger). */
  log: (line: string) => void;
  /** Called for every event after it was handed to MQTT, with the publish outcome and its latency. */
  onEvent?: (event: FaceEvent, info: { outcome: string; latencyMs: number }) => void;
  /** Called after every processed frame with its capture-to-done latency and the source's frame number. */
  onFrame?: (camera: string, latencyMs: number, faces: number, seq: number) => void;
  /** Ends the process once `restart` has stopped facegate cleanly; process.exit by default. */
  exit?: (code: number) => void;
}

const STATE_INTERVAL_MS = 10_000;
/** Room for a request's topic and MQTT header beside control.maxPayloadBytes in one packet. */
const PACKET_OVERHEAD_BYTES = 64 * 1024;
/** Unknown visitors past unknowns.retentionDays are forgotten this often (and whenever one is added). */
const PRUNE_INTERVAL_MS = 3_600_000;
/** The release's version (bundle.sh writes it into package.json). */
const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
/** Gallery backups kept in schedules.backupDir; older ones are deleted after each backup. */
const BACKUPS_KEPT = 7;
const BACKUP_FILE = /^gallery-.+\.db$/;

export class App {
  private pipelines: CameraPipeline[] = [];
  private stateTimer: NodeJS.Timeout | null = null;
  private pruneTimer: NodeJS.Timeout | null = null;
  private readonly started = Date.now();
  readonly models: ModelControl;
  private readonly router: ControlRouter;
  private readonly scheduler: Scheduler;
  private readonly discovery: HomeAssistantDiscovery;
  private listening: Promise<void> = Promise.resolve();
  /** Unknown visitors (in the gallery's file) and the faces behind the latest events (in memory). */
  readonly faces: FaceMemory;
  /** The gallery commands, shared by MQTT and the web page. */
  private readonly galleryPort: GalleryPort;
  private readonly device: DevicePort;
  private web: WebServer | null = null;
  private stopping: Promise<void> | null = null;

  private constructor(
    private config_: Config,
    private readonly opts: AppOptions,
    private readonly modelsDir: string,
    readonly analyzer: LiveAnalyzer,
    readonly gallery: Gallery,
    private readonly queue: EventQueue,
    readonly mqtt: FacegateMqttClient,
    private topics_: Topics,
    private readonly broker: InProcessBroker | null,
    /** The process's log, at `logging.level` (read at start); `facegate run` writes through it too. */
    readonly logger: Logger,
  ) {
    const operatorKeys = new OperatorKeyFile(config_.control.operatorKeysFile, logger.child('control'));
    this.faces = { unknowns: new UnknownVisitors(gallery), recent: new RecentFaces() };
    const analyzerConfig = this.analyzerConfig();
    this.models = new ModelControl({
      config: () => this.config_,
      models: analyzerConfig.models,
      slots: {
        detector: modelSlots(analyzerConfig, 'detector'),
        embedder: modelSlots(analyzerConfig, 'embedder'),
      },
      analyzer,
      gallery,
      onStateChange: () => this.publishModelStates(),
    });
    this.galleryPort = galleryPort(gallery, analyzer, this.faces, (removed) => {
      for (const name of removed) mqtt.publishRetained(this.topics_.person(name), '');
      this.announcePeople();
      this.publishUnknownCount();
    });
    const device = devicePort({
      pipelines: () => this.pipelines,
      analyzer,
      queueDepth: () => queue.size,
      publishSnapshot: async (jpeg) => {
        if (!mqtt.connected) throw new Error('not connected to the MQTT broker');
        await mqtt.connection.publishAsync(this.topics_.snapshot, jpeg, { qos: 1 });
      },
      restart: () => this.restart(),
    });
    this.device = device;
    this.router = new ControlRouter({
      client: mqtt.connection,
      topics: topics_,
      control: () => this.config_.control,
      // Fixed at start: config/set cannot change the broker, the key file or dataDir.
      privateBroker: broker !== null && isLoopback(broker.host),
      operatorKeys: () => operatorKeys.keys(),
      nonceFile: join(resolve(config_.dataDir), 'control-nonces'),
      handlers: createHandlers({
        config: configPort({
          current: () => this.config_,
          file: opts.configFile,
          check: (config) => checkTargetFars(config, (far) => this.analyzer.current.thresholdFor(far)),
          apply: (config, changes) => this.applyConfig(config, changes),
        }),
        gallery: this.galleryPort,
        models: this.models,
        device,
        app: new AppUpdater({
          dataDir: resolve(config_.dataDir),
          publicKeys: () => this.config_.models.update.publicKeys,
          maxBytes: () => this.config_.models.update.maxDownloadBytes,
          version: VERSION,
        }),
      }),
      log: logger.child('control'),
    });
    this.scheduler = new Scheduler(
      {
        heartbeat: async () => {
          // A heartbeat says "alive now": one queued while offline would arrive late and mean nothing.
          if (!mqtt.connected) return;
          const report = await device.health();
          await mqtt.connection.publishAsync(this.topics_.heartbeat, JSON.stringify(report), { qos: 1 });
        },
        modelUpdateCheck: async () => {
          await this.models.update({});
        },
        galleryBackup: () => this.backupGallery(),
      },
      { log: logger.child('scheduler') },
    );
    this.discovery = new HomeAssistantDiscovery(mqtt, VERSION, logger.child('homeassistant'));
  }

  static async start(config: Config, opts: AppOptions): Promise<App> {
    // libvips' operation cache (50 MB by default) only ever misses on camera frames; it just holds memory.
    sharp.cache(false);
    const logger = createLogger({ level: config.logging.level, write: opts.log });
    const modelsDir = resolve(config.models.dir);
    // The models are built before start (`npm run models`; npm start's prestart builds missing ones):
    // a missing one fails here naming the command. Opening reports only installed versions it skipped.
    const analyzer = new LiveAnalyzer(await FaceAnalyzer.open(analyzerConfigOf(config, modelsDir), logger));
    checkTargetFars(config, (far) => analyzer.current.thresholdFor(far));

    mkdirSync(dirname(resolve(config.gallery.path)), { recursive: true });
    const gallery = Gallery.open(config.gallery.path);
    await matchGalleryTo(analyzer.current, gallery, logger.child('gallery'));
    if (config.gallery.seedDir) {
      const seeded = await seedGallery(analyzer.current, gallery, config.gallery.seedDir);
      if (seeded.length > 0)
        logger.child('gallery').info(`enrolled ${seeded.join(', ')} from ${config.gallery.seedDir}`);
    }

    mkdirSync(resolve(config.dataDir), { recursive: true });
    const maxPacketBytes = config.control.maxPayloadBytes + PACKET_OVERHEAD_BYTES;
    const { username, password, tls, keepaliveSeconds, clientId } = config.mqtt;
    const broker = config.mqtt.url
      ? null
      : await startInProcessBroker({
          host: config.mqtt.inProcessBrokerHost,
          port: config.mqtt.inProcessBrokerPort,
          credentials: username && password ? { username, password } : undefined,
          maxPacketBytes,
          log: logger.child('broker'),
        });
    if (broker) logger.child('mqtt').info(`no broker configured: in-process broker on ${broker.url}`);
    const url = config.mqtt.url ?? (broker as InProcessBroker).url;

    const topics = topicsOf(config);
    const queue = await openEventQueue(config.offlineQueue.path, {
      maxEvents: config.offlineQueue.maxEvents,
      policy: config.offlineQueue.whenFull,
    });
    const mqtt = await startMqttClient({
      url,
      topics,
      queue,
      eventQos: config.mqtt.qos,
      clientId,
      username,
      password,
      tls: tls.ca || tls.cert || tls.key ? tls : undefined,
      keepaliveSeconds,
      maxPacketBytes,
      // The in-process broker (aedes) speaks MQTT 3.1.1 only.
      protocolVersion: broker ? 4 : 5,
      log: logger.child('mqtt'),
    });
    const app = new App(config, opts, modelsDir, analyzer, gallery, queue, mqtt, topics, broker, logger);
    app.publishRetainedState();
    for (const camera of config.cameras) await app.startCamera(camera);
    // Not awaited: a broker that is down at start must not keep the cameras from running.
    app.listening = app.router.start();
    app.listening.catch((e: Error) =>
      logger.child('control').error(`not listening for requests: ${e.message}`),
    );
    if (config.web.enabled) {
      app.web = await startWebServer(config.web, app.webPort());
      logger.child('web').info(`local page on ${app.web.url}`);
    }
    app.scheduler.reconfigure(config.schedules);
    app.stateTimer = setInterval(() => app.publishState('running'), STATE_INTERVAL_MS);
    app.pruneTimer = setInterval(() => app.pruneUnknowns(), PRUNE_INTERVAL_MS);
    app.pruneUnknowns();
    app.publishState('running');
    return app;
  }

  /** The accepted configuration: as started, then as changed by config/set. */
  get config(): Config {
    return this.config_;
  }

  get topics(): Topics {
    return this.topics_;
  }

  /** Resolves once the broker granted the control subscriptions (only once it is reachable). */
  get controlReady(): Promise<void> {
    return this.listening;
  }

  private analyzerConfig(): AnalyzerConfig {
    return analyzerConfigOf(this.config_, this.modelsDir);
  }

  /** The camera's settings: its overrides merged over the global ones. */
  private pipelineConfig(camera: Config['cameras'][number]): PipelineConfig {
    const { presentationAttack, unknowns, mqtt } = this.config_;
    return {
      ...cameraSettings(this.config_, camera),
      presentationAttack,
      unknowns,
      snapshots: mqtt.snapshots,
      ...(camera.roi ? { roi: camera.roi } : {}),
    };
  }

  private async startCamera(camera: Config['cameras'][number]): Promise<void> {
    const source = createFrameSource(camera);
    const log = this.logger.child(`camera ${camera.id}`);
    source.on('error', (e) => log.error(e.message));
    source.on('restart', (r) =>
      log.warn(`restarting in ${r.delayMs} ms (attempt ${r.attempt}): ${r.reason}`),
    );
    const pipeline = new CameraPipeline({
      camera: camera.id,
      source,
      analyzer: this.analyzer,
      gallery: this.gallery,
      memory: this.faces,
      config: this.pipelineConfig(camera),
      onEvent: (event, meta) => this.publish(event, meta),
      onError: (e) => log.error(`frame failed: ${e.message}`),
      onFrameDone: (latencyMs, faces, seq) => this.opts.onFrame?.(camera.id, latencyMs, faces, seq),
    });
    await pipeline.start();
    const index = this.config_.cameras.findIndex((c) => c.id === camera.id);
    this.pipelines[index] = pipeline;
    this.mqtt.publishRetained(this.topics_.cameraAvailability(camera.id), 'online');
  }

  /** config/set, once the new configuration is on disk: the live settings take effect here. */
  private async applyConfig(next: Config, changes: ChangeClassification): Promise<void> {
    this.config_ = next;
    const changed = (key: string) =>
      changes.live.some((path) => path === key || path.startsWith(`${key}.`) || path.startsWith(`${key}[`));
    if (changed('detection') || changed('presentationAttack'))
      await this.analyzer.swap((current) => current.withConfig(this.analyzerConfig()));
    for (const [i, pipeline] of this.pipelines.entries())
      pipeline.setConfig(this.pipelineConfig(next.cameras[i]));
    // A source reads fps and restart policy when it starts; restarting just that camera applies them.
    for (const [i, camera] of next.cameras.entries()) {
      if (!changed(`cameras[${i}].fps`) && !changed(`cameras[${i}].restart`)) continue;
      await this.pipelines[i].stop();
      await this.startCamera(camera);
    }
    if (changed('schedules')) this.scheduler.reconfigure(next.schedules);
    this.publishRetainedState();
    if (changed('mqtt.baseTopic') || changed('homeAssistant.discoveryPrefix')) {
      // Once this request is answered: its response still goes where the operator is listening.
      void this.router
        .idle()
        .then(() => this.moveTopics(topicsOf(next)))
        .catch((e: Error) => this.logger.child('control').error(`moving to new topics failed: ${e.message}`));
    }
  }

  /** Listens on the new request topics first, so `online` on the new tree means commands work there. */
  private async moveTopics(topics: Topics): Promise<void> {
    await this.router.setTopics(topics);
    if (topics.availability !== this.topics_.availability) this.mqtt.setTopics(topics);
    this.topics_ = topics;
    this.publishRetainedState();
    this.publishState('running');
  }

  /** Everything retained the device owns: configuration, model states, Home Assistant discovery. */
  private publishRetainedState(): void {
    this.mqtt.publishRetained(this.topics_.config, redactSecrets(this.config_));
    this.publishModelStates();
    this.announcePeople();
  }

  /** Home Assistant discovery for the current configuration and enrolled people. */
  private announcePeople(): void {
    this.discovery.update(
      this.config_,
      this.topics_,
      this.gallery.list().map((p) => p.name),
    );
  }

  private publishModelStates(): void {
    this.mqtt.publishRetained(this.topics_.model, this.models.states);
  }

  private publishUnknownCount(): void {
    this.mqtt.publishRetained(this.topics_.unknowns, { count: this.faces.unknowns.list().length });
  }

  private publish(event: FaceEvent, meta: EventMeta): void {
    // For Home Assistant: the camera's device trigger, who is where, how many strangers are kept.
    const { connection } = this.mqtt;
    if (this.mqtt.connected)
      connection.publish(this.topics_.cameraTrigger(event.camera), event.type, { qos: 1 }, () => {});
    if (event.type === 'recognized' && event.identity !== null)
      this.mqtt.publishRetained(this.topics_.person(event.identity), {
        camera: event.camera,
        lastSeen: event.time,
      });
    if (event.unknownId !== undefined) this.publishUnknownCount();
    this.mqtt.publishEvent(event).then(
      (outcome) => this.opts.onEvent?.(event, { outcome, latencyMs: Date.now() - meta.capturedAt }),
      (e: Error) => this.logger.child('mqtt').error(`event ${event.id} not published: ${e.message}`),
    );
  }

  /** Enrols one person from photo files or buffers (the same path as `facegate enroll`). */
  enrollPhoto(name: string, ...photos: (string | Buffer)[]): Promise<{ added: number }> {
    return this.analyzer.use((analyzer) =>
      enrollPhotos(
        analyzer,
        this.gallery,
        name,
        photos.map((data, i) => ({ source: typeof data === 'string' ? data : `photo ${i + 1}`, data })),
      ),
    );
  }

  /** The local web page's view of the device. */
  private webPort(): WebPort {
    return {
      cameras: () => this.pipelines.map((p) => ({ id: p.camera, fps: p.stats().fps, view: p.view() })),
      frame: async (camera) => (await this.pipelines.find((p) => p.camera === camera)?.snapshot()) ?? null,
      events: () => this.faces.recent.list(),
      gallery: this.galleryPort,
      photo: (name) => this.gallery.photo(name),
      rename: (from, to) => {
        const renamed = this.gallery.rename(from, to);
        if (renamed) {
          this.mqtt.publishRetained(this.topics_.person(from), '');
          this.announcePeople();
        }
        return renamed;
      },
      unknownCrop: (id) => this.faces.unknowns.crops(id)[0] ?? null,
      health: async () => this.device.health(),
    };
  }

  /** Reports when the local web page is listening: `web.url`. */
  get webUrl(): string | null {
    return this.web?.url ?? null;
  }

  private pruneUnknowns(): void {
    try {
      const removed = this.faces.unknowns.prune(this.config_.unknowns, Date.now());
      if (removed > 0) this.logger.child('unknowns').info(`forgot ${removed} unknown visitor(s)`);
    } catch (e) {
      this.logger.child('unknowns').error(`pruning unknown visitors failed: ${(e as Error).message}`);
    }
  }

  cameraStats() {
    return this.pipelines.map((p) => p.stats());
  }

  /** A consistent copy to schedules.backupDir/gallery-<UTC time>.db; the BACKUPS_KEPT newest stay. */
  private async backupGallery(): Promise<void> {
    const dir = resolve(this.config_.schedules.backupDir);
    mkdirSync(dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    await this.gallery.backup(join(dir, `gallery-${stamp}.db`));
    // The stamp sorts by time, so the oldest come first.
    const backups = readdirSync(dir)
      .filter((f) => BACKUP_FILE.test(f))
      .sort();
    for (const old of backups.slice(0, -BACKUPS_KEPT)) rmSync(join(dir, old), { force: true });
  }

  /**
   * The `restart` command: a clean stop, then exit code 0 for the supervisor to start facegate again
   * (systemd Restart=always; docs/reliability.md). Returns at once: the stop waits for the control
   * router, which is still answering the request that asked for it.
   */
  private restart(): void {
    const exit = this.opts.exit ?? ((code: number) => process.exit(code));
    const log = this.logger.child('facegate');
    log.info('restart requested: stopping');
    void this.stop()
      .catch((e: Error) => log.error(`stop before restart failed: ${e.message}`))
      .finally(() => exit(0));
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
      model: this.analyzer.current.modelRef,
      events: { published: stats.published, queued: stats.queued, dropped: stats.dropped },
    };
    this.mqtt.publishRetained(this.topics_.state, state);
  }

  /**
   * Answers the requests already received first (a model swap in progress needs frames to finish), then
   * stops cameras so no new event starts, then flushes events and says `stopped`. Once, however often
   * it is asked (a `restart` and a SIGTERM may race).
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    if (this.stateTimer) clearInterval(this.stateTimer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.scheduler.stop();
    await this.router.stop();
    await this.web?.close();
    this.discovery.stop();
    await Promise.all(this.pipelines.map((p) => p.stop()));
    for (const p of this.pipelines)
      this.mqtt.publishRetained(this.topics_.cameraAvailability(p.camera), 'offline');
    this.publishState('stopping');
    await this.mqtt.stop();
    await this.queue.close();
    this.gallery.close();
    await this.analyzer.close();
    await this.broker?.stop();
  }
}

/**
 * Re-embeds what the gallery holds for another embedder version. A swap re-embeds before it installs the
 * new version, so a power cut in between leaves vectors of a model that is not running; so would an
 * enrolment by a CLI running another version. Without this nobody would be recognised.
 */
async function matchGalleryTo(analyzer: FaceAnalyzer, gallery: Gallery, log: Logger) {
  try {
    const converted = await gallery.reembed(
      analyzer.modelRef,
      async (crop) => (await analyzer.embed([crop]))[0],
    );
    if (converted > 0) log.info(`re-embedded ${converted} embedding(s) for the running model`);
  } catch (e) {
    log.error((e as Error).message);
  }
}

function analyzerConfigOf(config: Config, modelsDir: string): AnalyzerConfig {
  return { ...config, models: { ...config.models, dir: modelsDir } };
}

function topicsOf(config: Config): Topics {
  return buildTopics({
    baseTopic: config.mqtt.baseTopic,
    deviceId: config.device.id,
    discoveryPrefix: config.homeAssistant.discoveryPrefix,
  });
}
