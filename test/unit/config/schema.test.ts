import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { parse } from 'yaml';
import schema from '../../../configs/schema.json' with { type: 'json' };
import { COMMAND_NAMES } from '../../../runtime/config/command-names.ts';
import {
  type CameraSource,
  CONFIG_KEYS,
  type Config,
  validateConfig,
} from '../../../runtime/config/index.ts';
import { CONFIG_JSON_SCHEMA } from '../../../runtime/config/json-schema.ts';
import type { SchemaCamera } from '../../../runtime/config/schema.ts';
import type { CommandName } from '../../../runtime/control/api.ts';

type DeepRequired<T> = T extends (infer U)[]
  ? DeepRequired<U>[]
  : T extends object
    ? { [K in keyof T]-?: DeepRequired<T[K]> }
    : T;

interface SchemaNode {
  type?: string | string[];
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean;
  required?: string[];
  items?: SchemaNode;
  enum?: unknown[];
  $ref?: string;
}

const definitions = schema.definitions as Record<string, SchemaNode>;
const deref = (node: SchemaNode): SchemaNode =>
  node.$ref ? deref(definitions[node.$ref.replace('#/definitions/', '')]) : node;

/** Every field path in the schema, arrays of objects written `cameras[]`. */
function schemaPaths(node: SchemaNode, prefix = ''): string[] {
  const n = deref(node);
  if (n.type === 'array' && n.items && deref(n.items).properties) return schemaPaths(n.items, `${prefix}[]`);
  if (!n.properties) return [prefix];
  return Object.entries(n.properties).flatMap(([k, v]) => schemaPaths(v, prefix ? `${prefix}.${k}` : k));
}

function valuePaths(value: unknown, prefix = ''): string[] {
  if (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((v) => typeof v === 'object' && !Array.isArray(v))
  ) {
    return value.flatMap((v) => valuePaths(v, `${prefix}[]`));
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => valuePaths(v, prefix ? `${prefix}.${k}` : k));
  }
  return [prefix];
}

// A real key: configuration refuses a PEM that does not parse as an Ed25519 public key.
const PUBLIC_KEY = generateKeyPairSync('ed25519')
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();

const defaults = parse(readFileSync(new URL('../../../configs/default.yaml', import.meta.url), 'utf8'));

// DeepRequired makes tsc insist on every optional field of every source kind, and the object literal
// rejects fields the type lacks; validating it against the schema then checks the other direction.
const camera = {
  width: 640,
  height: 480,
  fps: 10,
  restart: { initialDelayMs: 100, maxDelayMs: 1000, stallTimeoutMs: 5000, healthyAfterMs: 2000 },
  overrides: {
    detection: { minFaceSize: 80 },
    quality: { minSharpness: 40, maxYawDeg: 20, maxRollDeg: 15 },
    recognition: { targetFar: 0.001, k: 4, n: 6, unknownAfterFrames: 8, margin: 0.05, qualityRaise: 0.04 },
  },
  roi: { x: 0.25, y: 0, width: 0.5, height: 1 },
} as const;
const full: DeepRequired<Config> = {
  device: { id: 'door-1', name: 'Door' },
  cameras: [
    { id: 'a', source: { kind: 'video', path: 'x.mp4', loop: true, realtime: false }, ...camera },
    { id: 'b', source: { kind: 'rtsp', url: 'rtsp://cam/stream' }, ...camera },
    { id: 'c', source: { kind: 'v4l2', device: '/dev/video0' }, ...camera },
    { id: 'd', source: { kind: 'jetson-csi', sensorId: 1 }, ...camera },
  ],
  models: {
    dir: 'models',
    precision: 'fp32',
    detectorPrecision: 'int8',
    engine: 'kernels',
    threads: 2,
    detector: 'blazeface',
    embedder: 'facerec',
    antispoof: 'as',
    liveness: 'lv',
    update: {
      allowUnsigned: false,
      publicKeys: [PUBLIC_KEY],
      maxDownloadBytes: 1_000_000,
      manifestUrl: 'https://example.com/manifest.json',
      allowedOrigins: ['https://mirror.example.com'],
      healthFrames: 10,
      maxLatencyMs: 100,
    },
  },
  detection: { minScore: 0.5, iouThreshold: 0.3, maxFaces: 3, minFaceSize: 30, mirrorAverage: false },
  quality: { minSharpness: 10, maxYawDeg: 30, maxRollDeg: 20 },
  recognition: {
    targetFar: 0.01,
    k: 2,
    n: 3,
    cooldownSeconds: 5,
    unknownAfterFrames: 5,
    trackIou: 0.3,
    trackMaxAgeMs: 1000,
    margin: 0.03,
    weakEnrolment: { belowEmbeddings: 3, thresholdRaise: 0.02 },
    qualityRaise: 0.05,
  },
  unknowns: { enabled: false, maxUnknowns: 10, facesPerUnknown: 2, retentionDays: 7 },
  presentationAttack: { enabled: true, antispoofMinScore: 0.5, livenessMinScore: 0.5 },
  gallery: { path: 'g.db', seedDir: 'people' },
  mqtt: {
    url: 'mqtts://broker:8883',
    inProcessBrokerHost: '127.0.0.1',
    inProcessBrokerPort: 1883,
    baseTopic: 'site/facegate',
    clientId: 'c1',
    username: 'u',
    password: 'p',
    tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem', rejectUnauthorized: true },
    keepaliveSeconds: 30,
    snapshots: true,
    qos: 2,
    subscriberGraceSeconds: 10,
  },
  control: {
    maxPayloadBytes: 4096,
    allow: ['health'],
    requireSignedCommands: true,
    commandPublicKeys: [PUBLIC_KEY],
    operatorKeysFile: '/etc/facegate/operator-keys.pem',
    maxCommandAgeSeconds: 60,
  },
  schedules: {
    heartbeat: '*/30 * * * * *',
    modelUpdateCheck: '0 4 * * *',
    galleryBackup: '',
    backupDir: 'b',
  },
  offlineQueue: { path: 'q.db', maxEvents: 10, whenFull: 'drop-newest' },
  homeAssistant: { enabled: true, discoveryPrefix: 'homeassistant' },
  web: {
    enabled: true,
    host: '0.0.0.0',
    port: 8080,
    password: 'correct horse',
    token: 'a-token-of-16-chars',
  },
  logging: { level: 'debug' },
  dataDir: 'var',
};

describe('configs/schema.json', () => {
  it('is the schema runtime/config/json-schema.ts holds (npm run generate writes it)', () => {
    expect(schema, 'configs/schema.json is stale: run npm run generate').toEqual(
      JSON.parse(JSON.stringify(CONFIG_JSON_SCHEMA)),
    );
  });

  // Checked by tsc (npm run lint), which type-checks the tests.
  it('gives the Config type the schema derives', () => {
    expectTypeOf<CameraSource>().toExtend<SchemaCamera['source']>();
    expectTypeOf<CameraSource['kind']>().toEqualTypeOf<SchemaCamera['source']['kind']>();
    expectTypeOf<Config['recognition']['targetFar']>().toEqualTypeOf<number>();
    expectTypeOf<Config['mqtt']['qos']>().toEqualTypeOf<0 | 1 | 2>();
    expectTypeOf<Config['control']['allow'][number]>().toEqualTypeOf<CommandName>();
    expectTypeOf<Config['gallery']>().toEqualTypeOf<{ path: string; seedDir?: string }>();
  });

  it('accepts configs/default.yaml as it is', () => {
    expect(validateConfig(defaults)).toEqual({ ok: true, config: defaults });
  });

  it('has the same top-level keys as the Config type, all required', () => {
    expect(Object.keys(schema.properties).sort()).toEqual([...CONFIG_KEYS].sort());
    expect([...schema.required].sort()).toEqual([...CONFIG_KEYS].sort());
  });

  it('accepts a config that sets every field the Config type has', () => {
    expect(validateConfig(full)).toMatchObject({ ok: true });
  });

  it('has no field the Config type lacks', () => {
    const fromType = new Set(valuePaths(full));
    expect(schemaPaths(schema as SchemaNode).filter((p) => !fromType.has(p))).toEqual([]);
    expect([...fromType].filter((p) => !schemaPaths(schema as SchemaNode).includes(p))).toEqual([]);
  });

  it('lists the same command names as COMMAND_NAMES', () => {
    expect(schema.properties.control.properties.allow.items.enum).toEqual([...COMMAND_NAMES]);
  });

  it('documents every field and rejects unknown fields in every object', () => {
    const undocumented: string[] = [];
    const open: string[] = [];
    const walk = (node: SchemaNode, path: string, isField: boolean) => {
      const n = deref(node);
      if (isField && !node.description && !n.description) undocumented.push(path);
      if (n.type === 'object' && n.additionalProperties !== false) open.push(path);
      for (const [k, v] of Object.entries(n.properties ?? {})) walk(v, path ? `${path}.${k}` : k, true);
      // Array items are described by their array.
      if (n.items) walk(n.items, `${path}[]`, false);
    };
    walk(schema as SchemaNode, '', true);
    expect(undocumented).toEqual([]);
    expect(open).toEqual([]);
  });

  it('is described field by field in docs/config.md', () => {
    const docs = readFileSync(new URL('../../../docs/config.md', import.meta.url), 'utf8');
    const missing = schemaPaths(schema as SchemaNode).filter((p) => !docs.includes(`\`${p}\``));
    expect(missing).toEqual([]);
  });
});
