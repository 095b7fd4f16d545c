// Ed25519 signatures over canonical JSON: the one scheme behind signed remote commands
// (control/signing.ts) and signed model manifests (model-update/signature.ts), so both sign the same
// kind of bytes and name a key the same way.
//
// Canonical JSON is RFC 8785 (JCS) for the values those documents carry: no whitespace, object keys
// sorted by UTF-16 code units, `undefined` members left out (as JSON.stringify does), strings and numbers
// as JSON.stringify writes them.
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { writeFileSync } from 'node:fs';

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A key's id: hex SHA-256 of its DER SubjectPublicKeyInfo, from the public or the private key
 * (`openssl pkey -pubin -outform DER <key.pem | sha256sum`).
 */
export function keyIdOf(key: KeyObject | string): string {
  // createPublicKey() also derives the public key from a private one, but refuses a public KeyObject.
  const publicKey = typeof key !== 'string' && key.type === 'public' ? key : createPublicKey(key);
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** The base64 Ed25519 signature of canonicalJson(value). */
export function signJson(value: unknown, privateKey: KeyObject | string): string {
  return sign(null, Buffer.from(canonicalJson(value), 'utf8'), privateKey).toString('base64');
}

/** Whether `signature` (base64) is `publicKey`'s Ed25519 signature of canonicalJson(value). */
export function verifyJson(value: unknown, publicKey: KeyObject, signature: string): boolean {
  const bytes = Buffer.from(signature, 'base64');
  // An Ed25519 signature is 64 bytes; Node answers false for other lengths too, this just says so first.
  return bytes.length === 64 && verify(null, Buffer.from(canonicalJson(value), 'utf8'), publicKey, bytes);
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

/** A new key pair as `<prefix>.key` (private) and `<prefix>.pub`; answers its key id. */
export function writeSigningKeyPair(prefix: string): string {
  const pair = generateSigningKeyPair();
  // 'wx': never overwrite an existing key; 0600: the private key is a secret.
  writeFileSync(`${prefix}.key`, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
  writeFileSync(`${prefix}.pub`, pair.publicKeyPem, { flag: 'wx' });
  return pair.keyId;
}

// Ed25519 public keys as configuration carries them (PEM): parsed and refused with a reason, so a
// malformed or RSA key can never be trusted silently, nor silently locks everyone out.

/** The Ed25519 public key in `pem`; throws a sentence naming what is wrong with it otherwise. */
export function parseEd25519PublicKey(pem: string): KeyObject {
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem))
    throw new Error('is a private key: install only the public half (facegate keys generate writes both)');
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (e) {
    throw new Error(`is not a PEM public key (${(e as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`is an ${key.asymmetricKeyType} key, not ed25519`);
  return key;
}

/** Why `pem` cannot be an Ed25519 public key, or null. */
export function ed25519KeyProblem(pem: string): string | null {
  try {
    parseEd25519PublicKey(pem);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
