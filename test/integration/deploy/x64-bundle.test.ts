// The x64 release bundle, installed by provision.sh into a temporary root and run there inside an empty
// network namespace (unshare -n: only loopback): it reports READY=1 over a real NOTIFY_SOCKET once frames
// flow, pings the watchdog while they do, and stops pinging when its camera freezes. Then a second,
// broken release is installed as an update and rolled back by release.sh's probation check.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bundle, bundleFor, packBundle, run } from '../../helpers/bundle.ts';
import { NotifyListener } from '../../helpers/notify-socket.ts';
import { DOOR_CLIP } from '../../helpers/paths.ts';

const canUnshare = spawnSync('unshare', ['-n', 'true']).status === 0;
if (!canUnshare) console.warn('deploy test skipped: unshare -n is not permitted here (needs root)');

const WATCHDOG_MS = 2000;

/** Provisions `bundle` below `root` the way a person would, from the bundle's own provision.sh. */
function provision(bundle: Bundle, archive: string, root: string): string {
  return run('unshare', [
    '-n',
    'bash',
    join(bundle.stage, 'firmware-scripts', 'provision.sh'),
    '--bundle',
    archive,
    '--board',
    'x86',
    '--root',
    root,
    '--release-key',
    bundle.publicKey,
  ]);
}

/** The door camera replaced by the demo clip (the x86 profile's /dev/video0 is not here). */
function useDemoCamera(root: string): void {
  const clip = join(root, 'var/lib/facegate/door.mp4');
  copyFileSync(DOOR_CLIP, clip);
  appendFileSync(
    join(root, 'etc/facegate/config.yaml'),
    [
      'cameras:',
      '  - id: door',
      `    source: { kind: video, path: ${clip}, loop: true, realtime: true }`,
      '    width: 640',
      '    height: 360',
      '    fps: 15',
      '    restart: { initialDelayMs: 1000, maxDelayMs: 30000, stallTimeoutMs: 10000, healthyAfterMs: 30000 }',
      '',
    ].join('\n'),
  );
}

/** Starts the installed `current` release as the unit would, in an empty network namespace. */
function startService(
  root: string,
  notify: NotifyListener,
): { child: ChildProcess; exited: Promise<number | null> } {
  const current = join(root, 'opt/facegate/current');
  const child = spawn(
    'unshare',
    [
      '-n',
      'sh',
      '-c',
      'ip link set lo up && exec "$@"',
      'sh',
      join(current, 'node/bin/node'),
      join(current, 'bin/facegate.js'),
      'run',
      '--config',
      join(root, 'etc/facegate/config.yaml'),
    ],
    {
      cwd: current,
      env: {
        PATH: process.env.PATH,
        HOME: root,
        FACEGATE_BOARD: 'x86',
        NOTIFY_SOCKET: notify.path,
        WATCHDOG_USEC: String(WATCHDOG_MS * 1000),
        FACEGATE_RELEASE_PENDING: join(root, 'var/lib/facegate/release/pending'),
        MALLOC_ARENA_MAX: '2',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      if (code !== 0 && code !== null) console.warn(`service exited ${code}:\n${log}`);
      resolve(code);
    }),
  );
  return { child, exited };
}

function ffmpegOf(pid: number): number {
  const out = spawnSync('pgrep', ['-P', String(pid), 'ffmpeg'], { encoding: 'utf8' }).stdout.trim();
  if (!out) throw new Error(`no ffmpeg child of ${pid}`);
  return Number(out.split('\n')[0]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!canUnshare)('x64 bundle on a fresh root, offline', () => {
  let bundle: Bundle;
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'facegate-deploy-'));
    dirs.push(dir);
    return dir;
  };

  beforeAll(() => {
    bundle = bundleFor('x64');
  }, 1_800_000);
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('installs with no network, reports READY over NOTIFY_SOCKET, and a frozen camera stops the watchdog', async () => {
    const root = tempDir();
    const out = provision(bundle, bundle.archive, root);
    expect(out).toContain('facegate provisioned for x86');
    expect(readlinkSync(join(root, 'opt/facegate/current'))).toBe(`releases/${bundle.version}`);
    const unit = readFileSync(join(root, 'etc/systemd/system/facegate.service'), 'utf8');
    expect(unit).toContain(`ExecStart=${root}/opt/facegate/current/node/bin/node`);
    useDemoCamera(root);

    const notify = new NotifyListener(tempDir());
    const service = startService(root, notify);
    try {
      const ready = await notify.waitFor('READY', 120_000, service.exited);
      expect(ready.fields.READY).toBe('1');

      // Frames flow: a ping every WATCHDOG_MS / 2.
      const flowing = Date.now();
      await sleep(3 * WATCHDOG_MS);
      expect(notify.count('WATCHDOG', flowing)).toBeGreaterThanOrEqual(4);

      // Frozen camera: frames already in the pipe drain, then no ping for two watchdog periods, so
      // systemd (WatchdogSec) would restart the service. ffmpeg's own stall restart comes after 10 s.
      const ffmpeg = ffmpegOf(service.child.pid as number);
      process.kill(ffmpeg, 'SIGSTOP');
      await sleep(WATCHDOG_MS + 1000);
      const frozen = Date.now();
      await sleep(2 * WATCHDOG_MS);
      expect(notify.count('WATCHDOG', frozen)).toBe(0);
      process.kill(ffmpeg, 'SIGCONT');

      service.child.kill('SIGTERM');
      expect(await service.exited).toBe(0);
      expect(notify.count('STOPPING')).toBe(1);
    } finally {
      service.child.kill('SIGKILL');
      notify.close();
    }
  }, 300_000);

  it('an update that never becomes ready is rolled back to the release before it', async () => {
    const root = tempDir();
    provision(bundle, bundle.archive, root);
    useDemoCamera(root);

    // The second release: the same tree as 0.1.1, with a dependency missing so it cannot start.
    const broken = join(tempDir(), 'facegate-0.1.1');
    cpSync(bundle.stage, broken, { recursive: true });
    const pkg = join(broken, 'package.json');
    writeFileSync(pkg, readFileSync(pkg, 'utf8').replace(/"version": "[^"]*"/, '"version": "0.1.1"'));
    rmSync(join(broken, 'node_modules', 'sharp'), { recursive: true });
    const archive = packBundle(broken, tempDir());

    const update = provision(bundle, archive, root);
    expect(update).toContain('update: install the bundle beside');
    expect(readlinkSync(join(root, 'opt/facegate/current'))).toBe('releases/0.1.1');
    const pending = join(root, 'var/lib/facegate/release/pending');
    expect(readFileSync(pending, 'utf8')).toContain(`previous=${bundle.version}`);

    // What systemd does with the unit: ExecStartPre=release.sh probation, then start; Restart=on-failure.
    const releaseSh = join(root, 'opt/facegate/release.sh');
    const env = { ...process.env, FACEGATE_ROOT: root, FACEGATE_MAX_STARTS: '2' };
    const started: string[] = [];
    let readyRelease: string | null = null;
    for (let attempt = 0; attempt < 5 && !readyRelease; attempt++) {
      const probation = spawnSync('bash', [releaseSh, 'probation'], { env, encoding: 'utf8' });
      expect(probation.status, probation.stderr).toBe(0);
      const release = readlinkSync(join(root, 'opt/facegate/current'));
      started.push(release);
      const notify = new NotifyListener(tempDir());
      const service = startService(root, notify);
      try {
        await notify.waitFor('READY', 120_000, service.exited);
        readyRelease = release;
        service.child.kill('SIGTERM');
        await service.exited;
      } catch {
        expect(await service.exited).not.toBe(0);
      } finally {
        service.child.kill('SIGKILL');
        notify.close();
      }
    }
    expect(started).toEqual(['releases/0.1.1', 'releases/0.1.1', `releases/${bundle.version}`]);
    expect(readyRelease).toBe(`releases/${bundle.version}`);
    expect(existsSync(pending)).toBe(false);
    expect(readFileSync(join(root, 'var/lib/facegate/release/history'), 'utf8')).toMatch(
      new RegExp(
        `rolled back from 0\\.1\\.1 to ${bundle.version.replace(/\./g, '\\.')}: not ready after 2 start`,
      ),
    );
  }, 600_000);
});
