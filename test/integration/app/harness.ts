// The whole device for the app integration tests: App on a real mosquitto with the real models, ffmpeg
// decoding the Hamilton clip, an operator client speaking the request/response API, and a local HTTP
// server offering model versions.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { App, type AppOptions } from '../../../runtime/app.ts';
import { type Config, loadConfig, mergeConfig } from '../../../runtime/config/index.ts';
import { signCommand } from '../../../runtime/control/signing.ts';
import type { FaceEvent } from '../../../runtime/events/schema.ts';
import { signManifest } from '../../../runtime/model-update/signature.ts';
import type { ModelManifest } from '../../../runtime/models/manifest.ts';
import type { Topics } from '../../../runtime/mqtt/topics.ts';
import { generateSigningKeyPair } from '../../../runtime/util/signing.ts';
import { makeSigningKey } from '../../helpers/control-fakes.ts';
import { type Mosquitto, startMosquitto } from '../../helpers/mosquitto.ts';
import { DOOR_CLIP, FACES_DIR, MODELS_DIR } from '../../helpers/paths.ts';
import { Subscriber, waitUntil } from '../mqtt/support.ts';

export const DEVICE = 'test-door';
/** The operator's key: the device trusts it (control.commandPublicKeys) and Operator signs with it. */
export const operatorKey = makeSigningKey();
export const HAMILTON = DOOR_CLIP;
export const LIN = join(FACES_DIR, 'face_recognition_examples', 'misc', 'lin-manuel-miranda.png');

/** Every frame the pipeline finished, in order. */
export interface ProcessedFrame {
  seq: number;
  /** Date.now() when it finished. */
  at: number;
  faces: number;
}

export interface RunningApp {
  app: App;
  config: Config;
  file: string;
  frames: ProcessedFrame[];
  logs: string[];
}

/** The Hamilton clip as the door camera. */
export function hamiltonCamera(loop = false) {
  return videoCamera(HAMILTON, loop);
}

/** A video file as the door camera, unpaced: realtime false hands over every frame, none is dropped. */
export function videoCamera(path: string, loop = false) {
  return {
    id: 'door',
    source: { kind: 'video', path, loop, realtime: false },
    width: 640,
    height: 360,
    fps: 30,
    restart: { initialDelayMs: 200, maxDelayMs: 1000, stallTimeoutMs: 10000, healthyAfterMs: 5000 },
  };
}

/**
 * One camera on the Hamilton clip, no seed photos, no schedules, everything stored in `dir`; `patch` is
 * merged over that as config/set would (so `cameras` replaces the list).
 */
export function writeConfig(dir: string, url: string, patch: object = {}): string {
  const base = {
    device: { id: DEVICE, name: 'Test door' },
    cameras: [hamiltonCamera()],
    models: { dir: MODELS_DIR },
    mqtt: { url },
    gallery: { path: join(dir, 'gallery.db'), seedDir: null },
    offlineQueue: { path: join(dir, 'queue') },
    schedules: {
      heartbeat: null,
      modelUpdateCheck: null,
      galleryBackup: null,
      backupDir: join(dir, 'backups'),
    },
    dataDir: join(dir, 'data'),
    control: { commandPublicKeys: [operatorKey.publicPem], operatorKeysFile: null },
  };
  const file = join(dir, 'config.yaml');
  writeFileSync(file, JSON.stringify(mergeConfig(base, patch)));
  return file;
}

export async function startApp(
  dir: string,
  url: string,
  patch: object = {},
  opts: { persist?: boolean; exit?: (code: number) => void; onEvent?: AppOptions['onEvent'] } = {},
): Promise<RunningApp> {
  const file = writeConfig(dir, url, patch);
  const config = loadConfig({ file, env: {} });
  const frames: ProcessedFrame[] = [];
  const logs: string[] = [];
  const app = await App.start(config, {
    configFile: opts.persist === false ? undefined : file,
    log: (line) => logs.push(line),
    onFrame: (_camera, _latencyMs, faces, seq) => frames.push({ seq, at: Date.now(), faces }),
    exit: opts.exit,
    onEvent: opts.onEvent,
  });
  await withTimeout(app.controlReady, 10_000, 'the control subscriptions');
  return { app, config, file, frames, logs };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An operator: sends signed requests, reads responses, and records the device's topics. */
export class Operator {
  private transaction = 0;

  private constructor(
    readonly sub: Subscriber,
    readonly topics: Topics,
  ) {}

  static async connect(url: string, topics: Topics, extra: string[] = []): Promise<Operator> {
    const device = `${topics.baseTopic}/${topics.deviceId}`;
    const sub = await Subscriber.connect(url, [
      `${device}/response/#`,
      topics.event,
      topics.model,
      topics.config,
      topics.heartbeat,
      ...extra,
    ]);
    return new Operator(sub, topics);
  }

  /** Sends `body` as `command` and resolves with the response carrying its transaction. */
  async ask(command: string, body: object = {}, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const transaction = `op-${++this.transaction}`;
    const responseTopic = this.topics.response(command);
    const find = () =>
      this.sub
        .on(responseTopic)
        .map((m) => JSON.parse(m.payload) as Record<string, unknown>)
        .find((r) => r.transaction === transaction);
    await this.send(command, { ...body, transaction });
    await waitUntil(`the response to ${command}`, () => find() !== undefined, timeoutMs);
    return find() as Record<string, unknown>;
  }

  /** Publishes `body` as `command`, signed with the operator's key, QoS 1. */
  async send(command: string, body: object): Promise<void> {
    const topic = this.topics.request(command);
    const signed = signCommand(body, operatorKey.privateKey, operatorKey.keyId, topic);
    await this.sub.client.publishAsync(topic, JSON.stringify(signed), { qos: 1 });
  }

  events(): FaceEvent[] {
    return this.sub.uniqueEvents(this.topics.event);
  }

  json<T>(topic: string): T[] {
    return this.sub.on(topic).map((m) => (m.payload === '' ? null : JSON.parse(m.payload)) as T);
  }

  end(): Promise<void> {
    return this.sub.end();
  }
}

/** Serves fixed bodies on 127.0.0.1, like a model update server. */
export class FileServer {
  private readonly files = new Map<string, Buffer>();

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FileServer> {
    const server = createServer();
    const files = new FileServer(server);
    server.on('request', (req, res) => {
      const body = files.files.get(req.url ?? '');
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return files;
  }

  /** `http://127.0.0.1:<port>`: what models.update.allowedOrigins lists to let the device fetch from here. */
  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Serves `body` at `path` and returns its URL. */
  put(path: string, body: Buffer | string): string {
    this.files.set(path, Buffer.from(body));
    return `${this.origin}${path}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A signing key trusted by the device (its public half goes in models.update.publicKeys). */
export const signingKey = generateSigningKeyPair();

/** The shipped int8 embedder and its manifest, as a new release `version` would ship them. */
export function embedderRelease(version: string): { manifest: ModelManifest; onnx: Buffer } {
  const manifest = JSON.parse(readFileSync(join(MODELS_DIR, 'facerec.int8.json'), 'utf8')) as ModelManifest;
  return { manifest: { ...manifest, version }, onnx: readFileSync(join(MODELS_DIR, manifest.file)) };
}

/** Puts a release on `server` under /<dir>/ and returns its manifest URL; `sign: false` leaves it unsigned. */
export function publishRelease(
  server: FileServer,
  dir: string,
  release: { manifest: ModelManifest; onnx: Buffer },
  opts: { sign?: boolean } = {},
): string {
  const manifest =
    opts.sign === false ? release.manifest : signManifest(release.manifest, signingKey.privateKeyPem);
  server.put(`/${dir}/${manifest.file}`, release.onnx);
  return server.put(`/${dir}/manifest.json`, JSON.stringify(manifest));
}

/** What each test of a file gets fresh: a folder and a real mosquitto, and the device and operator it starts. */
export interface DeviceBed {
  readonly dir: string;
  readonly broker: Mosquitto;
  device: RunningApp | undefined;
  op: Operator | undefined;
  /** Stops the device and closes the operator the test started (after each test, and when a test asks). */
  stopDevice(): Promise<void>;
}

/** Registers the hooks that give each test of the calling file a fresh DeviceBed and tear it down after. */
export function useDeviceBed(prefix: string): DeviceBed {
  const state = { dir: '', broker: undefined as Mosquitto | undefined };
  const bed: DeviceBed = {
    get dir() {
      return state.dir;
    },
    get broker() {
      if (!state.broker) throw new Error('the broker starts before each test');
      return state.broker;
    },
    device: undefined,
    op: undefined,
    async stopDevice() {
      await bed.device?.app.stop().catch(() => {});
      bed.device = undefined;
      await bed.op?.end();
      bed.op = undefined;
    },
  };
  beforeEach(async () => {
    state.dir = mkdtempSync(join(tmpdir(), prefix));
    state.broker = await startMosquitto();
  });
  afterEach(async () => {
    await bed.stopDevice();
    await state.broker?.dispose();
    rmSync(state.dir, { recursive: true, force: true });
  });
  return bed;
}
