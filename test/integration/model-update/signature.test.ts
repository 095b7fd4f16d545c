import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { signManifest, verifyManifest } from '../../../runtime/model-update/signature.ts';
import { validateManifest } from '../../../runtime/models/manifest.ts';
import { generateSigningKeyPair, keyIdOf } from '../../../runtime/util/signing.ts';
import { builtModel, tempDir } from '../../helpers/model-update.ts';

const manifest = builtModel('facerec').manifest;
const alice = generateSigningKeyPair();
const mallory = generateSigningKeyPair();

describe('signManifest / verifyManifest', () => {
  it('a signed manifest verifies and is still schema-valid', () => {
    const signed = signManifest(manifest, alice.privateKeyPem, 'fleet-2025');
    expect(signed.signature).toMatchObject({ algorithm: 'ed25519', keyId: 'fleet-2025' });
    expect(validateManifest(signed)).toEqual([]);
    expect(verifyManifest(signed, [{ keyId: 'fleet-2025', pem: alice.publicKeyPem }], false)).toEqual({
      ok: true,
      signed: true,
      keyId: 'fleet-2025',
    });
  });

  it('plain PEM keys (as in the config) are matched by their key id, the default one', () => {
    const signed = signManifest(manifest, alice.privateKeyPem);
    expect(signed.signature?.keyId).toBe(alice.keyId);
    expect(alice.keyId).toBe(keyIdOf(alice.publicKeyPem));
    expect(verifyManifest(signed, [mallory.publicKeyPem, alice.publicKeyPem], false).ok).toBe(true);
  });

  it('does not depend on key order or formatting of the manifest', () => {
    const signed = signManifest(manifest, alice.privateKeyPem);
    const reordered = JSON.parse(
      JSON.stringify(Object.fromEntries(Object.entries(signed).reverse()), null, 4),
    );
    expect(verifyManifest(reordered, [alice.publicKeyPem], false).ok).toBe(true);
  });

  it.each([
    ['version', { version: '6.6.6' }],
    ['sha256', { sha256: 'f'.repeat(64) }],
    ['threshold', { thresholds: { ...manifest.thresholds, far: { '0.01': 0.1, '0.001': 0.2 } } }],
  ])('a tampered %s is a bad signature', (_field, change) => {
    const tampered = { ...signManifest(manifest, alice.privateKeyPem), ...change };
    expect(verifyManifest(tampered as typeof manifest, [alice.publicKeyPem], false)).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
  });

  it('a signature by another key under a trusted key id is a bad signature', () => {
    const forged = signManifest(manifest, mallory.privateKeyPem, 'fleet');
    expect(verifyManifest(forged, [{ keyId: 'fleet', pem: alice.publicKeyPem }], false)).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
  });

  it('a signature by an untrusted key is refused as unknown, even when unsigned models are allowed', () => {
    const signed = signManifest(manifest, mallory.privateKeyPem);
    for (const allowUnsigned of [false, true]) {
      const result = verifyManifest(signed, [alice.publicKeyPem], allowUnsigned);
      expect(result).toMatchObject({ ok: false, reason: 'unknown-key' });
      expect(!result.ok && result.message).toContain(mallory.keyId);
    }
  });

  it('a garbled signature value is a bad signature', () => {
    const signed = signManifest(manifest, alice.privateKeyPem);
    const garbled = {
      ...signed,
      signature: { ...(signed.signature as NonNullable<typeof signed.signature>), value: 'AAAA' },
    };
    expect(verifyManifest(garbled, [alice.publicKeyPem], false)).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
  });

  it('unsigned: refused unless allowed', () => {
    expect(verifyManifest(manifest, [alice.publicKeyPem], false)).toMatchObject({
      ok: false,
      reason: 'unsigned',
    });
    expect(verifyManifest(manifest, [], true)).toEqual({ ok: true, signed: false });
  });

  it('a trusted key that is not ed25519 is a configuration error', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    expect(() => verifyManifest(signManifest(manifest, alice.privateKeyPem), [rsa], false)).toThrow(
      /key 1 is rsa, not ed25519/,
    );
    expect(() => verifyManifest(signManifest(manifest, alice.privateKeyPem), ['hello'], false)).toThrow(
      /key 1 is not a PEM public key/,
    );
  });
});

describe('signature CLI', () => {
  let dir: ReturnType<typeof tempDir> | undefined;
  afterEach(() => dir?.remove());

  it('keygen, sign and verify as the docs show', () => {
    dir = tempDir('sign-cli');
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'runtime/model-update/signature.ts', ...args], {
        encoding: 'utf8',
        timeout: 60_000,
      });
    const prefix = join(dir.path, 'fleet');
    expect(cli('keygen', prefix).status).toBe(0);
    expect(statSync(`${prefix}.key`).mode & 0o777).toBe(0o600);
    expect(cli('keygen', prefix).status).not.toBe(0); // never overwrites a key
    const file = join(dir.path, 'facerec.int8.json');
    writeFileSync(file, JSON.stringify(manifest));
    expect(cli('sign', file, `${prefix}.key`).status).toBe(0);
    const signed = JSON.parse(readFileSync(file, 'utf8'));
    expect(signed.signature.keyId).toBe(keyIdOf(readFileSync(`${prefix}.pub`, 'utf8')));
    const verify = cli('verify', file, `${prefix}.pub`);
    expect(verify.stdout).toContain('ok: signed by');
    expect(cli('verify', file, join(dir.path, 'none.pub')).status).not.toBe(0);
  });
});
