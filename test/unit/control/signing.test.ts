import { createHash, createPublicKey, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, commandKeyId, signCommand, signedMessage } from '../../../runtime/control/signing.ts';
import { makeSigningKey } from '../../helpers/control-fakes.ts';

describe('canonicalJson', () => {
  it('sorts object keys at every level, keeps array order and adds no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 'é' }], c: null }, A: true })).toBe(
      '{"A":true,"a":{"c":null,"d":[3,{"y":"é","z":1}]},"b":1}',
    );
    expect(canonicalJson({ a: undefined, b: [undefined] })).toBe('{"b":[null]}');
    expect(canonicalJson('x"y')).toBe('"x\\"y"');
  });
});

describe('signCommand', () => {
  const key = makeSigningKey();
  const topic = 'facegate/cam-01/request/face/remove';

  it('signs the documented message: body without signature, plus timestamp, nonce and topic', () => {
    const signed = signCommand({ transaction: 7, name: 'alice' }, key.privateKey, key.keyId, topic, {
      timestamp: 1_700_000_000_000,
      nonce: 'AAAAAAAAAAAAAAAAAAAAAA',
    });
    expect(signed).toMatchObject({
      name: 'alice',
      transaction: 7,
      signature: { keyId: key.keyId, timestamp: 1_700_000_000_000, nonce: 'AAAAAAAAAAAAAAAAAAAAAA' },
    });
    const message =
      '{"name":"alice","nonce":"AAAAAAAAAAAAAAAAAAAAAA","timestamp":1700000000000,' +
      '"topic":"facegate/cam-01/request/face/remove","transaction":7}';
    expect(signedMessage(signed, topic).toString()).toBe(message);
    const publicKey = createPublicKey(key.publicPem);
    expect(verify(null, Buffer.from(message), publicKey, Buffer.from(signed.signature.value, 'base64'))).toBe(
      true,
    );
  });

  it('picks a fresh nonce and the current time by default', () => {
    const before = Date.now();
    const a = signCommand({}, key.privateKey, key.keyId, topic);
    const b = signCommand({}, key.privateKey, key.keyId, topic);
    expect(a.signature.nonce).not.toBe(b.signature.nonce);
    expect(a.signature.nonce).toMatch(/^[A-Za-z0-9_-]{16,128}$/);
    expect(a.signature.timestamp).toBeGreaterThanOrEqual(before);
  });
});

describe('commandKeyId', () => {
  it('is the SHA-256 of the DER public key, from the public or the private key', () => {
    const key = makeSigningKey();
    const der = createPublicKey(key.publicPem).export({ type: 'spki', format: 'der' });
    const expected = createHash('sha256').update(der).digest('hex');
    expect(key.keyId).toBe(expected);
    expect(commandKeyId(key.publicPem)).toBe(expected);
    expect(commandKeyId(key.privateKey)).toBe(expected);
  });
});
