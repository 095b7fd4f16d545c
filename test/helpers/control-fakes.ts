// Test doubles for the control plane: an in-memory MQTT client and ports that record what they are asked.

import { createPrivateKey, type KeyObject } from 'node:crypto';
import {
  type ChangeClassification,
  type Config,
  loadConfig,
  mergeConfig,
} from '../../runtime/config/index.ts';
import type { HealthReport, ModelChunk, ModelStatus } from '../../runtime/control/api.ts';
import type { ControlPorts } from '../../runtime/control/handlers/index.ts';
import type { ControlMqttClient } from '../../runtime/control/router.ts';
import { generateSigningKeyPair } from '../../runtime/util/signing.ts';

export const defaultConfig = (patch: unknown = {}): Config =>
  mergeConfig(loadConfig({ env: {} }), patch) as Config;

/** The smallest byte strings the enrol checks take for a JPEG and a PNG. */
export const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46]);
export const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00]);

export interface SigningKey {
  privateKey: KeyObject;
  publicPem: string;
  keyId: string;
}

export function makeSigningKey(): SigningKey {
  const pair = generateSigningKeyPair();
  return {
    privateKey: createPrivateKey(pair.privateKeyPem),
    publicPem: pair.publicKeyPem,
    keyId: pair.keyId,
  };
}

type Listener = (topic: string, payload: Buffer, packet?: { retain?: boolean }) => void;

export interface Published {
  topic: string;
  payload: Record<string, unknown>;
}

export class FakeMqttClient implements ControlMqttClient {
  readonly published: Published[] = [];
  readonly subscriptions = new Set<string>();
  private readonly listeners = new Set<Listener>();

  subscribe(
    topics: string[],
    _opts: unknown,
    callback: (err: Error | null, granted?: { topic: string; qos: number }[]) => void,
  ) {
    for (const topic of topics) this.subscriptions.add(topic);
    callback(
      null,
      topics.map((topic) => ({ topic, qos: 1 })),
    );
  }

  unsubscribe(topics: string[], callback: (err?: Error) => void) {
    for (const topic of topics) this.subscriptions.delete(topic);
    callback();
  }

  publish(topic: string, payload: string, _opts: unknown, callback: (err?: Error) => void) {
    this.published.push({ topic, payload: JSON.parse(payload) });
    callback();
  }

  on(_event: 'message', listener: Listener) {
    this.listeners.add(listener);
  }

  removeListener(_event: 'message', listener: Listener) {
    this.listeners.delete(listener);
  }

  /** Delivers like a broker would: objects as JSON, strings and buffers as they are. */
  deliver(topic: string, payload: object | string | Buffer = {}, packet: { retain?: boolean } = {}): void {
    const bytes = Buffer.isBuffer(payload)
      ? payload
      : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
    for (const listener of this.listeners) listener(topic, bytes, packet);
  }
}

export const modelStatus: ModelStatus = {
  active: { embedder: { name: 'facerec-int8', version: '1.0.0' } },
  previous: null,
  lastUpdate: null,
};

export const healthReport: HealthReport = {
  time: '2024-05-01T12:00:00.000Z',
  uptimeSeconds: 42,
  cameras: [{ id: 'door', fps: 9.5, droppedFrames: 3 }],
  stageLatencyMs: { detect: 12.5, embed: 8 },
  cpuTemperatureC: null,
  memory: { rssBytes: 1, heapUsedBytes: 2, heapTotalBytes: 3 },
  models: modelStatus.active,
  queueDepth: 0,
};

export interface FakePorts extends ControlPorts {
  faces: Map<string, Buffer[]>;
  /** Unknown visitor id -> how many faces are kept of them. */
  unknowns: Map<string, number>;
  /** Event id -> who was recognised in it (what face/reject and fromEvent act on). */
  recentEvents: Map<string, string>;
  rejected: string[];
  applied: { config: Config; changes: ChangeClassification }[];
  modelUpdates: unknown[];
  chunks: ModelChunk[];
  snapshotsPublished: Buffer[];
  restarts: number;
  appUpdates: unknown[];
}

/** Ports over in-memory state; config/set writes to `configPath`. */
export function fakePorts(configPath: string, config = defaultConfig()): FakePorts {
  let current = config;
  const ports: FakePorts = {
    faces: new Map(),
    unknowns: new Map(),
    recentEvents: new Map(),
    rejected: [],
    applied: [],
    modelUpdates: [],
    chunks: [],
    snapshotsPublished: [],
    restarts: 0,
    appUpdates: [],
    config: {
      path: configPath,
      current: () => current,
      applyLive: (next, changes) => {
        current = next;
        ports.applied.push({ config: next, changes });
      },
    },
    gallery: {
      list: () =>
        [...ports.faces].map(([name, images]) => ({
          name,
          embeddings: images.length,
          models: ['facerec@1.0.0'],
          createdAt: '2024-05-01T12:00:00.000Z',
        })),
      remove: (name) => ports.faces.delete(name),
      enroll: (name, images) => {
        ports.faces.set(name, [...(ports.faces.get(name) ?? []), ...images]);
        return { added: images.length };
      },
      enrollFromUnknown: (name, unknownId) => {
        const added = ports.unknowns.get(unknownId);
        if (added === undefined) throw new Error(`no unknown visitor ${unknownId}`);
        ports.unknowns.delete(unknownId);
        ports.faces.set(name, [...(ports.faces.get(name) ?? []), ...Array(added).fill(Buffer.alloc(0))]);
        return { added };
      },
      enrollFromEvent: (name, eventId) => {
        if (!ports.recentEvents.has(eventId)) throw new Error(`event ${eventId} is not known`);
        ports.faces.set(name, [...(ports.faces.get(name) ?? []), Buffer.alloc(0)]);
        return { added: 1 };
      },
      reject: (eventId) => {
        const identity = ports.recentEvents.get(eventId);
        if (identity === undefined) throw new Error(`event ${eventId} is not known`);
        ports.rejected.push(eventId);
        return { identity, negatives: 3 };
      },
      unknowns: () =>
        [...ports.unknowns].map(([id, faces]) => ({
          id,
          firstSeen: '2024-05-01T12:00:00.000Z',
          lastSeen: '2024-05-01T12:00:00.000Z',
          visits: 1,
          faces,
          lastCamera: 'door',
        })),
      dismiss: (unknownId) => ports.unknowns.delete(unknownId),
    },
    models: {
      update: async (request) => {
        ports.modelUpdates.push(request);
        return { updated: true, status: modelStatus };
      },
      chunk: (chunk) => {
        ports.chunks.push(chunk);
        return {
          id: chunk.id,
          index: chunk.index,
          received: ports.chunks.length,
          total: chunk.total,
          duplicate: false,
        };
      },
      rollback: async () => modelStatus,
      status: () => modelStatus,
    },
    device: {
      health: () => healthReport,
      snapshot: (camera) => ({ camera: camera ?? 'door', jpeg: JPEG }),
      publishSnapshot: (jpeg) => {
        ports.snapshotsPublished.push(jpeg);
      },
      restart: () => {
        ports.restarts++;
      },
    },
    app: {
      update: (request) => {
        ports.appUpdates.push(request);
        return {
          version: '0.2.0',
          arch: process.arch,
          staged: '/var/lib/facegate/release/incoming/bundle.tar.xz',
        };
      },
    },
  };
  return ports;
}
