import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addOperatorKey, OperatorKeyFile } from '../../../runtime/control/operator-keys.ts';
import { recordingLogger } from '../../../runtime/util/log.ts';
import { keyIdOf } from '../../../runtime/util/signing.ts';
import { makeSigningKey } from '../../helpers/control-fakes.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-opkeys-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('OperatorKeyFile', () => {
  it('reads the file again when it changes, and skips a key that is not Ed25519 with the reason', () => {
    const file = join(dir, 'keys.pem');
    const logs: string[] = [];
    const keys = new OperatorKeyFile(
      file,
      recordingLogger((_level, m) => logs.push(m)),
    );
    expect(keys.keys()).toEqual([]);
    expect(logs).toEqual([
      `no operator key file at ${file}: only keys in control.commandPublicKeys are trusted`,
    ]);

    const first = makeSigningKey();
    addOperatorKey(file, first.publicPem);
    expect(keys.keys().map((k) => keyIdOf(k))).toEqual([first.keyId]);

    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
      type: 'spki',
      format: 'pem',
    });
    const second = makeSigningKey();
    writeFileSync(file, `# two keys and an RSA one\n${first.publicPem}${rsa}${second.publicPem}`);
    expect(keys.keys().map((k) => keyIdOf(k))).toEqual([first.keyId, second.keyId]);
    expect(logs).toContain(`${file}: key 2 is an rsa key, not ed25519; it is ignored`);
  });
});
