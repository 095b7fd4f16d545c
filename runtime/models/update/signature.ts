// Manifest signatures: ed25519 over the canonical JSON of the manifest without its `signature` field.
// The manifest carries the model's sha256 and size, so one signature covers the model bytes as well.
//   tsx runtime/models/update/signature.ts keygen <out-prefix>          -> <prefix>.key (private), <prefix>.pub
//   tsx runtime/models/update/signature.ts sign <manifest.json> <private.key> [keyId]
//   tsx runtime/models/update/signature.ts verify <manifest.json> <public.pub>...
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { writeFileAtomic } from '../../util/atomic-file.ts';
import type { ModelManifest } from '../manifest.ts';

/** JSON with object keys sorted recursively (by UTF-16 code unit) and no whitespace. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
  return out;
}

/** The bytes a signature covers. */
function signedPayload(manifest: ModelManifest): Buffer {
  const { signature: _, ...unsigned } = manifest;
  return Buffer.from(canonicalJson(unsigned));
}

/** A key's id when none is configured: the first 16 hex digits of the sha256 of its DER public key. */
export function keyIdOf(key: string | KeyObject): string {
  const pub = typeof key !== 'string' && key.type === 'public' ? key : createPublicKey(key);
  return createHash('sha256')
    .update(pub.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

export interface SigningKeyPair {
  keyId: string;
  publicKeyPem: string;
  privateKeyPem: string;
}

export function generateSigningKeyPair(): SigningKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    keyId: keyIdOf(publicKey),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** A signed copy of the manifest (any old signature replaced). `keyId` defaults to the key's fingerprint. */
export function signManifest(manifest: ModelManifest, privateKeyPem: string, keyId?: string): ModelManifest {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`signing key is ${key.asymmetricKeyType}, not ed25519`);
  const value = sign(null, signedPayload(manifest), key).toString('base64');
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
 * Plain PEM strings (as in config `models.update.publicKeys`) are known by their fingerprint (keyIdOf).
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
  const value = Buffer.from(sig.value, 'base64');
  // Node accepts any length here and just answers false; checking first gives a clearer reason.
  const valid =
    sig.algorithm === 'ed25519' && value.length === 64 && verify(null, signedPayload(manifest), key, value);
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
    const pair = generateSigningKeyPair();
    // 'wx': never overwrite an existing key; 0600: the private key is a secret.
    writeFileSync(`${rest[0]}.key`, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
    writeFileSync(`${rest[0]}.pub`, pair.publicKeyPem, { flag: 'wx' });
    console.log(
      `key id ${pair.keyId}: public ${rest[0]}.pub, private ${rest[0]}.key (keep it off the devices)`,
    );
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
