// The firmware scripts as a person meets them: shellcheck-clean, a unit systemd accepts, and the plan
// provision.sh prints for each board, detected from fixture device-tree and os-release files.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES_DIR, REPO_ROOT } from '../../helpers/paths.ts';

const SCRIPTS = join(REPO_ROOT, 'firmware-scripts');
const BOARDS = join(FIXTURES_DIR, 'deploy');
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const temp: string[] = [];
afterAll(() => {
  for (const dir of temp) rmSync(dir, { recursive: true, force: true });
});

function dryRun(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(
    'bash',
    [join(SCRIPTS, 'provision.sh'), '--bundle', join(REPO_ROOT, 'package.json'), '--dry-run', ...args],
    {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    },
  );
  return { status: result.status, out: result.stdout, err: result.stderr };
}

describe('firmware scripts', () => {
  it.skipIf(!has('shellcheck'))('are shellcheck clean', () => {
    const scripts = readdirSync(SCRIPTS)
      .filter((f) => f.endsWith('.sh'))
      .map((f) => join(SCRIPTS, f));
    const result = spawnSync('shellcheck', scripts, { encoding: 'utf8' });
    expect(result.stdout, result.stdout).toBe('');
    expect(result.status).toBe(0);
  });

  it.skipIf(!has('systemd-analyze'))('systemd-analyze verify accepts the unit', () => {
    // verify checks that ExecStart's programs exist: a root with them, and systemd's own units.
    const root = mkdtempSync(join(tmpdir(), 'facegate-unit-'));
    temp.push(root);
    for (const exe of ['opt/facegate/release.sh', 'opt/facegate/current/node/bin/node']) {
      mkdirSync(join(root, exe, '..'), { recursive: true });
      writeFileSync(join(root, exe), '#!/bin/sh\n', { mode: 0o755 });
    }
    cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    cpSync(join(SCRIPTS, 'facegate.service'), join(root, 'etc/systemd/system/facegate.service'));
    const result = spawnSync(
      'systemd-analyze',
      ['verify', `--root=${root}`, '/etc/systemd/system/facegate.service'],
      {
        encoding: 'utf8',
      },
    );
    // A setting systemd does not understand is only a warning: any output is a failure here.
    expect(`${result.stdout}${result.stderr}`).toBe('');
    expect(result.status).toBe(0);
  });

  const cases = [
    { model: 'rpi5.model', os: 'raspios-bookworm.os-release', board: 'rpi5', camera: 'rpicam-apps' },
    { model: 'rpi4.model', os: 'raspios-bookworm.os-release', board: 'rpi4', camera: 'rpicam-apps' },
    {
      model: 'jetson-nano.model',
      os: 'jetpack4.os-release',
      board: 'jetson-nano',
      camera: 'gstreamer1.0-tools',
    },
    {
      model: 'jetson-orin.model',
      os: 'jetpack6.os-release',
      board: 'jetson-orin',
      camera: 'gstreamer1.0-tools',
    },
  ];
  for (const c of cases) {
    it(`--dry-run plans ${c.board} from its device-tree model and os-release`, () => {
      const { status, out, err } = dryRun(['--operator-key', join(BOARDS, 'operator.pem')], {
        FACEGATE_DT_MODEL: join(BOARDS, c.model),
        FACEGATE_OS_RELEASE: join(BOARDS, c.os),
      });
      expect(status, err).toBe(0);
      expect(err).not.toContain('warning');
      expect(out).toMatch(
        new RegExp(
          `^- board: ${c.board} \\(detected from .+\\), OS: .+, bundle architecture needed: linux-arm64$`,
          'm',
        ),
      );
      expect(out).toMatch(new RegExp(`^- OS packages: ffmpeg ${c.camera} openssl`, 'm'));
      expect(out).toContain(
        '+ useradd --system --user-group --home-dir /var/lib/facegate --shell /usr/sbin/nologin facegate',
      );
      expect(out).toContain('/opt/facegate/release.sh install');
      expect(out).toContain(
        `install -m 0644 ${join(BOARDS, 'operator.pem')} /etc/facegate/operator-keys.pem`,
      );
      expect(out).toContain('operatorKeysFile: /etc/facegate/operator-keys.pem');
      expect(out).toContain(`FACEGATE_BOARD=${c.board}`);
      expect(out).toContain('+ write /etc/systemd/system/facegate.service');
      expect(out).toContain('+ systemctl enable facegate');
      const jetson = c.board.startsWith('jetson');
      expect(out.includes('facegate.service.d/jetson.conf')).toBe(jetson);
      expect(out).not.toContain('mosquitto');
    });
  }

  it('--dry-run with --board x86 and --broker local plans the TLS broker and changes nothing', () => {
    const { status, out, err } = dryRun(['--board', 'x86', '--broker', 'local'], {
      FACEGATE_DT_MODEL: join(BOARDS, 'absent'),
    });
    expect(status, err).toBe(0);
    expect(out).toMatch(/^- board: x86 \(given with --board\)/m);
    expect(out).toContain('listener 8883');
    expect(out).toContain('allow_anonymous false');
    expect(out).toContain('mqtt: { url: mqtts://localhost:8883, username: facegate');
    expect(out).toContain(
      '+ mosquitto_passwd -b -c /etc/facegate/mqtt/passwd.homeassistant homeassistant <random>',
    );
  });

  it('refuses a board it cannot tell, naming --board', () => {
    const { status, err } = dryRun([], { FACEGATE_DT_MODEL: join(BOARDS, 'jetpack6.os-release') });
    expect(status).toBe(2);
    expect(err).toContain('give --board');
  });

  it('uninstall --dry-run --keep-data removes all but the data', () => {
    const result = spawnSync('bash', [join(SCRIPTS, 'uninstall.sh'), '--dry-run', '--keep-data'], {
      encoding: 'utf8',
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('+ rm -rf /opt/facegate');
    expect(result.stdout).toContain('+ rm -rf /etc/facegate');
    expect(result.stdout).toContain('kept /var/lib/facegate');
    expect(result.stdout).not.toContain('rm -rf /var/lib/facegate');
  });
});
