// The outside-paths lint rule: what it catches, what it leaves alone, and that the repository passes it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { findOutsidePaths } from '../../../tools/lint/no-outside-paths.ts';
import { REPO_ROOT } from '../../helpers/paths.ts';

// Built from parts, so this file names no such place itself (the project's own check reads it too).
const MACHINE_PATH = ['', 'work', 'shared', 'data', 'lfw'].join('/');
const BESIDE = ['..', 'shared'].join('/');
const hits = (line: string) => findOutsidePaths(line, 'x.ts').map((f) => f.text);

describe('no-outside-paths', () => {
  it('catches a machine folder and the data folder beside a checkout', () => {
    expect(hits(`const LFW = '${MACHINE_PATH}';`)).toEqual([MACHINE_PATH]);
    expect(hits('V=/home/me/clip.mp4')).toEqual(['/home/me/clip.mp4']);
    expect(hits("env: { FACEGATE_DATA: '/srv/data' }")).toEqual(['/srv/data']);
    expect(hits(`resolve(process.env.FACEGATE_DATA ?? '${BESIDE}/data')`)).toEqual([BESIDE]);
    expect(findOutsidePaths('ok\n`/mnt/faces/a.jpg`', 'x.md')).toEqual([
      { file: 'x.md', line: 2, text: '/mnt/faces/a.jpg' },
    ]);
  });

  it('leaves system locations, URLs, relative paths, JSON pointers and regex literals alone', () => {
    for (const line of [
      "device: '/dev/video0', out: '/dev/null'",
      'read /proc/self/status; --config /etc/facegate/config.yaml; dataDir: /var/lib/facegate',
      '#!/usr/bin/env bash',
      "const out = join(tmpdir(), 'x'); // or /tmp/facegate-train",
      "url: 'https://example.com/facegate/manifest.json', 'mqtt://broker/x'",
      "path: 'assets/demo/door.mp4', 'test/fixtures/faces'",
      '"$ref": "#/definitions/path"',
      "s.replace(/M/g, ''); expect(/certificate/i.test(msg))",
      "decodeImage('/nonexistent/face.jpg')",
      "app.get('/api/people', list); fetch('/api/unknowns/unknown-3')",
      '// <dataDir>/release/incoming/bundle.tar.xz',
      'cp -a "$src"/firmware-scripts/x.sh "$dir"/build/Release/a.node',
    ])
      expect(hits(line), line).toEqual([]);
  });

  it('passes on the repository', async () => {
    await expect(
      promisify(execFile)('npx', ['tsx', 'tools/lint/no-outside-paths.ts'], { cwd: REPO_ROOT }),
    ).resolves.toBeDefined();
  });
});
