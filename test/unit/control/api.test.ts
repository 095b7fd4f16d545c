import { describe, expect, it } from 'vitest';
import {
  COMMAND_SPECS,
  COMMANDS,
  identifierProblem,
  MAX_ENROLL_IMAGE_BYTES,
  MAX_ENROLL_IMAGES,
  MAX_TRANSFER_CHUNKS,
  REQUESTS,
  SIGNED_FIELDS,
  validateRequest,
} from '../../../runtime/control/api.ts';

describe('request schemas', () => {
  it('exist for every command and model/chunk, and leave the signed fields free', () => {
    expect(Object.keys(COMMAND_SPECS).sort()).toEqual([...COMMANDS, 'model/chunk'].sort());
    expect([...REQUESTS].sort()).toEqual(Object.keys(COMMAND_SPECS).sort());
    for (const { schema } of Object.values(COMMAND_SPECS)) {
      for (const field of SIGNED_FIELDS) expect(schema.properties).not.toHaveProperty(field);
    }
  });

  it('accept the envelope on every command', () => {
    for (const command of ['health', 'face/list', 'restart'] as const) {
      expect(validateRequest(command, { transaction: 'x' })).toEqual({
        ok: true,
        request: { transaction: 'x' },
      });
      expect(validateRequest(command, { transaction: 12 }).ok).toBe(true);
    }
  });

  it('cap the number and size of enrolment images', () => {
    const image = 'A'.repeat(8);
    expect(
      validateRequest('face/enroll', { name: 'a', images: Array(MAX_ENROLL_IMAGES).fill(image) }).ok,
    ).toBe(true);
    expect(
      validateRequest('face/enroll', { name: 'a', images: Array(MAX_ENROLL_IMAGES + 1).fill(image) }),
    ).toEqual({
      ok: false,
      error: `invalid request: images: must NOT have more than ${MAX_ENROLL_IMAGES} items`,
    });
    expect(validateRequest('face/enroll', { name: 'a', images: [] })).toMatchObject({ ok: false });
    const tooLarge = 'A'.repeat(Math.ceil(MAX_ENROLL_IMAGE_BYTES / 3) * 4 + 4);
    expect(validateRequest('face/enroll', { name: 'a', images: [image, tooLarge] })).toEqual({
      ok: false,
      error: expect.stringMatching(/^invalid request: images\[1\]: must NOT have more than \d+ characters$/),
    });
  });

  it('check parameter types and formats', () => {
    expect(validateRequest('config/set', { config: {} })).toEqual({
      ok: false,
      error: 'invalid request: config: must NOT have fewer than 1 properties',
    });
    expect(validateRequest('model/update', { manifestUrl: 'ftp://x' })).toMatchObject({
      ok: false,
      error: expect.stringMatching(/^invalid request: manifestUrl: must match pattern/),
    });
    expect(validateRequest('snapshot', { publish: 'yes' })).toEqual({
      ok: false,
      error: 'invalid request: publish: must be boolean',
    });
    expect(validateRequest('health', { transaction: 'x'.repeat(257) })).toMatchObject({ ok: false });
    expect(validateRequest('health', { signature: { keyId: 'k' } })).toEqual({
      ok: false,
      error:
        'invalid request: signature.timestamp: required; signature.nonce: required; signature.value: required; signature.keyId: must match pattern "^[0-9a-f]{64}$"',
    });
  });
});

describe('model transfers', () => {
  const manifest = { name: 'facerec', version: '1.0.1' };

  it('take model/update with a manifest and a transfer, or a manifestUrl, but not one half of a transfer', () => {
    expect(validateRequest('model/update', { manifest, transfer: { id: 'xfer-1', total: 12 } }).ok).toBe(
      true,
    );
    expect(
      validateRequest('model/update', {
        manifest,
        transfer: { id: 'a.b_c-9', total: 1, timeoutSeconds: 600 },
      }).ok,
    ).toBe(true);
    expect(validateRequest('model/update', { manifest })).toEqual({
      ok: false,
      error: 'invalid request: transfer: required with manifest',
    });
    expect(validateRequest('model/update', { transfer: { id: 'x', total: 1 } })).toEqual({
      ok: false,
      error: 'invalid request: manifest: required with transfer',
    });
    expect(
      validateRequest('model/update', {
        manifest,
        transfer: { id: 'a/b', total: 0, timeoutSeconds: 601, chunkSize: 4 },
      }),
    ).toEqual({
      ok: false,
      error:
        'invalid request: transfer.chunkSize: unknown field; transfer.id: must match pattern "^[A-Za-z0-9._-]{1,64}$"; transfer.total: must be >= 1; transfer.timeoutSeconds: must be <= 600',
    });
  });

  it('take model/chunk with an id, an index, a total and data', () => {
    expect(validateRequest('model/chunk', { id: 'x', index: 0, total: 1, data: 'AAAA' }).ok).toBe(true);
    expect(
      validateRequest('model/chunk', { id: 'x', index: -1, total: MAX_TRANSFER_CHUNKS + 1, data: '' }),
    ).toEqual({
      ok: false,
      error: `invalid request: index: must be >= 0; total: must be <= ${MAX_TRANSFER_CHUNKS}; data: must NOT have fewer than 1 characters`,
    });
    expect(validateRequest('model/chunk', { id: 'x' })).toEqual({
      ok: false,
      error: 'invalid request: index: required; total: required; data: required',
    });
  });
});

describe('identifierProblem', () => {
  it('accepts ordinary names, including non-ASCII ones', () => {
    for (const name of ['alice', 'Zoë Ångström', 'o.brien', 'x'.repeat(64)])
      expect(identifierProblem(name)).toBeNull();
  });

  it('refuses names that could escape a topic level or a path', () => {
    expect(identifierProblem('../etc')).toBe('contains the topic separator /');
    expect(identifierProblem('a..b')).toBe('contains ..');
    expect(identifierProblem('x'.repeat(65))).toBe('is longer than 64 characters');
    expect(identifierProblem(' a')).toBe('has leading or trailing whitespace');
  });
});
