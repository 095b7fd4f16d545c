// The configuration schema (JSON Schema draft-07): the one source of what a configuration may hold, with
// every field described. validateConfig() checks against it, the Config type is derived from it
// (./schema.ts), and configs/schema.json, which editors read, is written from it by `npm run generate`
// (test/unit/config/schema.test.ts fails while that file is stale). docs/config.md describes every field.

// biome-ignore-all lint/suspicious/noThenProperty: `then` is JSON Schema's keyword, and the schema is never awaited.

import type { JSONSchema } from 'json-schema-to-ts';
import { COMMAND_NAMES } from './command-names.ts';

// The settings a camera may override (cameras[].overrides) are written once, for both places.
const DETECTION_FIELDS = {
  minScore: {
    description: 'Minimum detector confidence (0-1) for a face to be kept.',
    $ref: '#/definitions/unitInterval',
  },
  iouThreshold: {
    description:
      'Overlap (intersection over union, 0-1) above which non-maximum suppression merges two detections.',
    $ref: '#/definitions/unitInterval',
  },
  maxFaces: {
    description: 'Most faces processed per frame; the largest are kept.',
    type: 'integer',
    minimum: 1,
    maximum: 100,
  },
  minFaceSize: {
    description: 'Smallest face processed: shorter side of its box, in pixels of the captured frame.',
    type: 'integer',
    minimum: 8,
    maximum: 4096,
  },
  mirrorAverage: {
    description:
      "Also run the detector on the mirrored frame and average the two detections: steadier keypoints, better alignment (+0.2 to +0.3 LFW points measured), at twice the detector's cost.",
    type: 'boolean',
  },
} as const;

const QUALITY_FIELDS = {
  minSharpness: {
    description:
      'Minimum sharpness of the face: variance of the Laplacian of its grey crop resampled to 112x112 pixels. Lower is blurrier.',
    type: 'number',
    minimum: 0,
  },
  maxYawDeg: {
    description: 'Largest head turn (left/right) accepted, in degrees, estimated from the keypoints.',
    type: 'number',
    minimum: 0,
    maximum: 90,
  },
  maxRollDeg: {
    description: 'Largest head tilt (in-plane rotation) accepted, in degrees.',
    type: 'number',
    minimum: 0,
    maximum: 90,
  },
} as const;

const RECOGNITION_FIELDS = {
  targetFar: {
    description:
      "Target false accept rate per comparison. The cosine-similarity threshold for it is interpolated from the embedder model manifest's FAR curve; a target outside the range it was calibrated for is refused.",
    type: 'number',
    exclusiveMinimum: 0,
    exclusiveMaximum: 1,
  },
  k: {
    description:
      'Frames (out of the last n of a track) that must match the same person before they are identified. Must be <= n.',
    type: 'integer',
    minimum: 1,
    maximum: 100,
  },
  n: {
    description: 'Window of recent frames of a track in which k must agree.',
    type: 'integer',
    minimum: 1,
    maximum: 100,
  },
  cooldownSeconds: {
    description: 'Minimum time between two events for the same person on the same camera.',
    type: 'number',
    minimum: 0,
    maximum: 86400,
  },
  unknownAfterFrames: {
    description:
      "Quality-passing frames of a track without a match after which an 'unknown person' event is emitted.",
    type: 'integer',
    minimum: 1,
    maximum: 1000,
  },
  trackIou: {
    description: 'Minimum box overlap (0-1) for a detection to continue an existing track.',
    $ref: '#/definitions/unitInterval',
  },
  trackMaxAgeMs: {
    description: 'A track not seen for this long is closed, in milliseconds.',
    type: 'integer',
    minimum: 1,
    maximum: 60000,
  },
  margin: {
    description:
      'The best-matching person must beat the runner-up (another person, or a face rejected as them with face/reject) by this much cosine similarity; a face between two candidates votes for neither.',
    type: 'number',
    minimum: 0,
    maximum: 1,
  },
  weakEnrolment: {
    description: 'People enrolled with few embeddings match less reliably: their threshold is raised.',
    type: 'object',
    additionalProperties: false,
    required: ['belowEmbeddings', 'thresholdRaise'],
    properties: {
      belowEmbeddings: {
        description:
          'A person with fewer embeddings than this (for the running embedder) is a weak enrolment; 0 turns the rule off.',
        type: 'integer',
        minimum: 0,
        maximum: 100,
      },
      thresholdRaise: {
        description: 'Added to the cosine threshold for a weak enrolment.',
        type: 'number',
        minimum: 0,
        maximum: 1,
      },
    },
  },
  qualityRaise: {
    description:
      'A frame of quality q (0-1: sharpness, size and pose beyond the quality checks) needs the threshold plus (1 - q) times this.',
    type: 'number',
    minimum: 0,
    maximum: 1,
  },
} as const;

/** The fields of a camera source whose use depends on its kind. */
const SOURCE_FIELDS = ['path', 'url', 'device', 'loop', 'realtime', 'sensorId'];

/**
 * The if/then rule for the source kinds `kinds`: `required` fields must be there, `own` says what the kind's
 * own fields must be, the `optional` ones may be there, and every other source field must not. Typed as
 * any schema: the Config type does not follow if/then (./schema.ts writes the source union out).
 */
function sourceRule(
  kinds: string[],
  required: string[],
  own: Record<string, JSONSchema>,
  optional: string[] = [],
): JSONSchema {
  const forbidden = SOURCE_FIELDS.filter((field) => !(field in own) && !optional.includes(field));
  return {
    if: {
      properties: { kind: kinds.length === 1 ? { const: kinds[0] } : { enum: kinds } },
      required: ['kind'],
    },
    then: {
      ...(required.length > 0 ? { required } : {}),
      properties: { ...own, ...Object.fromEntries(forbidden.map((field) => [field, false])) },
    },
  };
}

export const CONFIG_JSON_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://facegate.dev/schema/config.json',
  title: 'facegate configuration',
  description:
    'Configuration of one facegate device. Layers are merged in order: configs/default.yaml, the board profile (configs/boards/<board>.yaml), the user file, then FACEGATE_* environment variables. Relative paths resolve against the working directory of the process.',
  type: 'object',
  additionalProperties: false,
  required: [
    'device',
    'cameras',
    'models',
    'detection',
    'quality',
    'recognition',
    'presentationAttack',
    'unknowns',
    'gallery',
    'mqtt',
    'control',
    'schedules',
    'offlineQueue',
    'homeAssistant',
    'web',
    'logging',
    'dataDir',
  ],
  properties: {
    device: {
      description: 'Identity of this device.',
      type: 'object',
      additionalProperties: false,
      required: ['id', 'name'],
      properties: {
        id: {
          description:
            "Unique device id. Used as an MQTT topic level and in file names, so only letters, digits, '_' and '-' (1-64 characters); 'all' is reserved for fleet-wide requests.",
          $ref: '#/definitions/safeId',
        },
        name: {
          description: 'Human-readable name, shown in Home Assistant and in events.',
          type: 'string',
          minLength: 1,
          maxLength: 128,
        },
      },
    },
    cameras: {
      description: 'Cameras to capture from. At least one; ids must be unique.',
      type: 'array',
      minItems: 1,
      maxItems: 16,
      items: {
        $ref: '#/definitions/camera',
      },
    },
    models: {
      description: 'Neural network models and the inference engine that runs them.',
      type: 'object',
      additionalProperties: false,
      required: [
        'dir',
        'precision',
        'detectorPrecision',
        'engine',
        'threads',
        'detector',
        'embedder',
        'antispoof',
        'liveness',
        'update',
      ],
      properties: {
        dir: {
          description: 'Directory holding the model files and their manifest.',
          $ref: '#/definitions/path',
        },
        precision: {
          description:
            "Numeric precision of the embedder and the presentation-attack models: 'int8' is faster and smaller, 'fp32' is the reference.",
          type: 'string',
          enum: ['fp32', 'int8'],
        },
        detectorPrecision: {
          description:
            "Numeric precision of the face detector. fp32 by default: the int8 detector's coarser keypoints cost about 0.6 points of LFW accuracy through alignment, and it is not faster under ONNX Runtime (docs/models.md).",
          type: 'string',
          enum: ['fp32', 'int8'],
        },
        engine: {
          description:
            "Inference backend for int8 models: 'kernels' (facegate's native kernels, exact int8 on every CPU; ONNX Runtime runs what they cannot) or 'ort' (ONNX Runtime only; its int8 saturates on x86 without VNNI).",
          type: 'string',
          enum: ['ort', 'kernels'],
        },
        threads: {
          description: 'Worker threads for inference; usually the number of physical cores.',
          type: 'integer',
          minimum: 1,
          maximum: 64,
        },
        detector: {
          description: 'Name of the face detector model (BlazeFace) in the manifest.',
          $ref: '#/definitions/modelName',
        },
        embedder: {
          description:
            "Name of the face embedding model (FaceRecognitionNet) in the manifest: 'facerec', or 'facerec-gated', the ReLU-zero variant the native kernels run faster (engine kernels; 98.57% vs 99.23% on LFW dev, docs/relu-zero.md).",
          $ref: '#/definitions/modelName',
        },
        antispoof: {
          description:
            'Name of the anti-spoofing model in the manifest (used when presentationAttack.enabled).',
          $ref: '#/definitions/modelName',
        },
        liveness: {
          description: 'Name of the liveness model in the manifest (used when presentationAttack.enabled).',
          $ref: '#/definitions/modelName',
        },
        update: {
          description: 'Over-the-air model updates.',
          type: 'object',
          additionalProperties: false,
          required: [
            'allowUnsigned',
            'publicKeys',
            'maxDownloadBytes',
            'healthFrames',
            'maxLatencyMs',
            'allowedOrigins',
          ],
          properties: {
            allowUnsigned: {
              description:
                "Accept model packages without a signature. Only for development; even then a model cannot lower its match thresholds below the running model's or install an older version. Cannot be changed by config/set.",
              type: 'boolean',
            },
            publicKeys: {
              description:
                'Ed25519 public keys (PEM) trusted to sign model packages. Cannot be changed by config/set.',
              type: 'array',
              uniqueItems: true,
              items: {
                $ref: '#/definitions/publicKeyPem',
              },
            },
            maxDownloadBytes: {
              description: 'Largest model package that will be downloaded, in bytes.',
              type: 'integer',
              minimum: 1024,
              maximum: 4294967296,
            },
            manifestUrl: {
              description:
                'URL of the model update manifest checked by schedules.modelUpdateCheck; its origin may always be fetched from. Absent = no automatic checks. Cannot be changed by config/set.',
              type: 'string',
              pattern: '^https?://\\S+$',
            },
            allowedOrigins: {
              description:
                "Further origins (scheme://host[:port], e.g. https://updates.example.com) a model/update request's manifestUrl may name; any other URL is refused, redirects are never followed. Cannot be changed by config/set.",
              type: 'array',
              uniqueItems: true,
              items: {
                type: 'string',
                pattern: '^https?://[^/?#\\s]+$',
              },
            },
            healthFrames: {
              description:
                'Frames a new model must process without errors before it is kept; otherwise it is rolled back.',
              type: 'integer',
              minimum: 1,
              maximum: 10000,
            },
            maxLatencyMs: {
              description:
                'Per-frame latency a new model must stay under during the health check, in milliseconds.',
              type: 'integer',
              minimum: 1,
              maximum: 60000,
            },
          },
        },
      },
    },
    detection: {
      description: 'Face detection.',
      type: 'object',
      additionalProperties: false,
      required: ['minScore', 'iouThreshold', 'maxFaces', 'minFaceSize', 'mirrorAverage'],
      properties: DETECTION_FIELDS,
    },
    quality: {
      description:
        'Face quality checks applied before recognition; faces failing them are skipped, not reported as unknown.',
      type: 'object',
      additionalProperties: false,
      required: ['minSharpness', 'maxYawDeg', 'maxRollDeg'],
      properties: QUALITY_FIELDS,
    },
    recognition: {
      description: 'Matching faces against the gallery and deciding when to emit an event.',
      type: 'object',
      additionalProperties: false,
      required: [
        'targetFar',
        'k',
        'n',
        'cooldownSeconds',
        'unknownAfterFrames',
        'trackIou',
        'trackMaxAgeMs',
        'margin',
        'weakEnrolment',
        'qualityRaise',
      ],
      properties: RECOGNITION_FIELDS,
    },
    unknowns: {
      description:
        'Unknown visitors: faces nobody recognised, grouped into persistent ids (unknown-17) with a few crops kept in the gallery database, for naming later. Crops never leave the device unless mqtt.snapshots or the local web page is turned on.',
      type: 'object',
      additionalProperties: false,
      required: ['enabled', 'maxUnknowns', 'facesPerUnknown', 'retentionDays'],
      properties: {
        enabled: {
          description:
            'Group and keep unknown faces; off: unknown events carry no unknownId and nothing is stored.',
          type: 'boolean',
        },
        maxUnknowns: {
          description:
            'Most unknown visitors kept; beyond it the least-seen (then longest unseen) is forgotten.',
          type: 'integer',
          minimum: 1,
          maximum: 10000,
        },
        facesPerUnknown: {
          description:
            'Best crops kept per unknown visitor (150x150 RGB, 67.5 KB each): disk use is at most maxUnknowns x facesPerUnknown x 67.5 KB.',
          type: 'integer',
          minimum: 1,
          maximum: 20,
        },
        retentionDays: {
          description: 'An unknown visitor not seen for this many days is forgotten, crops included.',
          type: 'number',
          minimum: 0.001,
          maximum: 3650,
        },
      },
    },
    presentationAttack: {
      description: 'Presentation attack detection (photos, screens, masks held up to the camera).',
      type: 'object',
      additionalProperties: false,
      required: ['enabled', 'antispoofMinScore', 'livenessMinScore'],
      properties: {
        enabled: {
          description: 'Run the anti-spoofing and liveness models; faces failing them are never identified.',
          type: 'boolean',
        },
        antispoofMinScore: {
          description: 'Minimum anti-spoofing score (0-1) for a face to count as real.',
          $ref: '#/definitions/unitInterval',
        },
        livenessMinScore: {
          description: 'Minimum liveness score (0-1) for a track to count as live.',
          $ref: '#/definitions/unitInterval',
        },
      },
    },
    gallery: {
      description: 'Enrolled people and their face embeddings.',
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      properties: {
        path: {
          description: 'Gallery database file.',
          $ref: '#/definitions/path',
        },
        seedDir: {
          description:
            "A folder of photos named <person>.jpg|png, enrolled when the gallery is empty (the demo's people). Absent: no seeding.",
          type: 'string',
          minLength: 1,
        },
      },
    },
    mqtt: {
      description: 'MQTT connection used for events and remote control.',
      type: 'object',
      additionalProperties: false,
      required: [
        'inProcessBrokerHost',
        'inProcessBrokerPort',
        'baseTopic',
        'tls',
        'keepaliveSeconds',
        'snapshots',
        'qos',
        'subscriberGraceSeconds',
      ],
      properties: {
        url: {
          description:
            'Broker URL (mqtt://, mqtts://, ws://, wss://). Absent = start a broker inside facegate (null in an override file or patch removes it).',
          type: 'string',
          pattern: '^(mqtts?|wss?)://\\S+$',
        },
        inProcessBrokerHost: {
          description:
            'Address the in-process broker listens on (only when url is absent). 127.0.0.1 keeps it reachable from this machine only; any other address requires mqtt.username and mqtt.password, which the broker then demands of every client, and makes privileged commands need signing.',
          type: 'string',
          minLength: 1,
        },
        inProcessBrokerPort: {
          description: 'TCP port of the in-process broker (only when url is absent); 0 picks any free port.',
          type: 'integer',
          minimum: 0,
          maximum: 65535,
        },
        baseTopic: {
          description:
            "Prefix of every topic: <baseTopic>/<device.id>/... One or more levels separated by '/'; no wildcards (+ #), whitespace or empty levels, and no leading '$'.",
          $ref: '#/definitions/topic',
        },
        clientId: {
          description: 'MQTT client id. Absent = facegate-<device.id>.',
          type: 'string',
          minLength: 1,
          maxLength: 128,
        },
        username: {
          description: 'Broker user name.',
          type: 'string',
        },
        password: {
          description: 'Broker password. Redacted in the published config.',
          type: 'string',
        },
        tls: {
          description: 'TLS settings for mqtts:// and wss:// brokers.',
          type: 'object',
          additionalProperties: false,
          required: ['rejectUnauthorized'],
          properties: {
            ca: {
              description: 'CA certificate file (PEM) to trust instead of the system store.',
              $ref: '#/definitions/path',
            },
            cert: {
              description: 'Client certificate file (PEM) for mutual TLS; requires key.',
              $ref: '#/definitions/path',
            },
            key: {
              description: 'Client private key file (PEM) for mutual TLS; requires cert.',
              $ref: '#/definitions/path',
            },
            rejectUnauthorized: {
              description: 'Refuse brokers whose certificate does not verify. Keep true outside development.',
              type: 'boolean',
            },
          },
        },
        keepaliveSeconds: {
          description:
            'MQTT keepalive interval; the broker publishes the offline status after 1.5x this without traffic.',
          type: 'integer',
          minimum: 5,
          maximum: 3600,
        },
        snapshots: {
          description: 'Attach a JPEG snapshot of the face to each event. Off by default for privacy.',
          type: 'boolean',
        },
        qos: {
          description:
            'MQTT quality of service of face events, sent live or replayed from the offline queue (0, 1 or 2; every other topic uses 1). At 1 and 2 an event leaves the offline queue once the broker acknowledged it (PUBACK, PUBCOMP); at 0 once it is written to the socket, so events sent just before an unnoticed connection failure can be lost.',
          type: 'integer',
          enum: [0, 1, 2],
        },
        subscriberGraceSeconds: {
          description:
            "After each (re)connect, events wait in the offline queue up to this long while the broker answers that no subscriber takes them (MQTT 5's 'no matching subscribers'), so subscribers whose sessions a restarted broker lost still get them once they subscribe again; the wait ends as soon as one event reaches a subscriber. 0 sends events on at once. External brokers only (the in-process broker speaks MQTT 3.1.1), QoS 1 and 2.",
          type: 'integer',
          minimum: 0,
          maximum: 3600,
        },
      },
    },
    control: {
      description:
        'Remote control: which commands received over MQTT are accepted, and how they must be signed.',
      type: 'object',
      additionalProperties: false,
      required: [
        'maxPayloadBytes',
        'allow',
        'requireSignedCommands',
        'commandPublicKeys',
        'maxCommandAgeSeconds',
      ],
      properties: {
        maxPayloadBytes: {
          description:
            'Largest command payload accepted, in bytes (enrollment images need the most). The broker is told (MQTT 5 maximum packet size) not to send the device larger packets, and a larger packet is refused as its header arrives, so it never reaches memory; a change applies at the next connection.',
          type: 'integer',
          minimum: 256,
          maximum: 67108864,
        },
        allow: {
          description:
            'Commands this device accepts; any other command is rejected. model/chunk messages (a model sent over MQTT) are accepted with model/update.',
          type: 'array',
          uniqueItems: true,
          items: {
            type: 'string',
            enum: COMMAND_NAMES,
          },
        },
        requireSignedCommands: {
          description:
            "Also require signed privileged commands on facegate's own loopback broker. On any other broker every privileged command (all but config/get, model/status and health) must be signed with an operator key whatever this says (docs/security.md).",
          type: 'boolean',
        },
        commandPublicKeys: {
          description:
            'Ed25519 public keys (PEM) trusted to sign commands, besides those in operatorKeysFile. Cannot be changed by config/set.',
          type: 'array',
          uniqueItems: true,
          items: {
            $ref: '#/definitions/publicKeyPem',
          },
        },
        operatorKeysFile: {
          description:
            'File of operator public keys (PEM, one after another) trusted to sign commands, written by `facegate keys add` or provision.sh --operator-key and read again when it changes. A missing file means no keys from it. Cannot be changed by config/set.',
          $ref: '#/definitions/path',
        },
        maxCommandAgeSeconds: {
          description:
            'Signed commands older than this (or this far in the future) are rejected, limiting replays.',
          type: 'integer',
          minimum: 1,
          maximum: 86400,
        },
      },
    },
    schedules: {
      description:
        'Periodic jobs, as cron expressions (5 fields, or 6 with seconds first). Empty or absent = off.',
      type: 'object',
      additionalProperties: false,
      required: ['backupDir'],
      properties: {
        heartbeat: {
          description: 'When to publish the health/heartbeat message.',
          $ref: '#/definitions/cron',
        },
        modelUpdateCheck: {
          description: 'When to check models.update.manifestUrl for new models (requires manifestUrl).',
          $ref: '#/definitions/cron',
        },
        galleryBackup: {
          description: 'When to copy the gallery into backupDir.',
          $ref: '#/definitions/cron',
        },
        backupDir: {
          description: 'Directory for gallery backups.',
          $ref: '#/definitions/path',
        },
      },
    },
    offlineQueue: {
      description: 'Events kept on disk while the broker is unreachable, sent in order on reconnect.',
      type: 'object',
      additionalProperties: false,
      required: ['path', 'maxEvents', 'whenFull'],
      properties: {
        path: {
          description:
            'Directory of the durable on-disk queue holding events while the broker is unreachable.',
          $ref: '#/definitions/path',
        },
        maxEvents: {
          description: 'Most events kept.',
          type: 'integer',
          minimum: 1,
          maximum: 10000000,
        },
        whenFull: {
          description: 'Which event to discard when the queue is full.',
          type: 'string',
          enum: ['drop-oldest', 'drop-newest'],
        },
      },
    },
    homeAssistant: {
      description: 'Home Assistant MQTT discovery.',
      type: 'object',
      additionalProperties: false,
      required: ['enabled', 'discoveryPrefix'],
      properties: {
        enabled: {
          description: "Publish retained discovery messages so Home Assistant creates the device's entities.",
          type: 'boolean',
        },
        discoveryPrefix: {
          description: "Home Assistant's discovery topic prefix.",
          $ref: '#/definitions/topic',
        },
      },
    },
    web: {
      description:
        'The local web page: live view, events, people and unknown visitors, health. Off unless enabled; 127.0.0.1 by default. Bound to any other address it needs web.password or web.token.',
      type: 'object',
      additionalProperties: false,
      required: ['enabled', 'host', 'port'],
      properties: {
        enabled: {
          description: 'Serve the page.',
          type: 'boolean',
        },
        host: {
          description: 'Address to listen on; 127.0.0.1 (or ::1, localhost) keeps the page to this machine.',
          type: 'string',
          minLength: 1,
          maxLength: 255,
        },
        port: {
          description: 'TCP port; 0 lets the system choose (logged).',
          type: 'integer',
          minimum: 0,
          maximum: 65535,
        },
        password: {
          description:
            "Asked for by the page's login; set it through FACEGATE_WEB__PASSWORD rather than in a file.",
          type: 'string',
          minLength: 8,
          maxLength: 256,
        },
        token: {
          description: "Accepted as 'Authorization: Bearer <token>' by the page's API, and at its login.",
          type: 'string',
          minLength: 16,
          maxLength: 256,
        },
      },
    },
    logging: {
      description: 'Log output.',
      type: 'object',
      additionalProperties: false,
      required: ['level'],
      properties: {
        level: {
          description:
            'Least severe log line written to standard error: debug < info < warn < error; silent writes none. Event lines facegate run prints on standard output are not log lines.',
          type: 'string',
          enum: ['silent', 'error', 'warn', 'info', 'debug'],
        },
      },
    },
    dataDir: {
      description:
        'Directory for device state not configured elsewhere (model versions and their rollback copies, control nonces, staged app updates).',
      $ref: '#/definitions/path',
    },
  },
  definitions: {
    safeId: {
      type: 'string',
      pattern: '^[A-Za-z0-9_-]{1,64}$',
    },
    modelName: {
      type: 'string',
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
    },
    path: {
      type: 'string',
      minLength: 1,
    },
    unitInterval: {
      type: 'number',
      minimum: 0,
      maximum: 1,
    },
    topic: {
      type: 'string',
      maxLength: 255,
      pattern: '^(?!\\$)[^/+#\\s\\u0000-\\u001f\\u007f]{1,64}(/[^/+#\\s\\u0000-\\u001f\\u007f]{1,64})*$',
    },
    cron: {
      type: 'string',
      format: 'cron',
    },
    publicKeyPem: {
      type: 'string',
      pattern: '^-----BEGIN PUBLIC KEY-----[A-Za-z0-9+/=\\s]+-----END PUBLIC KEY-----\\s*$',
    },
    camera: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'source', 'width', 'height', 'fps', 'restart'],
      properties: {
        id: {
          description:
            "Camera id, unique on this device. Used as an MQTT topic level, so only letters, digits, '_' and '-'.",
          $ref: '#/definitions/safeId',
        },
        source: {
          $ref: '#/definitions/source',
        },
        width: {
          description: 'Frame width in pixels; the source is opened at, or scaled to, this size.',
          type: 'integer',
          minimum: 64,
          maximum: 4096,
        },
        height: {
          description: 'Frame height in pixels; the source is opened at, or scaled to, this size.',
          type: 'integer',
          minimum: 64,
          maximum: 4096,
        },
        fps: {
          description: 'Most frames per second processed; extra frames are dropped.',
          type: 'number',
          exclusiveMinimum: 0,
          maximum: 120,
        },
        restart: {
          description: 'Reconnecting a failed or stalled source, with exponential backoff.',
          type: 'object',
          additionalProperties: false,
          required: ['initialDelayMs', 'maxDelayMs', 'stallTimeoutMs', 'healthyAfterMs'],
          properties: {
            initialDelayMs: {
              description: 'Delay before the first restart, doubled on each consecutive failure.',
              type: 'integer',
              minimum: 1,
              maximum: 600000,
            },
            maxDelayMs: {
              description: 'Upper bound of the restart delay. Must be >= initialDelayMs.',
              type: 'integer',
              minimum: 0,
              maximum: 3600000,
            },
            stallTimeoutMs: {
              description: 'A source that delivers no frame for this long is restarted.',
              type: 'integer',
              minimum: 100,
              maximum: 600000,
            },
            healthyAfterMs: {
              description:
                'A source delivering frames for this long is considered recovered: the next restart delay starts again from initialDelayMs.',
              type: 'integer',
              minimum: 0,
              maximum: 3600000,
            },
          },
        },
        overrides: {
          description:
            'Settings of this camera that differ from the global ones (same names, same meaning): merged over detection, quality and recognition for this camera only, live over config/set.',
          type: 'object',
          additionalProperties: false,
          properties: {
            detection: {
              type: 'object',
              additionalProperties: false,
              properties: {
                minFaceSize: DETECTION_FIELDS.minFaceSize,
              },
              description: 'Overrides of detection for this camera.',
            },
            quality: {
              type: 'object',
              additionalProperties: false,
              properties: QUALITY_FIELDS,
              description: 'Overrides of quality for this camera.',
            },
            recognition: {
              type: 'object',
              additionalProperties: false,
              properties: {
                targetFar: RECOGNITION_FIELDS.targetFar,
                k: RECOGNITION_FIELDS.k,
                n: RECOGNITION_FIELDS.n,
                unknownAfterFrames: RECOGNITION_FIELDS.unknownAfterFrames,
                margin: RECOGNITION_FIELDS.margin,
                qualityRaise: RECOGNITION_FIELDS.qualityRaise,
              },
              description: 'Overrides of recognition for this camera; k must still be <= n after merging.',
            },
          },
        },
        roi: {
          description:
            'Region of interest: only faces whose box centre lies inside it are processed (fractions of the frame, 0-1, from the top-left corner). Absent: the whole frame.',
          type: 'object',
          additionalProperties: false,
          required: ['x', 'y', 'width', 'height'],
          properties: {
            x: {
              description: 'Left edge, fraction of the frame width.',
              $ref: '#/definitions/unitInterval',
            },
            y: {
              description: 'Top edge, fraction of the frame height.',
              $ref: '#/definitions/unitInterval',
            },
            width: {
              description: 'Width, fraction of the frame width.',
              type: 'number',
              exclusiveMinimum: 0,
              maximum: 1,
            },
            height: {
              description: 'Height, fraction of the frame height.',
              type: 'number',
              exclusiveMinimum: 0,
              maximum: 1,
            },
          },
        },
      },
    },
    source: {
      description:
        'Where frames come from. Which of path/url/device/loop/realtime/sensorId is required or allowed depends on kind.',
      type: 'object',
      additionalProperties: false,
      required: ['kind'],
      properties: {
        kind: {
          description:
            "Source type: 'images' (a directory of images), 'video' (a file), 'rtsp' or 'http' (network stream), 'v4l2' (USB/V4L2 device), 'rpicam' (Raspberry Pi camera), 'jetson-csi' (Jetson CSI camera).",
          type: 'string',
          enum: ['images', 'video', 'rtsp', 'http', 'v4l2', 'rpicam', 'jetson-csi'],
        },
        path: {
          description:
            'Image file or directory of .jpg/.jpeg/.png images (kind images), or video file (kind video).',
          $ref: '#/definitions/path',
        },
        url: {
          description:
            'Stream URL (kind rtsp: rtsp:// or rtsps://; kind http: http:// or https://, MJPEG). Credentials in it are redacted when published.',
          type: 'string',
          pattern: '^(rtsps?|https?)://\\S+$',
        },
        device: {
          description: 'V4L2 device node, e.g. /dev/video0 (kind v4l2).',
          type: 'string',
          pattern: '^/dev/\\S+$',
        },
        loop: {
          description:
            'Start again from the beginning at the end (kinds images and video). Absent = false for video, true for images.',
          type: 'boolean',
        },
        realtime: {
          description:
            "Kinds images and video: true or absent plays at the source's own pace, newest frame wins, like a live camera; false hands over every frame in order as fast as it is consumed (benchmarks, evaluation).",
          type: 'boolean',
        },
        sensorId: {
          description: 'Camera index on boards with several camera connectors (kinds rpicam and jetson-csi).',
          type: 'integer',
          minimum: 0,
          maximum: 15,
        },
      },
      allOf: [
        sourceRule(['images', 'video'], ['path'], { path: true }, ['loop', 'realtime']),
        sourceRule(['rtsp'], ['url'], { url: { type: 'string', pattern: '^rtsps?://' } }),
        sourceRule(['http'], ['url'], { url: { type: 'string', pattern: '^https?://' } }),
        sourceRule(['v4l2'], ['device'], { device: true }),
        sourceRule(['rpicam', 'jetson-csi'], [], {}, ['sensorId']),
      ],
    },
  },
} as const;
