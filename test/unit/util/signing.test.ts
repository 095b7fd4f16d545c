import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  generateSigningKeyPair,
  keyIdOf,
  signJson,
  verifyJson,
} from '../../../runtime/util/signing.ts';

describe('canonicalJson', () => {
  it('sorts object keys at every level, keeps array order and adds no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 'é' }], c: null }, A: true })).toBe(
      '{"A":true,"a":{"c":null,"d":[3,{"y":"é","z":1}]},"b":1}',
    );
    expect(canonicalJson('x"y')).toBe('"x\\"y"');
  });

  it('leaves undefined members out and writes an undefined array element as null, as JSON.stringify does', () => {
    const value = { a: undefined, b: [undefined, 1], c: { d: undefined } };
    expect(canonicalJson(value)).toBe('{"b":[null,1],"c":{}}');
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
  });
});

describe('keyIdOf', () => {
  it('is the hex SHA-256 of the DER public key, from the public or the private key', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const expected = createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex');
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
    expect(keyIdOf(publicKey)).toBe(expected);
    expect(keyIdOf(publicKey.export({ type: 'spki', format: 'pem' }).toString())).toBe(expected);
    expect(keyIdOf(privateKey)).toBe(expected);
  });

  it('is the id a generated pair carries', () => {
    const pair = generateSigningKeyPair();
    expect(pair.keyId).toBe(keyIdOf(pair.publicKeyPem));
    expect(pair.keyId).toBe(keyIdOf(pair.privateKeyPem));
  });
});

describe('signJson / verifyJson', () => {
  const pair = generateSigningKeyPair();
  const publicKey = createPublicKey(pair.publicKeyPem);

  it('a signature covers the value, not the order of its keys', () => {
    const signature = signJson({ a: 1, b: [2, 3] }, pair.privateKeyPem);
    expect(verifyJson({ b: [2, 3], a: 1 }, publicKey, signature)).toBe(true);
    expect(verifyJson({ a: 1, b: [3, 2] }, publicKey, signature)).toBe(false);
  });

  it('refuses a signature of the wrong length or by another key', () => {
    expect(verifyJson({ a: 1 }, publicKey, 'AAAA')).toBe(false);
    const other = generateSigningKeyPair();
    expect(verifyJson({ a: 1 }, publicKey, signJson({ a: 1 }, other.privateKeyPem))).toBe(false);
  });
});
