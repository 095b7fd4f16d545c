// Power-cut safety of the model slots, approximated by SIGKILL: a child process installs version after
// version and is killed at random moments (half the rounds while a model file is being written); after
// every kill the active model must be complete and verifiable.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { ModelSlots } from '../../../runtime/model-update/slots.ts';
import { loadModel, manifestPathFor } from '../../../runtime/models/manifest.ts';
import { tempDir } from '../../helpers/model-update.ts';
import { MODELS_DIR } from '../../helpers/paths.ts';

const CHILD = fileURLToPath(new URL('./install-child.ts', import.meta.url));
/** The 22 MB fp32 embedder: the longer each write takes, the likelier a kill lands inside one. */
const SOURCE = manifestPathFor(MODELS_DIR, 'facerec', 'fp32');
const ROUNDS = 30;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(1);
  }
}

/** A staging directory holding writeFileAtomic's temp file: a model file is being written right now. */
function writingModel(slotsDir: string): boolean {
  if (!existsSync(slotsDir)) return false;
  return readdirSync(slotsDir)
    .filter((e) => e.startsWith('.staging-'))
    .some((e) => {
      try {
        return readdirSync(join(slotsDir, e)).some((f) => f.endsWith('.tmp'));
      } catch {
        return false; // renamed or removed between the two reads
      }
    });
}

let dir: ReturnType<typeof tempDir> | undefined;
let child: ChildProcess | undefined;
afterEach(() => {
  if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  dir?.remove();
});

it(`a SIGKILL at any of ${ROUNDS} random moments leaves a complete, verifiable model active`, async () => {
  dir = tempDir('crash');
  const source = loadModel(SOURCE);
  const slots = new ModelSlots({
    dataDir: dir.path,
    name: 'facerec',
    bundledDir: MODELS_DIR,
    precision: 'fp32',
  });
  slots.install({ ...source.manifest, version: '1.0.0' }, source.onnx);

  const versions = new Set<string>();
  let killedMidWrite = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, dir.path, MODELS_DIR, SOURCE], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    let out = '';
    let err = '';
    proc.stdout?.on('data', (d) => {
      out += d;
    });
    proc.stderr?.on('data', (d) => {
      err += d;
    });
    await waitFor(
      () => out.includes('ready') || proc.exitCode !== null,
      60_000,
      () => `the child to start (stderr: ${err})`,
    );
    expect(proc.exitCode, err).toBeNull();
    if (round % 2 === 0) await sleep(Math.random() * 800);
    else {
      await waitFor(
        () => writingModel(slots.dir),
        30_000,
        () => `a model write (stdout: ${out.slice(-200)}, stderr: ${err})`,
      );
      await sleep(Math.random() * 5);
    }
    proc.kill('SIGKILL');
    await Promise.race([
      exited,
      sleep(10_000).then(() => Promise.reject(new Error('child did not die within 10 s'))),
    ]);
    if (writingModel(slots.dir)) killedMidWrite++;

    const active = slots.resolveActive();
    expect(active.problems, `round ${round}`).toEqual([]);
    expect(active.source).toBe('current');
    expect(loadModel(active.model.manifestPath).manifest.sha256).toBe(source.manifest.sha256);
    versions.add(active.model.manifest.version);
  }

  // The kills did land mid-write, and installs did complete between them.
  expect(killedMidWrite).toBeGreaterThan(0);
  expect(versions.size).toBeGreaterThan(1);
  slots.prune();
  expect(readdirSync(slots.dir).sort()).toEqual(['active.json', 'versions']);
  expect(readdirSync(join(slots.dir, 'versions')).length).toBeLessThanOrEqual(2);
}, 600_000);
