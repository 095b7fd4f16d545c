// Signed commands, for brokers that others can publish to. The signature covers the request body and the
// topic it is published on, so a signed command cannot be replayed as another command or to another
// device; the timestamp bounds how long it is valid and the nonce makes it single-use within that time.
//
// Signed message: the UTF-8 bytes of the canonical JSON of the request body with `signature` removed and
// `timestamp`, `nonce` (both as in `signature`) and `topic` (the full request topic) added at the top
// level (canonical JSON and key ids: util/signing.ts).

import { createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { keyIdOf, signJson, verifyJson } from '../util/signing.ts';
import type { CommandSignature, RequestEnvelope } from './api.ts';

/** How far in the future a signature's timestamp may be, for clocks that disagree a little. */
export const MAX_CLOCK_SKEW_MS = 30_000;
/** Nonces remembered at once; a signed request beyond this within the age window is refused. */
export const MAX_REMEMBERED_NONCES = 10_000;
/** The largest control.maxCommandAgeSeconds, in ms: a nonce older than this (plus skew) can never pass again. */
const LONGEST_AGE_MS = 86_400_000 + MAX_CLOCK_SKEW_MS;
const NONCE_LINE = /^(\d+) ([A-Za-z0-9_-]{16,128})$/;

type Body = RequestEnvelope & object;

export interface SignatureSettings {
  /** Ed25519 public keys, PEM. */
  commandPublicKeys: readonly string[];
  maxCommandAgeSeconds: number;
}

/** What a signature covers (see the top of this file): signed as its canonical JSON. */
export function signedContent(body: Body, topic: string): object {
  const { signature, ...params } = body;
  if (!signature) throw new Error('the request has no signature');
  return { ...params, timestamp: signature.timestamp, nonce: signature.nonce, topic };
}

export interface SignOptions {
  /** Default now. */
  timestamp?: number;
  /** Default 16 random bytes, base64url. */
  nonce?: string;
}

/** `body` with a `signature` for publishing on `topic`, made with an Ed25519 private key. */
export function signCommand<T extends object>(
  body: T,
  privateKey: KeyObject | string,
  keyId: string,
  topic: string,
  opts: SignOptions = {},
): T & { signature: CommandSignature } {
  const stamp = {
    keyId,
    timestamp: opts.timestamp ?? Date.now(),
    nonce: opts.nonce ?? randomBytes(16).toString('base64url'),
  };
  const content = signedContent({ ...body, signature: { ...stamp, value: '' } }, topic);
  return { ...body, signature: { ...stamp, value: signJson(content, privateKey) } };
}

/**
 * Checks signatures against the configured keys and remembers nonces for as long as they are valid. With
 * a `nonceFile` the nonces survive a restart: each accepted one is appended and fsynced before its
 * command runs (`<timestamp> <nonce>` per line), and the file is rewritten without the expired ones when
 * it is loaded and whenever it has grown by maxNonces lines.
 */
export class CommandVerifier {
  /** nonce → signature timestamp, oldest insertion first. */
  private readonly nonces = new Map<string, number>();
  private appended = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxNonces = MAX_REMEMBERED_NONCES,
    private readonly nonceFile?: string,
  ) {
    if (!nonceFile || !existsSync(nonceFile)) return;
    const oldest = this.now() - LONGEST_AGE_MS;
    for (const line of readFileSync(nonceFile, 'utf8').split('\n')) {
      // A line cut short by a power cut does not parse and is dropped; its command never ran.
      const entry = NONCE_LINE.exec(line);
      if (entry && Number(entry[1]) > oldest) this.nonces.set(entry[2], Number(entry[1]));
    }
    this.compact();
  }

  /** Why the signed `body` received on `topic` is refused, or null once it is accepted (its nonce spent). */
  check(body: Body, topic: string, settings: SignatureSettings): string | null {
    const signature = body.signature;
    if (!signature) return 'the request is not signed';
    const now = this.now();
    const maxAgeMs = settings.maxCommandAgeSeconds * 1000;
    const age = now - signature.timestamp;
    if (age > maxAgeMs) {
      return `signature expired: signed ${Math.round(age / 1000)} s ago, control.maxCommandAgeSeconds is ${settings.maxCommandAgeSeconds}`;
    }
    if (-age > MAX_CLOCK_SKEW_MS) {
      return `signature timestamp is ${Math.round(-age / 1000)} s in the future (at most ${MAX_CLOCK_SKEW_MS / 1000} s of clock skew is allowed)`;
    }
    const key = trustedKey(settings.commandPublicKeys, signature.keyId);
    if (!key)
      return `unknown signing key ${signature.keyId}: not an installed operator key (control.commandPublicKeys, control.operatorKeysFile)`;
    if (!verifyJson(signedContent(body, topic), key, signature.value)) {
      return 'bad signature';
    }
    if (this.nonces.has(signature.nonce)) return 'replayed request: this nonce was already used';
    if (!this.remember(signature.nonce, signature.timestamp, now, maxAgeMs)) {
      return `too many signed requests within control.maxCommandAgeSeconds (${this.maxNonces}); try again later`;
    }
    return null;
  }

  // A nonce is forgotten only once its timestamp is too old to pass the age check: evicting it earlier
  // would let the request be replayed, so when every slot is still valid the request is refused instead.
  private remember(nonce: string, timestamp: number, now: number, maxAgeMs: number): boolean {
    if (this.nonces.size >= this.maxNonces) {
      for (const [seen, at] of this.nonces) if (now - at > maxAgeMs) this.nonces.delete(seen);
      if (this.nonces.size >= this.maxNonces) return false;
    }
    this.nonces.set(nonce, timestamp);
    if (this.nonceFile) {
      if (++this.appended >= this.maxNonces) this.compact();
      else appendDurably(this.nonceFile, `${timestamp} ${nonce}\n`);
    }
    return true;
  }

  private compact(): void {
    if (!this.nonceFile) return;
    const lines = [...this.nonces].map(([nonce, at]) => `${at} ${nonce}\n`);
    writeFileAtomic(this.nonceFile, lines.join(''));
    this.appended = 0;
  }
}

function appendDurably(path: string, line: string): void {
  const fd = openSync(path, 'a', 0o600);
  try {
    appendFileSync(fd, line);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function trustedKey(pems: readonly string[], keyId: string): KeyObject | undefined {
  for (const pem of pems) {
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch {
      continue;
    }
    if (key.asymmetricKeyType === 'ed25519' && keyIdOf(key) === keyId) return key;
  }
  return undefined;
}
