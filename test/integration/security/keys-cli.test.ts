// `facegate keys` as an operator runs it: make a key pair, install the public half, refuse what is not
// an Ed25519 public key with the reason, list, sign a request the device accepts, retire a key.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseKeyFile } from '../../../runtime/control/operator-keys.ts';
import { CommandVerifier } from '../../../runtime/control/signing.ts';
import { facegate } from './device.ts';

const dir = mkdtempSync(join(tmpdir(), 'facegate-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const keysFile = join(dir, 'operator-keys.pem');

describe('facegate keys', () => {
  it('generates, installs, refuses non-keys with the reason, lists, signs and removes', async () => {
    const generated = await facegate('keys', 'generate', '--out', join(dir, 'op'));
    const keyId = /key id ([0-9a-f]{64})/.exec(generated)?.[1] as string;
    expect(keyId).toBeDefined();
    expect(statSync(join(dir, 'op.key')).mode & 0o777).toBe(0o600);

    expect(await facegate('keys', 'add', join(dir, 'op.pub'), '--keys-file', keysFile)).toBe(
      `installed: key id ${keyId} in ${keysFile}\n`,
    );
    expect(await facegate('keys', 'add', join(dir, 'op.pub'), '--keys-file', keysFile)).toMatch(
      /^already installed/,
    );

    const rsa = join(dir, 'rsa.pub');
    writeFileSync(
      rsa,
      generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }),
    );
    for (const [file, reason] of [
      [rsa, `${rsa} is an rsa key, not ed25519`],
      [join(dir, 'op.key'), `${join(dir, 'op.key')} is a private key: install only the public half`],
    ]) {
      await expect(facegate('keys', 'add', file, '--keys-file', keysFile)).rejects.toMatchObject({
        code: 1,
        stderr: expect.stringContaining(`facegate: ${reason}`),
      });
    }
    expect(parseKeyFile(readFileSync(keysFile, 'utf8')).keys).toHaveLength(1);
    expect(await facegate('keys', 'list', '--keys-file', keysFile)).toBe(
      `${keysFile}: 1 operator key(s)\n  ${keyId}\n`,
    );

    const topic = 'facegate/front-door/request/face/list';
    const signed = JSON.parse(
      await facegate('keys', 'sign', '--key', join(dir, 'op.key'), '--topic', topic, '{"transaction":1}'),
    );
    const settings = {
      commandPublicKeys: parseKeyFile(readFileSync(keysFile, 'utf8')).keys,
      maxCommandAgeSeconds: 60,
    };
    expect(new CommandVerifier().check(signed, topic, settings)).toBeNull();

    expect(await facegate('keys', 'remove', keyId, '--keys-file', keysFile)).toBe(
      `removed key id ${keyId} from ${keysFile}\n`,
    );
    expect(parseKeyFile(readFileSync(keysFile, 'utf8')).keys).toEqual([]);
  });
});
