// Operator keys: the Ed25519 public keys whose signatures make a remote command an operator's. They come
// from control.commandPublicKeys and from the key file control.operatorKeysFile, which first-boot
// provisioning writes (`facegate keys add`, firmware-scripts/provision.sh --operator-key) and which is
// read again whenever it changes, so a key is added or retired without a restart (docs/security.md).
//
// The key file holds PEM public keys one after another; lines outside a PEM block are comments.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-file.ts';
import type { Logger } from '../util/log.ts';
import { ed25519KeyProblem, keyIdOf, parseEd25519PublicKey } from '../util/signing.ts';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

export interface ParsedKeyFile {
  /** The usable keys, PEM. */
  keys: string[];
  /** One sentence per refused block: `key 2 is an rsa key; ...`. */
  problems: string[];
}

export function parseKeyFile(text: string): ParsedKeyFile {
  const keys: string[] = [];
  const problems: string[] = [];
  for (const [i, block] of [...text.matchAll(PEM_BLOCK)].entries()) {
    const problem = ed25519KeyProblem(block[0]);
    if (problem) problems.push(`key ${i + 1} ${problem}`);
    else keys.push(`${block[0]}\n`);
  }
  return { keys, problems };
}

/** The key file as the router reads it: parsed again only when its size or modification time changed. */
export class OperatorKeyFile {
  private seen = '';
  private keys_: string[] = [];

  constructor(
    readonly path: string | undefined,
    private readonly log: Logger,
  ) {}

  keys(): string[] {
    const { path } = this;
    if (!path) return [];
    let stamp: string;
    try {
      const st = statSync(path);
      stamp = `${st.size}:${st.mtimeMs}`;
    } catch {
      stamp = 'missing';
    }
    if (stamp === this.seen) return this.keys_;
    this.seen = stamp;
    if (stamp === 'missing') {
      this.keys_ = [];
      this.log.info(`no operator key file at ${path}: only keys in control.commandPublicKeys are trusted`);
      return this.keys_;
    }
    const parsed = parseKeyFile(readFileSync(path, 'utf8'));
    for (const problem of parsed.problems) this.log.info(`${path}: ${problem}; it is ignored`);
    this.keys_ = parsed.keys;
    this.log.info(`${path}: ${parsed.keys.length} operator key(s): ${parsed.keys.map(keyIdOf).join(', ')}`);
    return this.keys_;
  }
}

/**
 * Adds the public key `pem` to the key file (created if missing); refuses anything but an Ed25519 public
 * key. Returns its key id and whether it was new.
 */
export function addOperatorKey(path: string, pem: string): { keyId: string; added: boolean } {
  const key = parseEd25519PublicKey(pem);
  const keyId = keyIdOf(key);
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const present = parseKeyFile(text).keys.some((k) => keyIdOf(k) === keyId);
  if (present) return { keyId, added: false };
  const exported = key.export({ type: 'spki', format: 'pem' }).toString();
  const header = text === '' ? '# facegate operator keys (docs/security.md); one PEM public key each\n' : '';
  const separator = text === '' || text.endsWith('\n') ? '' : '\n';
  writeFileAtomic(path, `${header}${text}${separator}# key id ${keyId}\n${exported}`);
  return { keyId, added: true };
}

/** Removes the key with `keyId` from the key file; false when it was not there. */
export function removeOperatorKey(path: string, keyId: string): boolean {
  if (!existsSync(path)) return false;
  const text = readFileSync(path, 'utf8');
  let removed = false;
  const kept = text.replace(PEM_BLOCK, (block) => {
    if (ed25519KeyProblem(block) !== null || keyIdOf(block) !== keyId) return block;
    removed = true;
    return '';
  });
  if (removed) writeFileAtomic(path, kept.replace(`# key id ${keyId}\n`, ''));
  return removed;
}
