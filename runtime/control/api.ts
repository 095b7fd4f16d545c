// Every remote command's request and response, in one place (the zigbee2mqtt convention): a request is
// the command's parameters plus an optional `transaction`, echoed in the response, and an optional
// `signature`; a response is `{ status, data | error, transaction }`. The JSON Schemas below are what the
// router validates request bodies against, and docs/mqtt.md documents this file.

import { Ajv, type ErrorObject, type SchemaObject, type ValidateFunction } from 'ajv';
import { COMMANDS, type CommandName, type Config } from '../config/index.ts';
import { formatPath, type PathSegment } from '../config/util.ts';
import type { ModelRef } from '../events/schema.ts';
import type { UnknownSummary } from '../matching/unknowns.ts';
import type { ModelChunk } from '../model-update/download.ts';
import type { ChunkReceipt } from '../model-update/transfer.ts';
import type { ModelManifest } from '../models/manifest.ts';
import type { AppUpdateRequest, AppUpdateResult } from '../service/app-update.ts';
import type { Awaitable } from '../types.ts';
import { topicIdProblem } from '../util/topic-id.ts';

export { type ChunkReceipt, COMMANDS, type CommandName, type ModelChunk, type UnknownSummary };

/**
 * A request that is no command of its own: each model/chunk message carries one chunk of the model a
 * model/update with a `transfer` announced. It is accepted wherever model/update is (it is not listed in
 * control.allow) and runs on arrival, beside the queue of commands.
 */
export const MODEL_CHUNK = 'model/chunk';

/** Everything a request topic may name: the commands, and model/chunk. */
export type RequestName = CommandName | typeof MODEL_CHUNK;
export const REQUESTS: readonly RequestName[] = [...COMMANDS, MODEL_CHUNK];

export type Transaction = string | number;

export interface CommandSignature {
  /** keyIdOf() of the signing key (util/signing.ts): hex SHA-256 of its DER SubjectPublicKeyInfo. */
  keyId: string;
  /** Signing time, milliseconds since the Unix epoch. */
  timestamp: number;
  /** Random and never reused: a nonce is accepted once. */
  nonce: string;
  /** Base64 Ed25519 signature of signedMessage() (see signing.ts). */
  value: string;
}

export interface RequestEnvelope {
  transaction?: Transaction;
  signature?: CommandSignature;
}

type NoParams = Record<never, never>;

/** Most images one face/enroll accepts, and the largest decoded image. */
export const MAX_ENROLL_IMAGES = 10;
export const MAX_ENROLL_IMAGE_BYTES = 4 * 1024 * 1024;

/** Most chunks one model transfer may announce. */
export const MAX_TRANSFER_CHUNKS = 1_000_000;
/** How long a transfer waits for its next new chunk, unless the request asks for less; and the most it may ask. */
export const DEFAULT_TRANSFER_TIMEOUT_SECONDS = 60;
export const MAX_TRANSFER_TIMEOUT_SECONDS = 600;

/** A model/update that sends the model itself: `total` model/chunk messages of transfer `id` follow. */
export interface ModelTransfer {
  /** Names the transfer in its chunks: 1-64 of A-Z a-z 0-9 . _ - */
  id: string;
  /** Number of chunks, 1..MAX_TRANSFER_CHUNKS. */
  total: number;
  /** Abandon the transfer when no new chunk arrived for this long (default 60, at most 600). */
  timeoutSeconds?: number;
}

export interface CommandParams {
  'config/get': NoParams;
  /** A JSON Merge Patch over the current configuration: objects merge, arrays replace, null removes. */
  'config/set': { config: Record<string, unknown> };
  /**
   * Enrols `name` (or adds faces to them) from base64 JPEG or PNG images, one face each; or from an
   * unknown visitor's kept faces (`fromUnknown`, the visitor is then forgotten); or from the face behind
   * a recent event (`fromEvent`, its id).
   */
  'face/enroll':
    | { name: string; images: string[] }
    | { name: string; fromUnknown: string }
    | { name: string; fromEvent: string };
  'face/remove': { name: string };
  'face/list': NoParams;
  /** The face behind a recent `recognized` event is not that person: kept as a negative example of them. */
  'face/reject': { event: string };
  'face/unknowns': NoParams;
  /** Forgets an unknown visitor and their crops. */
  'face/dismiss': { unknown: string };
  /**
   * Check for and install a new model: from `manifestUrl` (or models.update.manifestUrl), or the signed
   * `manifest` itself with the model following in model/chunk messages, as `transfer` announces.
   */
  'model/update': { manifestUrl?: string } | { manifest: ModelManifest; transfer: ModelTransfer };
  /** One chunk of the transfer a model/update announced: chunk `index` (0-based) of `total`, base64. */
  'model/chunk': ModelChunk;
  'model/rollback': NoParams;
  'model/status': NoParams;
  /** The first camera when `camera` is absent; `publish` sends the JPEG to the snapshot topic instead. */
  snapshot: { camera?: string; publish?: boolean };
  health: NoParams;
  restart: NoParams;
  /** A new release bundle from `url`, `bytes` long with this `sha256` (docs/deploy.md). */
  'app/update': AppUpdateRequest;
}

export interface FaceSummary {
  name: string;
  embeddings: number;
  /** `name@version` of every model the person has embeddings for. */
  models: string[];
  /** ISO 8601. */
  createdAt: string;
}

export interface ModelStatus {
  /** The model in use per role (detector, embedder, antispoof, liveness). */
  active: Record<string, ModelRef>;
  /** What model/rollback would return to, or null. */
  previous: Record<string, ModelRef> | null;
  lastUpdate: {
    /** ISO 8601. */
    time: string;
    outcome: 'updated' | 'up-to-date' | 'failed' | 'rolled-back';
    message?: string;
  } | null;
}

export interface ModelUpdateResult {
  updated: boolean;
  status: ModelStatus;
}

export interface CameraHealth {
  id: string;
  /** Frames analysed per second, recently. */
  fps: number;
  /** Frames dropped since start (the pipeline was busy or the fps cap applied). */
  droppedFrames: number;
}

/** The health/heartbeat payload. */
export interface HealthReport {
  /** ISO 8601. */
  time: string;
  uptimeSeconds: number;
  cameras: CameraHealth[];
  /** Recent mean latency per pipeline stage (decode, detect, embed, ...), milliseconds. */
  stageLatencyMs: Record<string, number>;
  /** Hottest CPU thermal zone, °C; null where the board exposes none. */
  cpuTemperatureC: number | null;
  memory: { rssBytes: number; heapUsedBytes: number; heapTotalBytes: number };
  /** The model in use per role. */
  models: Record<string, ModelRef>;
  /** Events waiting in the offline queue. */
  queueDepth: number;
}

export interface CommandResults {
  'config/get': { config: Config };
  /** Changed paths (`cameras[0].fps`) applied in place, and those that take effect after a restart. */
  'config/set': { applied: string[]; restart_required: string[] };
  'face/enroll': { name: string; added: number };
  /** `removed` is false when nobody of that name was enrolled. */
  'face/remove': { name: string; removed: boolean };
  'face/list': { faces: FaceSummary[] };
  /** `negatives`: how many of the track's frames were stored against `identity`. */
  'face/reject': { event: string; identity: string; negatives: number };
  'face/unknowns': { unknowns: UnknownSummary[] };
  /** `removed` is false when there was no such visitor. */
  'face/dismiss': { unknown: string; removed: boolean };
  'model/update': ModelUpdateResult;
  /** The chunk was taken; the model/update response says how the whole update went. */
  'model/chunk': ChunkReceipt;
  'model/rollback': ModelStatus;
  'model/status': ModelStatus;
  snapshot: { camera: string; bytes: number } & ({ image: string } | { published: true });
  health: HealthReport;
  restart: { restarting: true };
  'app/update': AppUpdateResult;
}

export type CommandRequest<C extends RequestName> = CommandParams[C] & RequestEnvelope;

export type ErrorResponse = { status: 'error'; error: string; transaction?: Transaction };
export type CommandResponse<C extends RequestName> =
  | { status: 'ok'; data: CommandResults[C]; transaction?: Transaction }
  | ErrorResponse;

export interface RequestContext {
  scope: 'device' | 'all';
  /** Runs `fn` once the response is published (or gave up on), e.g. to restart after answering. */
  afterResponse(fn: () => Awaitable<void>): void;
  /** Aborted when the router stops: a request waiting for more messages (a transfer's chunks) gives up. */
  signal: AbortSignal;
}

export type CommandHandler<C extends RequestName> = (
  request: CommandRequest<C>,
  context: RequestContext,
) => Awaitable<CommandResults[C]>;

export type CommandHandlers = { [C in RequestName]: CommandHandler<C> };

// Schemas

/** Longest string transaction; it is echoed in the response. */
export const MAX_TRANSACTION_LENGTH = 256;

const transactionSchema = { type: ['string', 'number'], maxLength: MAX_TRANSACTION_LENGTH };

const signatureSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['keyId', 'timestamp', 'nonce', 'value'],
  properties: {
    keyId: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    timestamp: { type: 'integer', minimum: 0 },
    nonce: { type: 'string', pattern: '^[A-Za-z0-9_-]{16,128}$' },
    // Exactly the 88 characters of a canonically padded 64-byte Ed25519 signature.
    value: { type: 'string', pattern: '^[A-Za-z0-9+/]{85}[AQgw]==$' },
  },
};

/** Fields signedMessage() adds next to the parameters, so no command may have a parameter of these names. */
export const SIGNED_FIELDS = ['timestamp', 'nonce', 'topic'] as const;

function requestSchema(
  properties: Record<string, SchemaObject> = {},
  required: string[] = [],
  more: SchemaObject = {},
): SchemaObject {
  return {
    type: 'object',
    additionalProperties: false,
    required,
    properties: { ...properties, transaction: transactionSchema, signature: signatureSchema },
    ...more,
  };
}

// Identifiers are checked by identifierProblem() rather than the schema, for a message that says what is
// wrong with them.
const identifier = { type: 'string' };
const transferId = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' };
const unknownId = { type: 'string', pattern: '^unknown-[1-9][0-9]{0,15}$' };
const eventId = {
  type: 'string',
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
};

export type CommandAccess = 'open' | 'privileged';

export interface CommandSpec {
  schema: SchemaObject;
  /** Top-level string parameters that name things (topic levels, file names, gallery keys). */
  identifiers: readonly string[];
  /**
   * Who may run it. Absent means 'privileged', the safe default for every command added later: a
   * request signed with an installed operator key (docs/security.md). 'open' is for commands that
   * neither change state nor reveal faces, images or secrets.
   */
  access?: CommandAccess;
  /**
   * The queue it waits in (default 'main'): requests of one lane run one at a time in arrival order, and
   * lanes run beside each other, so a model download that hangs never holds up `health` or face commands.
   */
  lane?: 'main' | 'model';
  /** Accepted when this command is in control.allow (for requests that belong to a command). */
  allowedWith?: CommandName;
  /**
   * Runs as soon as it arrives, beside the queue, rather than after the requests before it: always, or
   * when the parsed body says so.
   */
  onArrival?: true | ((body: unknown) => boolean);
}

export const COMMAND_SPECS = {
  'config/get': { schema: requestSchema(), identifiers: [], access: 'open' },
  'config/set': {
    schema: requestSchema({ config: { type: 'object', minProperties: 1 } }, ['config']),
    identifiers: [],
  },
  'face/enroll': {
    schema: requestSchema(
      {
        name: identifier,
        images: {
          type: 'array',
          minItems: 1,
          maxItems: MAX_ENROLL_IMAGES,
          items: { type: 'string', maxLength: Math.ceil(MAX_ENROLL_IMAGE_BYTES / 3) * 4 },
        },
        fromUnknown: unknownId,
        fromEvent: eventId,
      },
      ['name'],
      // Exactly one source of faces.
      {
        oneOf: ['images', 'fromUnknown', 'fromEvent'].map((field) => ({
          required: [field],
          properties: { [field]: true },
        })),
      },
    ),
    identifiers: ['name'],
  },
  'face/remove': {
    schema: requestSchema({ name: identifier }, ['name']),
    identifiers: ['name'],
  },
  // Names of enrolled people are personal data.
  'face/list': { schema: requestSchema(), identifiers: [] },
  'face/reject': {
    schema: requestSchema({ event: eventId }, ['event']),
    identifiers: [],
  },
  'face/unknowns': { schema: requestSchema(), identifiers: [] },
  'face/dismiss': {
    schema: requestSchema({ unknown: unknownId }, ['unknown']),
    identifiers: [],
  },
  'model/update': {
    schema: requestSchema(
      {
        manifestUrl: { type: 'string', maxLength: 2048, pattern: '^https?://\\S+$' },
        // Checked in full (and its signature) by the updater, which names every problem.
        manifest: { type: 'object' },
        transfer: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'total'],
          properties: {
            id: transferId,
            total: { type: 'integer', minimum: 1, maximum: MAX_TRANSFER_CHUNKS },
            timeoutSeconds: { type: 'integer', minimum: 1, maximum: MAX_TRANSFER_TIMEOUT_SECONDS },
          },
        },
      },
      [],
      { dependencies: { manifest: ['transfer'], transfer: ['manifest'] } },
    ),
    identifiers: [],
    lane: 'model',
    // The transfer opens before the next message is read, so its chunks can follow straight away, and it
    // waits for them without holding up the commands behind it.
    onArrival: (body) => typeof body === 'object' && body !== null && Object.hasOwn(body, 'transfer'),
  },
  'model/chunk': {
    schema: requestSchema(
      {
        id: transferId,
        index: { type: 'integer', minimum: 0, maximum: MAX_TRANSFER_CHUNKS - 1 },
        total: { type: 'integer', minimum: 1, maximum: MAX_TRANSFER_CHUNKS },
        // Checked as base64 by the transfer, whose answer names the chunk.
        data: { type: 'string', minLength: 1 },
      },
      ['id', 'index', 'total', 'data'],
    ),
    identifiers: [],
    allowedWith: 'model/update',
    onArrival: true,
  },
  'model/rollback': { schema: requestSchema(), identifiers: [], lane: 'model' },
  'model/status': { schema: requestSchema(), identifiers: [], access: 'open' },
  snapshot: {
    schema: requestSchema({ camera: identifier, publish: { type: 'boolean' } }),
    // A camera image.
    identifiers: ['camera'],
  },
  health: { schema: requestSchema(), identifiers: [], access: 'open' },
  restart: { schema: requestSchema(), identifiers: [] },
  'app/update': {
    schema: requestSchema(
      {
        url: { type: 'string', maxLength: 2048, pattern: '^https?://\\S+$' },
        sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        bytes: { type: 'integer', minimum: 1 },
      },
      ['url', 'sha256', 'bytes'],
    ),
    identifiers: [],
    // A bundle download may take minutes: it waits beside the main lane, as model downloads do.
    lane: 'model',
  },
} as const satisfies Record<RequestName, CommandSpec>;

export function commandSpec(name: RequestName): CommandSpec {
  return COMMAND_SPECS[name];
}

/** Whether `name` needs an operator's signature (unless the broker is the device's own, on loopback). */
export function isPrivileged(name: RequestName): boolean {
  return (commandSpec(name).access ?? 'privileged') === 'privileged';
}

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validators = Object.fromEntries(
  REQUESTS.map((name) => [name, ajv.compile(COMMAND_SPECS[name].schema)]),
) as Record<RequestName, ValidateFunction>;

export function isCommandName(value: string): value is CommandName {
  return (COMMANDS as readonly string[]).includes(value);
}

export function isRequestName(value: string): value is RequestName {
  return (REQUESTS as readonly string[]).includes(value);
}

/** Why `value` cannot name something (wildcards, `/`, control characters, `..`, length), or null. */
export function identifierProblem(value: string): string | null {
  return topicIdProblem(value) ?? (value.includes('..') ? 'contains ..' : null);
}

export type RequestCheck<C extends RequestName> =
  | { ok: true; request: CommandRequest<C> }
  | { ok: false; error: string };

/** Schema and identifier checks of a parsed request body; the error names every offending field. */
export function validateRequest<C extends RequestName>(command: C, body: unknown): RequestCheck<C> {
  const validate = validators[command];
  if (!validate(body)) {
    // A oneOf's own error says what is wrong; its branches' errors would only list every alternative.
    const errors = (validate.errors ?? []).filter((e) => !/\/oneOf\/\d+\//.test(e.schemaPath));
    return { ok: false, error: `invalid request: ${errors.map((e) => describe(e, command)).join('; ')}` };
  }
  const request = body as CommandRequest<C> & Record<string, unknown>;
  for (const field of COMMAND_SPECS[command].identifiers) {
    const value = request[field];
    const problem = typeof value === 'string' ? identifierProblem(value) : null;
    if (problem !== null)
      return { ok: false, error: `invalid request: ${field} ${JSON.stringify(value)} ${problem}` };
  }
  return { ok: true, request };
}

function describe(error: ErrorObject, command: RequestName): string {
  const path: PathSegment[] = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  switch (error.keyword) {
    case 'required':
      return `${formatPath([...path, String(error.params.missingProperty)])}: required`;
    case 'additionalProperties':
      return `${formatPath([...path, String(error.params.additionalProperty)])}: unknown field`;
    case 'oneOf': {
      const alternatives = (COMMAND_SPECS[command].schema.oneOf as { required: string[] }[]).map(
        (b) => b.required[0],
      );
      return `request: needs exactly one of ${alternatives.join(', ')}`;
    }
    case 'dependencies':
      return `${formatPath([...path, String(error.params.missingProperty)])}: required with ${error.params.property}`;
    default:
      return `${path.length === 0 ? 'request' : formatPath(path)}: ${error.message}`;
  }
}
