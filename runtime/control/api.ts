// Every remote command's request and response, in one place (the zigbee2mqtt convention): a request is
// the command's parameters plus an optional `transaction`, echoed in the response, and an optional
// `signature`; a response is `{ status, data | error, transaction }`. COMMAND_SPECS is the one table of
// commands: the request names, control.allow's accepted values (configs/schema.json, default.yaml) and
// the command reference in docs/mqtt.md are derived from it (`npm run generate` writes the files).

import { Ajv, type ErrorObject, type SchemaObject, type ValidateFunction } from 'ajv';
import type { Config } from '../config/index.ts';
import { formatPath, type PathSegment } from '../config/util.ts';
import type { ModelRef } from '../events/schema.ts';
import type { UnknownSummary } from '../matching/unknowns.ts';
import type { ModelChunk } from '../model-update/download.ts';
import type { ChunkReceipt } from '../model-update/transfer.ts';
import type { ModelManifest } from '../models/manifest.ts';
import type { AppUpdateRequest, AppUpdateResult } from '../service/app-update.ts';
import type { Awaitable } from '../types.ts';
import { topicIdProblem } from '../util/topic-id.ts';

export type { ChunkReceipt, ModelChunk, UnknownSummary };

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
  /** What the command does, one or two sentences of Markdown: the command reference in docs/mqtt.md. */
  summary: string;
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
  /**
   * A request that is no command of its own but belongs to this command: accepted when that command is
   * in control.allow (it is not listed there itself) and not a CommandName.
   */
  allowedWith?: string;
  /**
   * Runs as soon as it arrives, beside the queue, rather than after the requests before it: always, or
   * when the parsed body says so.
   */
  onArrival?: true | ((body: unknown) => boolean);
}

declare const types: unique symbol;
/** The parameter and result types of a table entry: types only, nothing at run time. */
interface Typed<Params, Result> {
  readonly [types]?: { params: Params; result: Result };
}

/** A COMMAND_SPECS entry for a request taking `Params` and answered with `Result`. */
function command<Params, Result>() {
  return <const Spec extends CommandSpec>(spec: Spec): Spec & Typed<Params, Result> => spec;
}

export const COMMAND_SPECS = {
  'config/get': command<NoParams, { config: Config }>()({
    summary: 'The configuration in effect (as last accepted), secrets redacted as `***`.',
    schema: requestSchema(),
    identifiers: [],
    access: 'open',
  }),
  'config/set': command<
    /** A JSON Merge Patch over the current configuration: objects merge, arrays replace, null removes. */
    { config: Record<string, unknown> },
    /** Changed paths (`cameras[0].fps`) applied in place, and those that take effect after a restart. */
    { applied: string[]; restart_required: string[] }
  >()({
    summary:
      '`config` is a JSON Merge Patch over the current configuration; the result is validated, saved and applied. Answers the settings `applied` at once and those that are `restart_required`.',
    schema: requestSchema({ config: { type: 'object', minProperties: 1 } }, ['config']),
    identifiers: [],
  }),
  'face/enroll': command<
    | { name: string; images: string[] }
    | { name: string; fromUnknown: string }
    | { name: string; fromEvent: string },
    { name: string; added: number }
  >()({
    summary:
      "Enrols `name` (or adds faces to them) from base64 JPEG or PNG `images`, one face each; or from an unknown visitor's kept faces (`fromUnknown`, the visitor is then forgotten); or from the face behind a recent event (`fromEvent`).",
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
  }),
  'face/remove': command<{ name: string }, { name: string; removed: boolean }>()({
    summary: 'Erases a person; `removed` is false when nobody of that name was enrolled.',
    schema: requestSchema({ name: identifier }, ['name']),
    identifiers: ['name'],
  }),
  // Names of enrolled people are personal data.
  'face/list': command<NoParams, { faces: FaceSummary[] }>()({
    summary: 'The enrolled people (never their images).',
    schema: requestSchema(),
    identifiers: [],
  }),
  'face/reject': command<
    { event: string },
    /** `negatives`: how many of the track's frames were stored against `identity`. */
    { event: string; identity: string; negatives: number }
  >()({
    summary:
      'The face behind a recent `recognized` event is not that person: its frames are kept as negative examples of them.',
    schema: requestSchema({ event: eventId }, ['event']),
    identifiers: [],
  }),
  'face/unknowns': command<NoParams, { unknowns: UnknownSummary[] }>()({
    summary: 'The unknown visitors kept (never their crops), most recently seen first.',
    schema: requestSchema(),
    identifiers: [],
  }),
  'face/dismiss': command<{ unknown: string }, { unknown: string; removed: boolean }>()({
    summary: 'Forgets an unknown visitor and their crops; `removed` is false when there was none.',
    schema: requestSchema({ unknown: unknownId }, ['unknown']),
    identifiers: [],
  }),
  'model/update': command<
    { manifestUrl?: string } | { manifest: ModelManifest; transfer: ModelTransfer },
    ModelUpdateResult
  >()({
    summary:
      'Checks for and installs a new model: from `manifestUrl` (or models.update.manifestUrl), or the signed `manifest` itself with the model following in `model/chunk` messages, as `transfer` announces.',
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
  }),
  // Answered once the chunk is taken; the model/update response says how the whole update went.
  'model/chunk': command<ModelChunk, ChunkReceipt>()({
    summary:
      'One chunk (`index`, 0-based, of `total`, base64 `data`) of the model a `model/update` with a `transfer` announced.',
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
  }),
  'model/rollback': command<NoParams, ModelStatus>()({
    summary: 'Every model running an installed version goes back to the one it replaced.',
    schema: requestSchema(),
    identifiers: [],
    lane: 'model',
  }),
  'model/status': command<NoParams, ModelStatus>()({
    summary: 'The models in use, what `model/rollback` would return to, and how the last update went.',
    schema: requestSchema(),
    identifiers: [],
    access: 'open',
  }),
  snapshot: command<
    { camera?: string; publish?: boolean },
    { camera: string; bytes: number } & ({ image: string } | { published: true })
  >()({
    summary:
      'A JPEG of the latest frame of `camera` (the first camera when absent), base64 in the response, or sent to the snapshot topic with `publish`.',
    schema: requestSchema({ camera: identifier, publish: { type: 'boolean' } }),
    // A camera image.
    identifiers: ['camera'],
  }),
  health: command<NoParams, HealthReport>()({
    summary:
      'The same report as the heartbeat: cameras, stage latencies, temperature, memory, models, queue.',
    schema: requestSchema(),
    identifiers: [],
    access: 'open',
  }),
  restart: command<NoParams, { restarting: true }>()({
    summary: 'Answers, then stops facegate cleanly and exits for its supervisor to start it again.',
    schema: requestSchema(),
    identifiers: [],
  }),
  'app/update': command<AppUpdateRequest, AppUpdateResult>()({
    summary:
      'A new release bundle from `url`, `bytes` long with this `sha256`, verified and staged (docs/deploy.md).',
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
  }),
};

type Specs = typeof COMMAND_SPECS;
type TypesOf<Spec> =
  Spec extends Typed<infer Params, infer Result> ? { params: Params; result: Result } : never;

/** Everything a request topic may name: the commands, and the requests that belong to one (model/chunk). */
export type RequestName = keyof Specs;
/** What control.allow lists: every request that is not `allowedWith` another. */
export type CommandName = {
  [C in RequestName]: Specs[C] extends { allowedWith: string } ? never : C;
}[RequestName];
export type CommandParams = { [C in RequestName]: TypesOf<Specs[C]>['params'] };
export type CommandResults = { [C in RequestName]: TypesOf<Specs[C]>['result'] };

export const REQUESTS = Object.keys(COMMAND_SPECS) as RequestName[];
export const COMMANDS = REQUESTS.filter(
  (name): name is CommandName => commandSpec(name).allowedWith === undefined,
);

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
