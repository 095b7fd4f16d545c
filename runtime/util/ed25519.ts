// Ed25519 public keys as configuration carries them (PEM): parsed and refused with a reason, so a
// malformed or RSA key can never be trusted silently, nor silently locks everyone out.
import { createPublicKey, type KeyObject } from 'node:crypto';

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
