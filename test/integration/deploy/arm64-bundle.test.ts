// The arm64 release bundle, run as a board would run it: every native file in it is aarch64, and under
// qemu-aarch64 (with Debian's arm64 C/C++ libraries from the cross toolchain) its own Node.js runs
// `facegate doctor --offline` and enrols and identifies a person on both engines.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bundle, bundleFor, run } from '../../helpers/bundle.ts';
import { FACES_DIR } from '../../helpers/paths.ts';

const ARM64_LIBS = '/usr/aarch64-linux-gnu';
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const tools = has('aarch64-linux-gnu-g++') && has('qemu-aarch64') && has('file');
if (!tools) console.warn('arm64 bundle test skipped: install g++-aarch64-linux-gnu, qemu-user and file');

describe.skipIf(!tools)('arm64 bundle', () => {
  let bundle: Bundle;
  let dir: string;
  let release: string;

  beforeAll(() => {
    bundle = bundleFor('arm64');
    dir = mkdtempSync(join(tmpdir(), 'facegate-arm64-'));
    run('tar', ['-xJf', bundle.archive, '-C', dir]);
    release = join(dir, `facegate-${bundle.version}`);
    const mb = statSync(bundle.archive).size / 2 ** 20;
    console.log(`arm64 bundle: ${mb.toFixed(1)} MB (${bundle.archive})`);
  }, 1_800_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** `facegate ARGS` with the bundle's arm64 Node under qemu, models.engine set to `engine`. */
  function facegate(engine: 'ort' | 'kernels', args: string[]): string {
    const result = spawnSync(
      'qemu-aarch64',
      ['-L', ARM64_LIBS, join(release, 'node/bin/node'), join(release, 'bin/facegate.js'), ...args],
      {
        cwd: release,
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH,
          HOME: dir,
          FACEGATE_MODELS__ENGINE: engine,
          FACEGATE_MODELS__THREADS: '2',
        },
        timeout: 600_000,
      },
    );
    if (result.status !== 0)
      throw new Error(
        `facegate ${args.join(' ')} (${engine}) failed (${result.status ?? result.signal}):\n${result.stdout}${result.stderr}`,
      );
    return result.stdout;
  }

  it('holds only aarch64 native files', () => {
    const natives = (readdirSync(release, { recursive: true, encoding: 'utf8' }) as string[])
      .filter((f) => /\.node$|\.so(\.\d+)*$/.test(f) || f === 'node/bin/node')
      .map((f) => join(release, f));
    const described = run('file', ['-L', ...natives])
      .trim()
      .split('\n');
    expect(described.length).toBeGreaterThanOrEqual(6);
    for (const line of described) expect(line).toMatch(/ELF 64-bit LSB .*ARM aarch64/);
    const names = described.map((l) => l.slice(release.length + 1, l.indexOf(':')));
    expect(names).toEqual(
      expect.arrayContaining([
        'node/bin/node',
        'kernels/build/Release/facegate_kernels.node',
        'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
        'node_modules/unix-dgram/build/Release/unix_dgram.node',
        expect.stringMatching(
          /^node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/arm64\/onnxruntime_binding\.node$/,
        ),
        expect.stringMatching(/^node_modules\/@img\/sharp-linux-arm64\/lib\/sharp-linux-arm64-[\d.]+\.node$/),
        expect.stringMatching(
          /^node_modules\/@img\/sharp-libvips-linux-arm64\/lib\/libvips-cpp\.so\.[\d.]+$/,
        ),
      ]),
    );
  });

  it('facegate doctor passes its offline checks under qemu, with the NEON kernels loaded', () => {
    const report = JSON.parse(facegate('kernels', ['doctor', '--offline', '--json'])) as {
      ok: boolean;
      checks: { name: string; status: string; detail: string }[];
    };
    expect(report.ok, JSON.stringify(report.checks)).toBe(true);
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
    expect(byName.models.status).toBe('ok');
    expect(byName.kernels.detail).toMatch(/^neon(-dotprod)? in use/);
    expect(byName.camera.status).toBe('skip');
  }, 600_000);

  for (const engine of ['ort', 'kernels'] as const) {
    it(`enrols the bundled demo photo and identifies the person in another photo (${engine})`, () => {
      const gallery = join(dir, `gallery-${engine}.db`);
      const enrolled = facegate(engine, [
        'enroll',
        '--gallery',
        gallery,
        '--name',
        'lin-manuel-miranda',
        join(release, 'assets/demo/people/lin-manuel-miranda.jpg'),
      ]);
      expect(enrolled).toContain('enrolled lin-manuel-miranda: 1 embedding(s)');
      const misc = join(FACES_DIR, 'face_recognition_examples/misc');
      const answers = facegate(engine, [
        'identify',
        '--gallery',
        gallery,
        '--json',
        join(misc, 'lin-manuel-miranda.png'),
        join(misc, 'biden.jpg'),
      ])
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { faces: { identity: string | null; score: number }[] });
      expect(answers[0].faces.map((f) => f.identity)).toEqual(['lin-manuel-miranda']);
      expect(answers[1].faces.map((f) => f.identity)).toEqual([null]);
    }, 1_800_000);
  }
});
