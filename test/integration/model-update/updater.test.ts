import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ModelUpdateConfig } from '../../../runtime/config/schema.ts';
import { OrtEngine } from '../../../runtime/engine/ort.ts';
import type { ModelChunk } from '../../../runtime/model-update/download.ts';
import { GOLDEN_DIR } from '../../../runtime/model-update/selftest.ts';
import { signManifest } from '../../../runtime/model-update/signature.ts';
import { ModelSlots, slotName } from '../../../runtime/model-update/slots.ts';
import {
  type FrameHealth,
  ModelUpdater,
  type UpdateRequest,
  type UpdaterDeps,
  type UpdateState,
} from '../../../runtime/model-update/updater.ts';
import type { OpenedModel } from '../../../runtime/models/manifest.ts';
import { generateSigningKeyPair } from '../../../runtime/util/signing.ts';
import {
  builtModel,
  type Handler,
  manifestFor,
  sendBytes,
  serve,
  tempDir,
  tinyEmbedder,
} from '../../helpers/model-update.ts';
import { MODELS_DIR } from '../../helpers/paths.ts';

const base = builtModel('facerec');
const keys = generateSigningKeyPair();
const config: ModelUpdateConfig = {
  allowUnsigned: false,
  publicKeys: [keys.publicKeyPem],
  maxDownloadBytes: 50_000_000,
  allowedOrigins: [],
  healthFrames: 5,
  maxLatencyMs: 2000,
};

const routes: Record<string, Handler> = {};
let server: Awaited<ReturnType<typeof serve>>;
let crop: Buffer;
beforeAll(async () => {
  server = await serve(routes);
  crop = await sharp(join(GOLDEN_DIR, 'obama-1.png')).removeAlpha().raw().toBuffer();
});
afterAll(() => server.close());

/** Stands in for the pipeline: which version runs, what the gallery was embedded with, engines alive. */
class FakePipeline {
  running = base.manifest.version;
  gallery = base.manifest.version;
  current?: OpenedModel;
  switches: string[] = [];
  reembeds: string[] = [];
  states: UpdateState[] = [];
  openEngines = 0;
  frame: () => Promise<FrameHealth> = async () => ({ latencyMs: 5 });
  reembedError?: string;
  switchError?: string;

  deps(slots: ModelSlots, extra: Partial<UpdaterDeps> = {}): UpdaterDeps {
    return {
      config,
      slots: [slots],
      publishState: (s) => this.states.push(s),
      switchTo: async (model) => {
        if (this.switchError) throw new Error(this.switchError);
        await this.current?.engine.close();
        this.current = model;
        this.running = model.manifest.version;
        this.switches.push(model.manifest.version);
      },
      health: () => this.frame(),
      reembedGallery: async (embed, manifest) => {
        this.reembeds.push(manifest.version);
        if (this.reembedError) throw new Error(this.reembedError);
        const [e] = await embed([crop]);
        expect(e).toHaveLength(128);
        this.gallery = manifest.version;
      },
      createEngine: async (onnx) => {
        const engine = await OrtEngine.create(onnx);
        this.openEngines++;
        const close = engine.close.bind(engine);
        engine.close = async () => {
          this.openEngines--;
          await close();
        };
        return engine;
      },
      ...extra,
    };
  }

  phases(): string[] {
    return this.states.map((s) => s.state).filter((s, i, all) => s !== all[i - 1]);
  }
}

let dir: ReturnType<typeof tempDir>;
let slots: ModelSlots;
let pipeline: FakePipeline;
let updater: ModelUpdater;
beforeEach(() => {
  dir = tempDir('updater');
  slots = new ModelSlots({ dataDir: dir.path, name: 'facerec', bundledDir: MODELS_DIR, precision: 'int8' });
  pipeline = new FakePipeline();
  updater = new ModelUpdater(pipeline.deps(slots));
});
afterEach(async () => {
  await pipeline.current?.engine.close();
  // Every engine the updater opened was closed or handed to the pipeline.
  expect(pipeline.openEngines).toBe(0);
  dir.remove();
});

function offer(
  version: string,
  opts: { onnx?: Uint8Array; serve?: Uint8Array; sign?: boolean; manifest?: object } = {},
): UpdateRequest {
  const onnx = opts.onnx ?? base.onnx;
  const unsigned = manifestFor(base.manifest, onnx, { version, ...opts.manifest });
  const manifest = opts.sign === false ? unsigned : signManifest(unsigned, keys.privateKeyPem);
  routes[`/${version}.onnx`] = sendBytes(opts.serve ?? onnx);
  return { name: 'facerec', manifest, url: `${server.url}/${version}.onnx` };
}

function expectUntouched(): void {
  expect(pipeline.switches).toEqual([]);
  expect(pipeline.running).toBe('1.0.0');
  expect(slots.pointer()).toBeUndefined();
}

describe('ModelUpdater.update', () => {
  it('downloads, verifies, tests, re-embeds, installs and switches, publishing each step', async () => {
    const result = await updater.update(offer('1.1.0'));
    expect(result).toMatchObject({ ok: true });
    expect(pipeline.phases()).toEqual(['downloading', 'verifying', 'testing', 'switching', 'idle']);
    expect(pipeline.states.at(-1)).toEqual({
      name: 'facerec',
      state: 'idle',
      in_progress: false,
      installed_version: '1.1.0',
      latest_version: '1.1.0',
      progress: 100,
      error: null,
    });
    expect(pipeline.states.slice(0, -1).every((s) => s.in_progress && s.installed_version === '1.0.0')).toBe(
      true,
    );
    const progress = pipeline.states.map((s) => s.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(pipeline.switches).toEqual(['1.1.0']);
    expect(pipeline.reembeds).toEqual(['1.1.0']);
    expect(slots.resolveActive()).toMatchObject({
      source: 'current',
      slot: slotName({ ...base.manifest, version: '1.1.0' }),
    });
    expect(updater.status('facerec')).toEqual(pipeline.states.at(-1));
  });

  it('assembles a model sent as MQTT chunks, in any order', async () => {
    const { manifest } = offer('1.2.0');
    const size = 500_000;
    const total = Math.ceil(base.onnx.length / size);
    const chunks: ModelChunk[] = Array.from({ length: total }, (_, index) => ({
      id: 'm-1',
      index,
      total,
      data: Buffer.from(base.onnx.subarray(index * size, (index + 1) * size)).toString('base64'),
    })).reverse();
    expect(await updater.update({ name: 'facerec', manifest, chunks })).toMatchObject({ ok: true });
    expect(pipeline.running).toBe('1.2.0');
  });

  it('does not re-embed the gallery when the embedder keeps its version', async () => {
    expect((await updater.update(offer('1.0.0'))).ok).toBe(true);
    expect(pipeline.reembeds).toEqual([]);
    expect(pipeline.switches).toEqual(['1.0.0']);
  });

  it('refuses a manifest that sets its thresholds to -1, signed or not, before downloading', async () => {
    // Without a curve: one that disagreed with these points would be refused as invalid before the policy.
    const thresholds = { ...base.manifest.thresholds, curve: undefined, far: { '0.01': -1, '0.001': -1 } };
    const signed = await updater.update(offer('1.1.0', { manifest: { thresholds } }));
    expect(signed).toMatchObject({
      ok: false,
      error: expect.stringMatching(
        /^manifest 1\.1\.0 refused: its FAR 0\.01 threshold -1 is outside 0\.86\d+\.\.0\.96\d+, the calibrated range of facerec/,
      ),
    });
    updater = new ModelUpdater(pipeline.deps(slots, { config: { ...config, allowUnsigned: true } }));
    const lower = { ...base.manifest.thresholds, curve: undefined, far: { '0.01': 0.9, '0.001': 0.92 } };
    const unsigned = await updater.update(offer('1.1.0', { manifest: { thresholds: lower }, sign: false }));
    expect(unsigned).toMatchObject({
      ok: false,
      error: expect.stringContaining("its FAR 0.01 threshold 0.9 is below the running model's 0.91"),
    });
    expect(pipeline.phases()).toEqual(['failed']);
    expectUntouched();
  });

  it('refuses an older version unless a signed manifest says rollback', async () => {
    const older = await updater.update(offer('0.9.0'));
    expect(older).toMatchObject({
      ok: false,
      error:
        'manifest 0.9.0 refused: version 0.9.0 is older than the running 1.0.0: a downgrade needs a signed manifest with "rollback": true (or model/rollback)',
    });
    updater = new ModelUpdater(pipeline.deps(slots, { config: { ...config, allowUnsigned: true } }));
    const unsignedRollback = await updater.update(
      offer('0.9.0', { sign: false, manifest: { rollback: true } }),
    );
    expect(unsignedRollback).toMatchObject({ ok: false, error: expect.stringContaining('is older than') });
    expectUntouched();
    expect(await updater.update(offer('0.9.0', { manifest: { rollback: true } }))).toMatchObject({
      ok: true,
    });
    expect(pipeline.running).toBe('0.9.0');
  });

  it('saves the new version as the choice only after its health check', async () => {
    const pointers: unknown[] = [];
    pipeline.frame = async () => {
      pointers.push(slots.pointer());
      return { latencyMs: 5 };
    };
    expect(await updater.update(offer('1.1.0'))).toMatchObject({ ok: true });
    expect(pointers).toHaveLength(config.healthFrames);
    expect(pointers.every((p) => p === undefined)).toBe(true);
    expect(slots.pointer()?.current).toMatch(/^1\.1\.0-[0-9a-f]{16}$/);
  });

  it('refuses a tampered model (sha256 mismatch)', async () => {
    const tampered = Buffer.from(base.onnx);
    tampered[tampered.length - 100] ^= 0x01;
    const result = await updater.update(offer('1.1.0', { serve: tampered }));
    expect(result).toMatchObject({
      ok: false,
      error: expect.stringMatching(
        /sha256 [0-9a-f]+ does not match the manifest's .* \(tampered or corrupt\)/,
      ),
    });
    expect(pipeline.phases()).toEqual(['downloading', 'verifying', 'failed']);
    expectUntouched();
  });

  it('refuses an unsigned manifest before downloading anything', async () => {
    const result = await updater.update(offer('1.0.1-unsigned', { sign: false }));
    expect(result).toMatchObject({
      ok: false,
      error: 'manifest facerec 1.0.1-unsigned is not signed and unsigned models are not allowed',
    });
    expect(server.hits).not.toContain('/1.0.1-unsigned.onnx');
    expect(pipeline.states).toEqual([
      expect.objectContaining({ state: 'failed', installed_version: '1.0.0', in_progress: false }),
    ]);
    expectUntouched();
  });

  it('accepts an unsigned manifest when allowUnsigned is set', async () => {
    updater = new ModelUpdater(pipeline.deps(slots, { config: { ...config, allowUnsigned: true } }));
    expect((await updater.update(offer('1.1.0', { sign: false }))).ok).toBe(true);
  });

  it('refuses a truncated file, and a server sending more than the manifest says', async () => {
    const truncated = await updater.update(offer('1.1.0', { serve: base.onnx.subarray(0, 1_000_000) }));
    expect(truncated).toMatchObject({
      ok: false,
      error: `model has 1000000 bytes, the manifest says ${base.onnx.length} (truncated or padded)`,
    });
    const padded = await updater.update(
      offer('1.1.1', { serve: Buffer.concat([base.onnx, Buffer.alloc(10)]) }),
    );
    expect(padded).toMatchObject({
      ok: false,
      error: expect.stringMatching(/Content-Length \d+, more than the limit/),
    });
    expectUntouched();
  });

  it('refuses an incompatible model', async () => {
    const onnx = tinyEmbedder({ inputSize: 112 });
    const result = await updater.update(
      offer('2.0.0', { onnx, manifest: { input: { ...base.manifest.input, shape: [-1, 3, 112, 112] } } }),
    );
    expect(result).toMatchObject({
      ok: false,
      error:
        'incompatible with the running facerec 1.0.0: input shape [-1,3,112,112] differs from [-1,3,150,150]',
    });
    expect(pipeline.states.at(-1)).toMatchObject({
      state: 'failed',
      latest_version: '2.0.0',
      installed_version: '1.0.0',
    });
    expectUntouched();
  });

  it('refuses a compatible model that fails the self-test', async () => {
    const result = await updater.update(offer('2.0.0', { onnx: tinyEmbedder() }));
    expect(result).toMatchObject({
      ok: false,
      error: expect.stringMatching(
        /^self-test failed: .*same-person pairs \(lowest [\d.]+\) are not 0.05 above/,
      ),
    });
    expect(pipeline.phases()).toEqual(['downloading', 'verifying', 'testing', 'failed']);
    expectUntouched();
  });

  it('refuses the swap when the gallery cannot be re-embedded', async () => {
    pipeline.reembedError = 'crops of 3 enrolled faces are missing';
    const result = await updater.update(offer('1.1.0'));
    expect(result).toMatchObject({
      ok: false,
      error: 'gallery re-embedding with 1.1.0 failed: crops of 3 enrolled faces are missing',
    });
    expect(pipeline.gallery).toBe('1.0.0');
    expectUntouched();
  });

  it('undoes the install and the gallery when the pipeline cannot switch', async () => {
    pipeline.switchError = 'pipeline is shutting down';
    const result = await updater.update(offer('1.1.0'));
    expect(result).toMatchObject({ ok: false, error: 'pipeline is shutting down' });
    expect(pipeline.states.at(-1)?.state).toBe('failed');
    expect(pipeline.reembeds).toEqual(['1.1.0', '1.0.0']);
    expectUntouched();
  });

  describe('health check after the switch', () => {
    it('rolls back on a frame error: switches back, drops the slot, re-embeds with the old model', async () => {
      let frames = 0;
      pipeline.frame = async () =>
        ++frames === 3 ? { latencyMs: 5, error: 'engine returned NaN' } : { latencyMs: 5 };
      const result = await updater.update(offer('1.1.0'));
      expect(result).toMatchObject({
        ok: false,
        error: 'health check: frame 3 of 5 failed: engine returned NaN',
      });
      expect(pipeline.states.at(-1)).toMatchObject({
        state: 'rolled_back',
        installed_version: '1.0.0',
        latest_version: '1.1.0',
      });
      expect(pipeline.switches).toEqual(['1.1.0', '1.0.0']);
      expect(pipeline.gallery).toBe('1.0.0');
      expect(slots.resolveActive().source).toBe('bundled');
      expect(slots.pointer()).toBeUndefined();
    });

    it('rolls back to the previous slot when frames are too slow', async () => {
      expect((await updater.update(offer('1.1.0'))).ok).toBe(true);
      pipeline.frame = async () => ({ latencyMs: 5000 });
      const result = await updater.update(offer('1.2.0'));
      expect(result).toMatchObject({
        ok: false,
        error: 'health check: 90th percentile frame latency 5000.0 ms is above maxLatencyMs 2000',
      });
      expect(pipeline.states.at(-1)?.state).toBe('rolled_back');
      expect(pipeline.running).toBe('1.1.0');
      expect(slots.pointer()).toEqual({ current: slotName({ ...base.manifest, version: '1.1.0' }) });
    });

    it('rolls back when frames stop coming', async () => {
      updater = new ModelUpdater(pipeline.deps(slots, { healthTimeoutMs: 300 }));
      let frames = 0;
      pipeline.frame = () => (++frames <= 2 ? Promise.resolve({ latencyMs: 5 }) : new Promise(() => {}));
      const result = await updater.update(offer('1.1.0'));
      expect(result).toMatchObject({ ok: false, error: 'health check: only 2 of 5 frames within 300 ms' });
      expect(pipeline.running).toBe('1.0.0');
    });
  });

  it('runs one job at a time; others are refused at once without touching its state', async () => {
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    pipeline.frame = async () => {
      await held;
      return { latencyMs: 5 };
    };
    const first = updater.update(offer('1.1.0'));
    await expect.poll(() => pipeline.states.at(-1)?.state, { timeout: 30_000 }).toBe('switching');
    const published = pipeline.states.length;
    expect(await updater.update(offer('1.2.0'))).toEqual({
      ok: false,
      error: 'cannot start the update of facerec: the update of facerec is still in progress',
    });
    expect(await updater.rollback('facerec')).toMatchObject({
      ok: false,
      error: expect.stringMatching(/still in progress/),
    });
    expect(pipeline.states).toHaveLength(published);
    release();
    expect((await first).ok).toBe(true);
    expect((await updater.update(offer('1.2.0'))).ok).toBe(true);
  });

  it.each([
    ['no model name', { manifest: base.manifest }, /the request names no model/],
    [
      'a model without slots',
      { name: 'antispoof', manifest: base.manifest, url: 'http://x' },
      /no model named "antispoof" can be updated here/,
    ],
    [
      'an invalid manifest',
      { name: 'facerec', manifest: { name: 'facerec' }, url: 'http://x' },
      /^invalid manifest: the manifest must have required property/,
    ],
    [
      'both url and chunks',
      { name: 'facerec', manifest: base.manifest, url: 'http://x', chunks: [] },
      /exactly one of url and chunks/,
    ],
    [
      'another model s manifest',
      { name: 'facerec', manifest: builtModel('blazeface').manifest, url: 'http://x' },
      /the manifest is for blazeface, not facerec/,
    ],
  ])('refuses a request with %s', async (_what, request, error) => {
    const result = await updater.update(request as UpdateRequest);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(error);
    expectUntouched();
  });

  it('refuses a model larger than maxDownloadBytes', async () => {
    updater = new ModelUpdater(pipeline.deps(slots, { config: { ...config, maxDownloadBytes: 1_000_000 } }));
    const result = await updater.update(offer('1.1.0'));
    expect(result).toMatchObject({
      ok: false,
      error: `model is ${base.onnx.length} bytes, more than maxDownloadBytes 1000000`,
    });
  });
});

describe('ModelUpdater.rollback', () => {
  it('goes back to the previous slot on demand, keeping the newer one to roll forward', async () => {
    expect((await updater.update(offer('1.1.0'))).ok).toBe(true);
    expect((await updater.update(offer('1.2.0'))).ok).toBe(true);
    const result = await updater.rollback('facerec');
    expect(result).toMatchObject({
      ok: true,
      state: { state: 'rolled_back', installed_version: '1.1.0', error: null },
    });
    expect(pipeline.running).toBe('1.1.0');
    expect(pipeline.gallery).toBe('1.1.0');
    expect(slots.pointer()?.previous).toBe(slotName({ ...base.manifest, version: '1.2.0' }));
    expect((await updater.rollback('facerec')).ok).toBe(true);
    expect(pipeline.running).toBe('1.2.0');
  });

  it('says so when there is nothing to roll back to', async () => {
    const result = await updater.rollback('facerec');
    expect(result).toMatchObject({
      ok: false,
      error: 'facerec: the bundled model is running, there is nothing to roll back to',
    });
    expectUntouched();
  });
});
