// Release bundles for the deploy tests, built by firmware-scripts/bundle.sh once per set of inputs and
// kept in the OS temp directory: the tests share one build per architecture, and a second run with the
// same sources reuses it (bundle.sh itself keeps the compiled addons in its own cache).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './paths.ts';

export type Arch = 'x64' | 'arm64';

export interface Bundle {
  archive: string;
  /** The staged tree the archive was packed from (bundle.sh --pack takes a copy of it). */
  stage: string;
  version: string;
  /** ed25519 key pair the bundle is signed with (PEM files). */
  signKey: string;
  publicKey: string;
}

const CACHE = join(tmpdir(), 'facegate-test-bundles');
const INPUTS = [
  'bin',
  'runtime',
  'configs',
  'firmware-scripts',
  'kernels/src',
  'kernels/include',
  'kernels/binding',
];

/** The test's release signing key, made once and kept beside the bundles it signed. */
export function releaseKeys(): { signKey: string; publicKey: string } {
  const signKey = join(CACHE, 'release.key');
  const publicKey = join(CACHE, 'release.pem');
  mkdirSync(CACHE, { recursive: true });
  if (!existsSync(publicKey)) {
    run('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', signKey]);
    run('openssl', ['pkey', '-in', signKey, '-pubout', '-out', publicKey]);
  }
  return { signKey, publicKey };
}

export function bundleFor(arch: Arch): Bundle {
  const keys = releaseKeys();
  const dir = join(CACHE, `${arch}-${inputsHash()}`);
  const version = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version as string;
  const archive = join(dir, `facegate-${version}-linux-${arch}.tar.xz`);
  const stage = join(dir, 'work', `facegate-${version}`);
  if (!existsSync(archive)) {
    rmSync(dir, { recursive: true, force: true });
    const building = `${dir}.building`;
    rmSync(building, { recursive: true, force: true });
    const args = [
      '--arch',
      arch,
      '--out',
      building,
      '--work',
      join(building, 'work'),
      '--sign-key',
      keys.signKey,
    ];
    run('bash', [join(REPO_ROOT, 'firmware-scripts', 'bundle.sh'), ...args], 'inherit');
    renameSync(building, dir);
  }
  return { archive, stage, version, ...keys };
}

/** Re-checksums, signs and packs a staged tree with bundle.sh --pack, into `outDir`. */
export function packBundle(stage: string, outDir: string, signKey = releaseKeys().signKey): string {
  const out = run('bash', [
    join(REPO_ROOT, 'firmware-scripts', 'bundle.sh'),
    '--pack',
    stage,
    '--out',
    outDir,
    '--sign-key',
    signKey,
  ]);
  return out.trim().split('\n').at(-1) as string;
}

export function run(cmd: string, args: string[], stderr: 'pipe' | 'inherit' = 'pipe'): string {
  const result = spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', stderr],
    maxBuffer: 1 << 26,
  });
  if (result.status !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stdout}${result.stderr ?? ''}`,
    );
  return result.stdout;
}

/** Everything bundle.sh reads from the checkout, and the models it packs. */
function inputsHash(): string {
  const hash = createHash('sha256');
  const files = [
    'package.json',
    'package-lock.json',
    'kernels/binding.gyp',
    ...INPUTS.flatMap((d) => listFiles(join(REPO_ROOT, d))),
    ...listFiles(join(REPO_ROOT, 'models')).filter((f) => f.endsWith('.json')),
  ];
  for (const file of files.sort()) hash.update(file).update(readFileSync(join(REPO_ROOT, file)));
  return hash.digest('hex').slice(0, 16);
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => relative(REPO_ROOT, f));
}
