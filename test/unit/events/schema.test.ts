import { describe, expect, it } from 'vitest';
import {
  buildEvent,
  createEventAjv,
  EventError,
  eventProblems,
  type FaceEventInput,
  faceEventJsonSchema,
  isFaceEvent,
} from '../../../runtime/events/schema.ts';

const validate = createEventAjv().compile(faceEventJsonSchema);

const input: FaceEventInput = {
  camera: 'front',
  type: 'recognized',
  identity: 'alice',
  score: 0.93,
  box: [10, 20, 64, 80],
  trackId: 7,
  model: { name: 'mobilefacenet-int8', version: '1.2.0' },
};

describe('buildEvent', () => {
  it('builds an event that validates against the published JSON Schema', () => {
    const event = buildEvent(input);
    expect(validate(event)).toBe(true);
    expect(event).toMatchObject({ schemaVersion: 1, camera: 'front', type: 'recognized', identity: 'alice' });
    expect(event.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Date(event.time).toISOString()).toBe(event.time);
    expect(event.replayed).toBeUndefined();
    expect(event.snapshot).toBeUndefined();
  });

  it('gives every event a unique id and uses the capture time when given', () => {
    const time = new Date('2024-05-01T12:00:00.123Z');
    const ids = new Set(Array.from({ length: 1000 }, () => buildEvent({ ...input, time }).id));
    expect(ids.size).toBe(1000);
    expect(buildEvent({ ...input, time }).time).toBe('2024-05-01T12:00:00.123Z');
  });

  it('encodes a JPEG snapshot as base64', () => {
    const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]);
    const event = buildEvent({ ...input, snapshot: jpeg });
    expect(Buffer.from(event.snapshot as string, 'base64')).toEqual(Buffer.from(jpeg));
    expect(validate(event)).toBe(true);
  });

  it('builds unknown and spoof events', () => {
    expect(validate(buildEvent({ ...input, type: 'unknown', identity: null }))).toBe(true);
    expect(validate(buildEvent({ ...input, type: 'spoof', identity: null }))).toBe(true);
    expect(validate(buildEvent({ ...input, type: 'spoof', identity: 'alice' }))).toBe(true);
  });

  it.each<[string, Partial<FaceEventInput>]>([
    ['recognized without identity', { identity: null }],
    ['unknown with identity', { type: 'unknown' }],
    ['score above 1', { score: 1.5 }],
    ['NaN score', { score: Number.NaN }],
    ['negative width', { box: [0, 0, -1, 5] }],
    ['fractional trackId', { trackId: 1.5 }],
    ['camera with a slash', { camera: 'a/b' }],
    ['non-JPEG snapshot', { snapshot: Uint8Array.from([0x89, 0x50, 0x4e, 0x47]) }],
    ['empty model name', { model: { name: '', version: '1' } }],
  ])('refuses %s', (_name, patch) => {
    expect(() => buildEvent({ ...input, ...patch })).toThrow(Error);
  });

  it('reports schema problems with their location', () => {
    expect(() => buildEvent({ ...input, score: 2 })).toThrow(EventError);
    expect(eventProblems({ ...buildEvent(input), score: 2 })).toEqual(['/score must be <= 1']);
  });
});

describe('faceEventJsonSchema', () => {
  const event = buildEvent(input);

  it('accepts replayed events and rejects other values of replayed', () => {
    expect(validate({ ...event, replayed: true })).toBe(true);
    expect(validate({ ...event, replayed: false })).toBe(false);
  });

  it('rejects unknown fields, missing fields and other schema versions', () => {
    expect(validate({ ...event, extra: 1 })).toBe(false);
    const { trackId: _, ...missing } = event;
    expect(validate(missing)).toBe(false);
    expect(validate({ ...event, schemaVersion: 2 })).toBe(false);
    expect(validate({ ...event, time: 'yesterday' })).toBe(false);
    expect(validate({ ...event, id: 'not-a-uuid' })).toBe(false);
    expect(validate({ ...event, box: [1, 2, 3] })).toBe(false);
    expect(validate({ ...event, type: 'maybe' })).toBe(false);
  });

  it('agrees with isFaceEvent', () => {
    expect(isFaceEvent(event)).toBe(true);
    expect(isFaceEvent({ ...event, score: -0.1 })).toBe(false);
    expect(isFaceEvent(null)).toBe(false);
  });
});
