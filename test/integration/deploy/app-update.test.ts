// app/update's device side: a bundle packed by bundle.sh --pack, served over loopback HTTP, is staged for
// release.sh only when its size, sha256 and manifest signature check out and it is another version.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppUpdater } from '../../../runtime/service/app-update.ts';
import { packBundle, releaseKeys, run } from '../../helpers/bundle.ts';

describe('app/update staging', () => {
  let dir: string;
  let server: Server;
  let base: string;
  const files = new Map<string, Buffer>();

  /** A minimal release tree (no runtime in it: only what the checks read), packed and signed. */
  function bundle(version: string, signKey?: string): { name: string; sha256: string; bytes: number } {
    const stage = join(dir, `stage-${version}`, `facegate-${version}`);
    mkdirSync(stage, { recursive: true });
    writeFileSync(join(stage, 'package.json'), JSON.stringify({ name: 'facegate', version }));
    writeFileSync(join(stage, '.arch'), process.arch);
    const data = readFileSync(packBundle(stage, join(dir, 'out'), signKey));
    const name = `${version}-${signKey ? 'other' : 'release'}.tar.xz`;
    files.set(`/${name}`, data);
    return { name, sha256: createHash('sha256').update(data).digest('hex'), bytes: data.length };
  }

  function updater(dataDir: string) {
    return new AppUpdater({
      dataDir,
      publicKeys: () => [readFileSync(releaseKeys().publicKey, 'utf8')],
      maxBytes: () => 10 * 1024 * 1024,
      version: '0.1.0',
      timeoutMs: 10_000,
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'facegate-app-update-'));
    server = createServer((req, res) => {
      const data = files.get(req.url ?? '');
      res.writeHead(data ? 200 : 404).end(data);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stages a signed bundle of another version for release.sh', async () => {
    const b = bundle('0.2.0');
    const data = join(dir, 'data-ok');
    const result = await updater(data).update({ url: `${base}/${b.name}`, sha256: b.sha256, bytes: b.bytes });
    expect(result).toEqual({
      version: '0.2.0',
      arch: process.arch,
      staged: join(data, 'release/incoming/bundle.tar.xz'),
    });
    expect(createHash('sha256').update(readFileSync(result.staged)).digest('hex')).toBe(b.sha256);
  });

  it('refuses a bundle signed by a key the device does not trust, and stages nothing', async () => {
    const other = join(dir, 'other.key');
    run('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', other]);
    const b = bundle('0.3.0', other);
    const data = join(dir, 'data-untrusted');
    await expect(
      updater(data).update({ url: `${base}/${b.name}`, sha256: b.sha256, bytes: b.bytes }),
    ).rejects.toThrow('the bundle signature matches none of models.update.publicKeys');
    expect(existsSync(join(data, 'release/incoming/bundle.tar.xz'))).toBe(false);
    expect(existsSync(join(data, 'release/bundle.part'))).toBe(false);
  });

  it('refuses bytes that do not match the sha256 in the request', async () => {
    const b = bundle('0.4.0');
    const data = join(dir, 'data-sha');
    await expect(
      updater(data).update({ url: `${base}/${b.name}`, sha256: '0'.repeat(64), bytes: b.bytes }),
    ).rejects.toThrow(/sha256/);
    expect(existsSync(join(data, 'release/incoming'))).toBe(false);
  });

  it('refuses the version that is already running', async () => {
    const b = bundle('0.1.0');
    await expect(
      updater(join(dir, 'data-same')).update({ url: `${base}/${b.name}`, sha256: b.sha256, bytes: b.bytes }),
    ).rejects.toThrow('release 0.1.0 is already running');
  });
});
