// The `app/update` command: a new release bundle (firmware-scripts/bundle.sh) fetched from a URL, checked
// like a model update (size limit, the sha256 the request names, and the bundle manifest's ed25519
// signature by a key in models.update.publicKeys), then handed to the root-owned side: it is moved to
// <dataDir>/release/incoming/bundle.tar.xz, where facegate-update.path starts `release.sh apply`, which
// checks it again, installs it beside the running release, switches `current`, restarts facegate and
// switches back when the new release does not report ready in time (docs/deploy.md).
import { execFile } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { downloadModel, verifyModelBytes } from '../model-update/download.ts';

export interface AppUpdateRequest {
  url: string;
  sha256: string;
  bytes: number;
}

export interface AppUpdateResult {
  /** The version the bundle carries, now waiting for release.sh. */
  version: string;
  arch: string;
  /** Where the bundle waits to be installed. */
  staged: string;
}

export interface AppUpdaterOptions {
  dataDir: string;
  /** Ed25519 public keys (PEM) trusted to sign bundles: models.update.publicKeys. */
  publicKeys: () => readonly string[];
  maxBytes: () => number;
  /** The running release's version. */
  version: string;
  timeoutMs?: number;
}

interface BundleManifest {
  name: string;
  version: string;
  arch: string;
}

const DOWNLOAD_TIMEOUT_MS = 15 * 60_000;

export class AppUpdater {
  private busy = false;

  constructor(private readonly opts: AppUpdaterOptions) {}

  /** The directory facegate-update.path watches. */
  get incomingDir(): string {
    return join(this.opts.dataDir, 'release', 'incoming');
  }

  async update(request: AppUpdateRequest): Promise<AppUpdateResult> {
    if (this.busy) throw new Error('an app update is already being downloaded');
    this.busy = true;
    const part = join(this.opts.dataDir, 'release', 'bundle.part');
    try {
      const maxBytes = this.opts.maxBytes();
      if (request.bytes > maxBytes)
        throw new Error(
          `the bundle has ${request.bytes} bytes, models.update.maxDownloadBytes allows ${maxBytes}`,
        );
      const bytes = await downloadModel(request.url, {
        maxBytes: request.bytes,
        timeoutMs: this.opts.timeoutMs ?? DOWNLOAD_TIMEOUT_MS,
      });
      verifyModelBytes(bytes, { sha256: request.sha256, bytes: request.bytes });
      mkdirSync(join(this.opts.dataDir, 'release'), { recursive: true });
      writeFileSync(part, bytes);
      const manifest = await this.checkBundle(part);
      mkdirSync(this.incomingDir, { recursive: true });
      const staged = join(this.incomingDir, 'bundle.tar.xz');
      renameSync(part, staged);
      return { version: manifest.version, arch: manifest.arch, staged };
    } finally {
      rmSync(part, { force: true });
      this.busy = false;
    }
  }

  /** The signed manifest inside the bundle: signature, architecture, and a version that is not this one. */
  private async checkBundle(file: string): Promise<BundleManifest> {
    const json = await member(file, 'bundle-manifest.json');
    if (!json) throw new Error('not a facegate bundle: no bundle-manifest.json in it');
    const signature = await member(file, 'bundle-manifest.sig');
    if (!signature) throw new Error('the bundle is not signed (bundle-manifest.sig is missing)');
    const keys = this.opts.publicKeys();
    if (keys.length === 0) throw new Error('no trusted keys: models.update.publicKeys is empty');
    const trusted = keys.some((pem, i) => {
      let key: ReturnType<typeof createPublicKey>;
      try {
        key = createPublicKey(pem);
      } catch (e) {
        throw new Error(`models.update.publicKeys[${i}] is not a PEM public key (${(e as Error).message})`);
      }
      return key.asymmetricKeyType === 'ed25519' && verify(null, json, key, signature);
    });
    if (!trusted) throw new Error('the bundle signature matches none of models.update.publicKeys');
    let manifest: BundleManifest;
    try {
      manifest = JSON.parse(json.toString('utf8')) as BundleManifest;
    } catch (e) {
      throw new Error(`bundle-manifest.json is not JSON (${(e as Error).message})`);
    }
    if (manifest.name !== 'facegate') throw new Error(`the bundle is for "${manifest.name}", not facegate`);
    if (manifest.arch !== process.arch)
      throw new Error(`the bundle is for ${manifest.arch}, this device is ${process.arch}`);
    if (manifest.version === this.opts.version)
      throw new Error(`release ${manifest.version} is already running`);
    return manifest;
  }
}

/** One file of the bundle's top directory, or null when it has none. */
async function member(archive: string, name: string): Promise<Buffer | null> {
  try {
    const { stdout } = await promisify(execFile)(
      'tar',
      ['-xJOf', archive, '--wildcards', '--no-wildcards-match-slash', `*/${name}`],
      { encoding: 'buffer', maxBuffer: 1 << 20 },
    );
    return stdout.length > 0 ? stdout : null;
  } catch {
    return null;
  }
}
