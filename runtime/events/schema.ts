// The event payload published on <base>/<device>/event, its JSON Schema (published contract for consumers)
// and the one builder the pipeline uses, which refuses to emit anything the schema would reject.

import { randomUUID } from 'node:crypto';
import { Ajv, type ErrorObject } from 'ajv';
import ajvFormats from 'ajv-formats';
import type { Box } from '../types.ts';
import { assertTopicId } from '../util/topic-id.ts';

export const EVENT_SCHEMA_VERSION = 1;

export const EVENT_TYPES = ['recognized', 'unknown', 'spoof'] as const;
export type FaceEventType = (typeof EVENT_TYPES)[number];

export interface ModelRef {
  name: string;
  version: string;
}

export interface FaceEvent {
  schemaVersion: typeof EVENT_SCHEMA_VERSION;
  /** Random UUID; consumers deduplicate on it (delivery is at-least-once). */
  id: string;
  /** When the face was seen (ISO 8601, UTC); kept unchanged when the event is replayed. */
  time: string;
  camera: string;
  type: FaceEventType;
  /** Enrolled identity for `recognized`; null for `unknown`; either for `spoof`. */
  identity: string | null;
  /** Confidence in `type`, 0..1. */
  score: number;
  box: Box;
  /** Tracker id, stable while the same face stays in view of the camera. */
  trackId: number;
  model: ModelRef;
  /** On `unknown` events: the unknown visitor this face was filed under (unknowns.enabled), stable across visits. */
  unknownId?: string;
  /** Base64 JPEG of the face, when snapshots are enabled. */
  snapshot?: string;
  /** Present only on events sent late from the offline queue. */
  replayed?: true;
}

const idPattern = '^[^+#/\\u0000-\\u001f\\u007f]+$';

export const faceEventJsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://facegate.dev/schemas/event-v1.json',
  title: 'facegate face event',
  type: 'object',
  additionalProperties: false,
  required: ['schemaVersion', 'id', 'time', 'camera', 'type', 'identity', 'score', 'box', 'trackId', 'model'],
  properties: {
    schemaVersion: { const: EVENT_SCHEMA_VERSION },
    id: { type: 'string', format: 'uuid' },
    time: { type: 'string', format: 'date-time' },
    camera: { type: 'string', minLength: 1, maxLength: 64, pattern: idPattern },
    type: { type: 'string', enum: [...EVENT_TYPES] },
    identity: { type: ['string', 'null'], minLength: 1, maxLength: 256 },
    score: { type: 'number', minimum: 0, maximum: 1 },
    box: {
      type: 'array',
      minItems: 4,
      maxItems: 4,
      items: [
        { type: 'number' },
        { type: 'number' },
        { type: 'number', minimum: 0 },
        { type: 'number', minimum: 0 },
      ],
    },
    trackId: { type: 'integer', minimum: 0 },
    model: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'version'],
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 128 },
        version: { type: 'string', minLength: 1, maxLength: 128 },
      },
    },
    unknownId: { type: 'string', pattern: '^unknown-[1-9][0-9]{0,15}$' },
    // A JPEG starts with FF D8 FF, which base64-encodes to "/9j/".
    snapshot: {
      type: 'string',
      contentEncoding: 'base64',
      contentMediaType: 'image/jpeg',
      pattern: '^/9j/[A-Za-z0-9+/]*={0,2}$',
    },
    replayed: { const: true },
  },
  allOf: [
    {
      if: { type: 'object', required: ['type'], properties: { type: { const: 'recognized' } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema if/then keyword, not a thenable
      then: { properties: { identity: { type: 'string' } } },
    },
    {
      if: { type: 'object', required: ['type'], properties: { type: { const: 'unknown' } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema if/then keyword, not a thenable
      then: { properties: { identity: { type: 'null' } } },
    },
    {
      if: { type: 'object', required: ['unknownId'], properties: { unknownId: true } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema if/then keyword, not a thenable
      then: { properties: { type: { const: 'unknown' } } },
    },
  ],
} as const;

/** Strict draft-07 validator with the `uuid` and `date-time` formats the event schema relies on. */
export function createEventAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true });
  ajvFormats.default(ajv, ['uuid', 'date-time']);
  return ajv;
}

const validate = createEventAjv().compile<FaceEvent>(faceEventJsonSchema);

function describe(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
}

/** Schema violations of `value` as `<json pointer> <reason>` lines; empty when it is a valid event. */
export function eventProblems(value: unknown): string[] {
  return validate(value) ? [] : describe(validate.errors);
}

export function isFaceEvent(value: unknown): value is FaceEvent {
  return validate(value);
}

export class EventError extends Error {
  override readonly name = 'EventError';
}

export interface FaceEventInput {
  camera: string;
  type: FaceEventType;
  identity?: string | null;
  score: number;
  box: Box;
  trackId: number;
  model: ModelRef;
  unknownId?: string;
  /** JPEG bytes or an already base64-encoded JPEG. */
  snapshot?: Uint8Array | string;
  /** Capture time of the frame; now when absent. */
  time?: Date;
}

export function buildEvent(input: FaceEventInput): FaceEvent {
  assertTopicId(input.camera, 'camera id');
  const event: FaceEvent = {
    schemaVersion: EVENT_SCHEMA_VERSION,
    id: randomUUID(),
    time: (input.time ?? new Date()).toISOString(),
    camera: input.camera,
    type: input.type,
    identity: input.identity ?? null,
    score: input.score,
    box: [input.box[0], input.box[1], input.box[2], input.box[3]],
    trackId: input.trackId,
    model: { name: input.model.name, version: input.model.version },
  };
  if (input.unknownId !== undefined) event.unknownId = input.unknownId;
  if (input.snapshot !== undefined) {
    event.snapshot =
      typeof input.snapshot === 'string' ? input.snapshot : Buffer.from(input.snapshot).toString('base64');
  }
  const problems = eventProblems(event);
  if (problems.length > 0) throw new EventError(`invalid event: ${problems.join('; ')}`);
  return event;
}

export type DeviceStatus = 'starting' | 'running' | 'degraded' | 'stopping';

export interface CameraState {
  id: string;
  online: boolean;
  /** Frames analysed per second over the last reporting interval. */
  fps: number;
}

/** Retained summary on <base>/<device>/state. */
export interface DeviceState {
  schemaVersion: typeof EVENT_SCHEMA_VERSION;
  time: string;
  status: DeviceStatus;
  /** facegate version. */
  version: string;
  uptimeSeconds: number;
  cameras: CameraState[];
  model: ModelRef | null;
  events: {
    published: number;
    /** Waiting in the offline queue. */
    queued: number;
    /** Discarded because the offline queue was full, since start. */
    dropped: number;
  };
}
