// Manifest signatures: ed25519 over the canonical JSON of the manifest without its `signature` field.
// The manifest carries the model's sha256 and size, so one signature covers the model bytes as well.
//   tsx runtime/model-update/signature.ts keygen <out-prefix>          -> <prefix>.key (private), <prefix>.pub
//   tsx runtime/model-update/signature.ts sign <manifest.json> <private.key> [keyId]
//   tsx runtime/model-update/signature.ts verify <manifest.json> <public.pub>...
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ModelManifest } from '../models/manifest.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { keyIdOf, signJson, verifyJson, writeSigningKeyPair } from '../util/signing.ts';

/** What a signature covers: the manifest without its signature, signed as its canonical JSON. */
function signedContent(manifest: ModelManifest): object {
  const { signature: _, ...unsigned } = manifest;
  return unsigned;
}

/** A signed copy of the manifest (any old signature replaced). `keyId` defaults to the key's id (keyIdOf). */
export function signManifest(manifest: ModelManifest, privateKeyPem: string, keyId?: string): ModelManifest {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`signing key is ${key.asymmetricKeyType}, not ed25519`);
  const value = signJson(signedContent(manifest), key);
  return { ...manifest, signature: { algorithm: 'ed25519', keyId: keyId ?? keyIdOf(key), value } };
}

export interface TrustedKey {
  keyId: string;
  pem: string;
}

export type VerifyResult =
  | { ok: true; signed: boolean; keyId?: string }
  | { ok: false; reason: 'unsigned' | 'unknown-key' | 'bad-signature'; message: string };

/**
 * Plain PEM strings (as in config `models.update.publicKeys`) are known by their key id (keyIdOf).
 * `allowUnsigned` only admits manifests with no signature at all: a signature that is present must verify,
 * since a wrong one means tampering or a key the device was never told to trust.
 */
export function verifyManifest(
  manifest: ModelManifest,
  publicKeys: TrustedKey[] | string[],
  allowUnsigned: boolean,
): VerifyResult {
  const sig = manifest.signature;
  if (!sig) {
    return allowUnsigned
      ? { ok: true, signed: false }
      : {
          ok: false,
          reason: 'unsigned',
          message: `manifest ${manifest.name} ${manifest.version} is not signed and unsigned models are not allowed`,
        };
  }
  const keys = trustedKeys(publicKeys);
  const key = keys.get(sig.keyId);
  if (!key) {
    return {
      ok: false,
      reason: 'unknown-key',
      message: `manifest is signed with key "${sig.keyId}", which is not among the ${keys.size} trusted keys`,
    };
  }
  const valid = sig.algorithm === 'ed25519' && verifyJson(signedContent(manifest), key, sig.value);
  return valid
    ? { ok: true, signed: true, keyId: sig.keyId }
    : {
        ok: false,
        reason: 'bad-signature',
        message: `signature by key "${sig.keyId}" does not match the manifest (tampered or re-signed)`,
      };
}

function trustedKeys(publicKeys: TrustedKey[] | string[]): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  publicKeys.forEach((entry, i) => {
    const pem = typeof entry === 'string' ? entry : entry.pem;
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch (e) {
      throw new Error(`trusted public key ${i + 1} is not a PEM public key (${(e as Error).message})`);
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error(`trusted public key ${i + 1} is ${key.asymmetricKeyType}, not ed25519`);
    keys.set(typeof entry === 'string' ? keyIdOf(key) : entry.keyId, key);
  });
  return keys;
}

function cli(args: string[]): number {
  const [command, ...rest] = args;
  if (command === 'keygen' && rest.length === 1) {
    const keyId = writeSigningKeyPair(rest[0]);
    console.log(`key id ${keyId}: public ${rest[0]}.pub, private ${rest[0]}.key (keep it off the devices)`);
    return 0;
  }
  if (command === 'sign' && (rest.length === 2 || rest.length === 3)) {
    const manifest = JSON.parse(readFileSync(rest[0], 'utf8')) as ModelManifest;
    const signed = signManifest(manifest, readFileSync(rest[1], 'utf8'), rest[2]);
    writeFileAtomic(rest[0], `${JSON.stringify(signed, null, 2)}\n`);
    console.log(`signed ${rest[0]} with key ${signed.signature?.keyId}`);
    return 0;
  }
  if (command === 'verify' && rest.length >= 2) {
    const manifest = JSON.parse(readFileSync(rest[0], 'utf8')) as ModelManifest;
    const result = verifyManifest(
      manifest,
      rest.slice(1).map((f) => readFileSync(f, 'utf8')),
      false,
    );
    console.log(
      result.ok ? `ok: signed by ${result.keyId}` : `refused (${result.reason}): ${result.message}`,
    );
    return result.ok ? 0 : 1;
  }
  console.error(
    'usage: signature.ts keygen <out-prefix> | sign <manifest.json> <private.key> [keyId] | verify <manifest.json> <public.pub>...',
  );
  return 2;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = cli(process.argv.slice(2));
