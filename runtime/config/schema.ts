// The shape of a validated configuration. configs/schema.json is the source of truth for what is accepted
// (ranges, patterns, descriptions); this type mirrors it by hand and test/unit/config keeps the two in step.

export type SourceKind = CameraSource['kind'];

/** Each kind carries only the fields it uses, as the schema's if/then rules enforce. */
export type CameraSource =
  | { kind: 'images' | 'video'; path: string; loop?: boolean; realtime?: boolean }
  | { kind: 'rtsp' | 'http'; url: string }
  | { kind: 'v4l2'; device: string }
  | { kind: 'rpicam' | 'jetson-csi'; sensorId?: number };

export interface CameraConfig {
  id: string;
  source: CameraSource;
  width: number;
  height: number;
  /** Upper bound on frames processed per second. */
  fps: number;
  restart: { initialDelayMs: number; maxDelayMs: number; stallTimeoutMs: number; healthyAfterMs: number };
  /** Merged over the global settings for this camera (cameraSettings in runtime/config/camera.ts). */
  overrides?: CameraOverrides;
  /** Faces whose box centre lies outside are ignored; fractions of the frame. */
  roi?: { x: number; y: number; width: number; height: number };
}

export interface CameraOverrides {
  detection?: Partial<Pick<Config['detection'], 'minFaceSize'>>;
  quality?: Partial<Config['quality']>;
  recognition?: Partial<
    Pick<Config['recognition'], 'targetFar' | 'k' | 'n' | 'unknownAfterFrames' | 'margin' | 'qualityRaise'>
  >;
}

export interface ModelUpdateConfig {
  allowUnsigned: boolean;
  /** Ed25519 public keys, PEM. */
  publicKeys: string[];
  maxDownloadBytes: number;
  manifestUrl?: string;
  /** Origins (scheme://host[:port]) a requested manifestUrl may name, besides manifestUrl's own. */
  allowedOrigins: string[];
  healthFrames: number;
  maxLatencyMs: number;
}

export interface ModelsConfig {
  dir: string;
  precision: 'fp32' | 'int8';
  detectorPrecision: 'fp32' | 'int8';
  engine: 'ort' | 'kernels';
  threads: number;
  detector: string;
  embedder: string;
  antispoof: string;
  liveness: string;
  update: ModelUpdateConfig;
}

export const COMMANDS = [
  'config/get',
  'config/set',
  'face/enroll',
  'face/remove',
  'face/list',
  'face/reject',
  'face/unknowns',
  'face/dismiss',
  'model/update',
  'model/rollback',
  'model/status',
  'snapshot',
  'health',
  'restart',
  'app/update',
] as const;

export type CommandName = (typeof COMMANDS)[number];

export interface MqttConfig {
  /** Absent = run the in-process broker. */
  url?: string;
  inProcessBrokerHost: string;
  inProcessBrokerPort: number;
  baseTopic: string;
  /** Absent = `facegate-<device.id>`. */
  clientId?: string;
  username?: string;
  password?: string;
  tls: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean };
  keepaliveSeconds: number;
  snapshots: boolean;
  qos: 0 | 1 | 2;
}

export interface Config {
  device: { id: string; name: string };
  cameras: CameraConfig[];
  models: ModelsConfig;
  detection: {
    minScore: number;
    iouThreshold: number;
    maxFaces: number;
    minFaceSize: number;
    mirrorAverage: boolean;
  };
  quality: { minSharpness: number; maxYawDeg: number; maxRollDeg: number };
  recognition: {
    targetFar: number;
    k: number;
    n: number;
    cooldownSeconds: number;
    unknownAfterFrames: number;
    trackIou: number;
    trackMaxAgeMs: number;
    /** Open-set rules (runtime/matching/match.ts). */
    margin: number;
    weakEnrolment: { belowEmbeddings: number; thresholdRaise: number };
    qualityRaise: number;
  };
  unknowns: { enabled: boolean; maxUnknowns: number; facesPerUnknown: number; retentionDays: number };
  presentationAttack: { enabled: boolean; antispoofMinScore: number; livenessMinScore: number };
  gallery: { path: string; seedDir?: string };
  mqtt: MqttConfig;
  control: {
    maxPayloadBytes: number;
    allow: CommandName[];
    requireSignedCommands: boolean;
    /** Ed25519 public keys, PEM. */
    commandPublicKeys: string[];
    /** More operator keys, PEM one after another; re-read when it changes. */
    operatorKeysFile?: string;
    maxCommandAgeSeconds: number;
  };
  /** Cron expressions; empty or absent = job off. */
  schedules: { heartbeat?: string; modelUpdateCheck?: string; galleryBackup?: string; backupDir: string };
  offlineQueue: { path: string; maxEvents: number; whenFull: 'drop-oldest' | 'drop-newest' };
  homeAssistant: { enabled: boolean; discoveryPrefix: string };
  web: { enabled: boolean; host: string; port: number; password?: string; token?: string };
  logging: { level: 'silent' | 'error' | 'warn' | 'info' | 'debug' };
  dataDir: string;
}

// `satisfies` rejects both a missing and an extra key, so this list cannot drift from the type.
const topLevel = {
  device: true,
  cameras: true,
  models: true,
  detection: true,
  quality: true,
  recognition: true,
  unknowns: true,
  presentationAttack: true,
  gallery: true,
  mqtt: true,
  control: true,
  schedules: true,
  offlineQueue: true,
  homeAssistant: true,
  web: true,
  logging: true,
  dataDir: true,
} satisfies Record<keyof Config, true>;

export const CONFIG_KEYS = Object.keys(topLevel) as (keyof Config)[];
