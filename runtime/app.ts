// The application: the one place that knows every stage, and only wires them. It creates config ->
// models -> cameras -> pipelines -> events -> MQTT, the remote control plane and the scheduled jobs on
// top, and the features that run on them (features/), starts them in order and stops them in reverse.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { type Config, checkTargetFars, isLoopback } from './config/index.ts';
import { createHandlers, type DevicePort, type GalleryPort } from './control/handlers/index.ts';
import { OperatorKeyFile } from './control/operator-keys.ts';
import { configPort, devicePort, galleryPort, ModelControl } from './control/ports.ts';
import { ControlRouter } from './control/router.ts';
import { type EventQueue, openEventQueue } from './events/queue.ts';
import type { FaceEvent } from './events/schema.ts';
import { Cameras } from './features/cameras.ts';
import { EventPublisher } from './features/event-publisher.ts';
import { GalleryBackups } from './features/gallery-backups.ts';
import { LiveConfig } from './features/live-config.ts';
import type { Settings } from './features/settings.ts';
import { StatePublisher } from './features/state-publisher.ts';
import { UnknownsPruning } from './features/unknowns-pruning.ts';
import { Gallery } from './matching/gallery/index.ts';
import { UnknownVisitors } from './matching/unknowns.ts';
import { type InProcessBroker, startInProcessBroker } from './mqtt/broker.ts';
import { type FacegateMqttClient, startMqttClient } from './mqtt/client.ts';
import { HomeAssistantDiscovery } from './mqtt/discovery.ts';
import { buildTopics, type Topics } from './mqtt/topics.ts';
import { type AnalyzerConfig, FaceAnalyzer, LiveAnalyzer, modelSlots } from './pipeline/analyzer.ts';
import type { FaceMemory } from './pipeline/camera-pipeline.ts';
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

/** Room for a request's topic and MQTT header beside control.maxPayloadBytes in one packet. */
const PACKET_OVERHEAD_BYTES = 64 * 1024;
/** The release's version (bundle.sh writes it into package.json). */
const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export class App {
  private readonly settings: Settings;
  readonly models: ModelControl;
  private readonly cameras: Cameras;
  private readonly state: StatePublisher;
  private readonly events: EventPublisher;
  private readonly pruning: UnknownsPruning;
  private readonly router: ControlRouter;
  private readonly scheduler: Scheduler;
  private readonly discovery: HomeAssistantDiscovery;
  /** config/set applied to the running parts. */
  private readonly liveConfig: LiveConfig;
  private listening: Promise<void> = Promise.resolve();
  /** Unknown visitors (in the gallery's file) and the faces behind the latest events (in memory). */
  readonly faces: FaceMemory;
  /** The gallery commands, shared by MQTT and the web page. */
  private readonly galleryPort: GalleryPort;
  private readonly device: DevicePort;
  private web: WebServer | null = null;
  private stopping: Promise<void> | null = null;

  private constructor(
    config: Config,
    private readonly opts: AppOptions,
    modelsDir: string,
    readonly analyzer: LiveAnalyzer,
    readonly gallery: Gallery,
    private readonly queue: EventQueue,
    readonly mqtt: FacegateMqttClient,
    topics: Topics,
    private readonly broker: InProcessBroker | null,
    /** The process's log, at `logging.level` (read at start); `facegate run` writes through it too. */
    readonly logger: Logger,
  ) {
    const settings: Settings = { config, topics };
    this.settings = settings;
    const operatorKeys = new OperatorKeyFile(config.control.operatorKeysFile, logger.child('control'));
    this.faces = { unknowns: new UnknownVisitors(gallery), recent: new RecentFaces() };
    this.cameras = new Cameras({
      settings,
      analyzer,
      gallery,
      memory: this.faces,
      mqtt,
      log: logger,
      onEvent: (event, meta) => this.events.publish(event, meta),
      onFrameDone: opts.onFrame,
    });
    this.pruning = new UnknownsPruning({
      unknowns: this.faces.unknowns,
      settings: () => settings.config.unknowns,
      log: logger.child('unknowns'),
    });
    const analyzerConfig = analyzerConfigOf(config, modelsDir);
    this.models = new ModelControl({
      config: () => settings.config,
      models: analyzerConfig.models,
      slots: {
        detector: modelSlots(analyzerConfig, 'detector'),
        embedder: modelSlots(analyzerConfig, 'embedder'),
      },
      analyzer,
      gallery,
      onStateChange: () => this.state.modelStates(),
    });
    this.galleryPort = galleryPort(gallery, analyzer, this.faces, (removed) => {
      this.state.forget(removed);
      this.state.unknownCount();
    });
    const device = devicePort({
      pipelines: () => this.cameras.pipelines,
      analyzer,
      queueDepth: () => queue.size,
      publishSnapshot: async (jpeg) => {
        if (!mqtt.connected) throw new Error('not connected to the MQTT broker');
        await mqtt.connection.publishAsync(settings.topics.snapshot, jpeg, { qos: 1 });
      },
      restart: () => this.restart(),
    });
    this.device = device;
    this.router = new ControlRouter({
      client: mqtt.connection,
      topics,
      control: () => settings.config.control,
      // Fixed at start: config/set cannot change the broker, the key file or dataDir.
      privateBroker: broker !== null && isLoopback(broker.host),
      operatorKeys: () => operatorKeys.keys(),
      nonceFile: join(resolve(config.dataDir), 'control-nonces'),
      handlers: createHandlers({
        config: configPort({
          current: () => settings.config,
          file: opts.configFile,
          check: (next) => checkTargetFars(next, (far) => analyzer.current.thresholdFor(far)),
          apply: (next, changes) => this.liveConfig.apply(next, changes),
        }),
        gallery: this.galleryPort,
        models: this.models,
        device,
        app: new AppUpdater({
          dataDir: resolve(config.dataDir),
          publicKeys: () => settings.config.models.update.publicKeys,
          maxBytes: () => settings.config.models.update.maxDownloadBytes,
          version: VERSION,
        }),
      }),
      log: logger.child('control'),
    });
    const backups = new GalleryBackups({ gallery, dir: () => settings.config.schedules.backupDir });
    this.scheduler = new Scheduler(
      {
        heartbeat: async () => {
          // A heartbeat says "alive now": one queued while offline would arrive late and mean nothing.
          if (!mqtt.connected) return;
          const report = await device.health();
          await mqtt.connection.publishAsync(settings.topics.heartbeat, JSON.stringify(report), { qos: 1 });
        },
        modelUpdateCheck: async () => {
          await this.models.update({});
        },
        galleryBackup: () => backups.backup(),
      },
      { log: logger.child('scheduler') },
    );
    this.discovery = new HomeAssistantDiscovery(mqtt, VERSION, logger.child('homeassistant'));
    this.state = new StatePublisher({
      settings,
      mqtt,
      discovery: this.discovery,
      gallery,
      unknowns: this.faces.unknowns,
      cameras: () => this.cameras.pipelines,
      model: () => analyzer.current.modelRef,
      modelStates: () => this.models.states,
      version: VERSION,
    });
    this.events = new EventPublisher({
      settings,
      mqtt,
      state: this.state,
      onPublished: opts.onEvent,
      log: logger.child('mqtt'),
    });
    this.liveConfig = new LiveConfig({
      settings,
      analyzer,
      analyzerConfig: (next) => analyzerConfigOf(next, modelsDir),
      topicsOf,
      cameras: this.cameras,
      scheduler: this.scheduler,
      router: this.router,
      mqtt,
      state: this.state,
      log: logger.child('control'),
    });
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
      subscriberGraceMs: config.mqtt.subscriberGraceSeconds * 1000,
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
    app.state.retained();
    await app.cameras.start();
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
    app.pruning.start();
    app.state.start();
    return app;
  }

  /** The accepted configuration: as started, then as changed by config/set. */
  get config(): Config {
    return this.settings.config;
  }

  get topics(): Topics {
    return this.settings.topics;
  }

  /** Resolves once the broker granted the control subscriptions (only once it is reachable). */
  get controlReady(): Promise<void> {
    return this.listening;
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
      cameras: () =>
        this.cameras.pipelines.map((p) => ({ id: p.camera, fps: p.stats().fps, view: p.view() })),
      frame: async (camera) =>
        (await this.cameras.pipelines.find((p) => p.camera === camera)?.snapshot()) ?? null,
      events: () => this.faces.recent.list(),
      gallery: this.galleryPort,
      photo: (name) => this.gallery.photo(name),
      rename: (from, to) => {
        const renamed = this.gallery.rename(from, to);
        if (renamed) this.state.forget([from]);
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

  cameraStats() {
    return this.cameras.pipelines.map((p) => p.stats());
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
    this.state.stop();
    this.pruning.stop();
    this.scheduler.stop();
    await this.router.stop();
    await this.web?.close();
    this.discovery.stop();
    await this.cameras.stop();
    this.state.state('stopping');
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
