// Remote model swap, one at a time, published like a Home Assistant `update` entity:
//
//   idle -> downloading -> verifying -> testing -> switching -> idle
//                 \____________\___________\___________\-----> failed | rolled_back
//
// Every way out before the switch leaves the running model untouched; after the switch a failed health
// check switches back. The new version is written to its slot and becomes the saved choice only after its
// health check, so a power cut or a crash in that window restarts on the old model. A manifest is also
// judged against the running model (policy.ts: threshold range, no downgrade) and its self-test beside
// the running model's judgement. Nothing in a request can throw out of update().
import type { ModelUpdateConfig } from '../config/schema.ts';
import type { OpenedModel } from '../models/manifest.ts';
import { type LoadedModel, type ModelManifest, validateManifest } from '../models/manifest.ts';
import type { InferenceEngine } from '../types.ts';
import { FaceEmbedder } from '../vision/embedder.ts';
import { checkCompatibility } from './compat.ts';
import { collectChunks, downloadModel, type ModelChunk, verifyModelBytes } from './download.ts';
import { manifestPolicyProblems } from './policy.ts';
import { type SelfTestOptions, selfTest } from './selftest.ts';
import { verifyManifest } from './signature.ts';
import type { ModelSlots } from './slots.ts';

export type UpdatePhase =
  | 'idle'
  | 'downloading'
  | 'verifying'
  | 'testing'
  | 'switching'
  | 'failed'
  | 'rolled_back';

/** Field names follow Home Assistant's update entity. */
export interface UpdateState {
  name: string;
  state: UpdatePhase;
  in_progress: boolean;
  installed_version: string;
  /** The version offered by the last request. */
  latest_version: string;
  /** 0..100, of the last request. */
  progress: number;
  error: string | null;
}

export interface UpdateRequest {
  name: string;
  manifest: ModelManifest;
  /** Exactly one of url and chunks. */
  url?: string;
  chunks?: Iterable<ModelChunk> | AsyncIterable<ModelChunk>;
}

/** `state` is absent when the request was refused without starting (another job running, no model name). */
export type UpdateResult =
  | { ok: true; state: UpdateState }
  | { ok: false; error: string; state?: UpdateState };

interface Job {
  publish(change: Partial<UpdateState>): void;
  running: LoadedModel;
  slots: ModelSlots;
}

/** How one frame went on the engine the pipeline is running now. */
export interface FrameHealth {
  latencyMs: number;
  error?: string;
}

export type EmbedFn = (crops: Buffer[]) => Promise<Float32Array[]>;

export interface UpdaterDeps {
  config: ModelUpdateConfig;
  /** One per model name that may be updated. */
  slots: ModelSlots[];
  publishState(state: UpdateState): void;
  /**
   * Swaps the pipeline's engine for `model` between frames. The pipeline owns `model.engine` from then on
   * and closes the engine it replaced; if this throws, the old engine must still be running.
   */
  switchTo(model: OpenedModel): Promise<void>;
  /** Resolves when the next frame has gone through the running engine. */
  health(): Promise<FrameHealth>;
  /** Replaces every gallery embedding with `embed`'s of the enrolled crops; throws to refuse the swap. */
  reembedGallery(embed: EmbedFn, manifest: ModelManifest): Promise<void>;
  /** Opens a candidate model on the engine the configuration chooses. */
  createEngine(onnx: Uint8Array, manifest: ModelManifest): Promise<InferenceEngine>;
  downloadTimeoutMs?: number;
  /** Default: 1 s per health frame, at least 30 s. */
  healthTimeoutMs?: number;
  selfTest?: SelfTestOptions;
}

class UpdateError extends Error {
  constructor(
    message: string,
    readonly rolledBack = false,
  ) {
    super(message);
  }
}

/** Progress ranges of the phases, so the bar only ever moves forward. */
const PROGRESS = { downloading: 0, verifying: 60, testing: 70, switching: 90 } as const;

export class ModelUpdater {
  private readonly states = new Map<string, UpdateState>();
  private busy?: string;

  constructor(private readonly deps: UpdaterDeps) {}

  /** The last published state of a model, or its idle state. */
  status(name: string): UpdateState {
    const known = this.states.get(name);
    if (known) return known;
    const version = this.slotsFor(name).resolveActive().model.manifest.version;
    return {
      name,
      state: 'idle',
      in_progress: false,
      installed_version: version,
      latest_version: version,
      progress: 0,
      error: null,
    };
  }

  async update(request: UpdateRequest): Promise<UpdateResult> {
    return this.exclusive(request?.name, 'update', async ({ publish, running, slots }) => {
      const { manifest, url, chunks } = request;
      const errors = validateManifest(manifest);
      if (errors.length > 0) throw new UpdateError(`invalid manifest: ${errors.join('; ')}`);
      if (manifest.name !== request.name)
        throw new UpdateError(`the manifest is for ${manifest.name}, not ${request.name}`);
      if ((url === undefined) === (chunks === undefined))
        throw new UpdateError('a request needs exactly one of url and chunks');
      if (manifest.bytes > this.deps.config.maxDownloadBytes) {
        throw new UpdateError(
          `model is ${manifest.bytes} bytes, more than maxDownloadBytes ${this.deps.config.maxDownloadBytes}`,
        );
      }
      // Checked before anything is downloaded: the signature covers sha256 and size, so it vouches for the bytes.
      const signature = verifyManifest(manifest, this.deps.config.publicKeys, this.deps.config.allowUnsigned);
      if (!signature.ok) throw new UpdateError(signature.message);
      const policy = manifestPolicyProblems(manifest, running.manifest, signature.signed);
      if (policy.length > 0)
        throw new UpdateError(`manifest ${manifest.version} refused: ${policy.join('; ')}`);

      publish({ state: 'downloading', latest_version: manifest.version, progress: PROGRESS.downloading });
      const onProgress = (received: number, total: number | undefined) =>
        publish({ progress: (PROGRESS.verifying * received) / (total ?? manifest.bytes) });
      const timeoutMs = this.deps.downloadTimeoutMs ?? 600_000;
      const onnx = url
        ? await downloadModel(url, { maxBytes: manifest.bytes, timeoutMs, onProgress })
        : await collectChunks(chunks as NonNullable<typeof chunks>, {
            maxBytes: manifest.bytes,
            sha256: manifest.sha256,
            bytes: manifest.bytes,
            timeoutMs,
            onProgress,
          });

      publish({ state: 'verifying', progress: PROGRESS.verifying });
      verifyModelBytes(onnx, manifest);
      const compat = await checkCompatibility({ manifest, onnx }, running.manifest);
      if (!compat.ok)
        throw new UpdateError(
          `incompatible with the running ${running.manifest.name} ${running.manifest.version}: ${compat.reasons.join('; ')}`,
        );

      publish({ state: 'testing', progress: PROGRESS.testing });
      const engine = await this.createEngine(onnx, manifest);
      try {
        // Judged beside the running model, so a candidate cannot pass by its own claims alone.
        const report =
          manifest.task === 'face-embedding'
            ? await this.withEngine(running, (reference) =>
                selfTest(engine, manifest, { ...this.deps.selfTest, reference }),
              )
            : await selfTest(engine, manifest, this.deps.selfTest);
        if (!report.ok) throw new UpdateError(`self-test failed: ${report.failures.join('; ')}`);
        if (report.latencyMs > this.deps.config.maxLatencyMs) {
          throw new UpdateError(
            `self-test latency ${report.latencyMs.toFixed(1)} ms is above maxLatencyMs ${this.deps.config.maxLatencyMs}`,
          );
        }
      } catch (e) {
        await engine.close();
        throw e;
      }

      publish({ state: 'switching', progress: PROGRESS.switching });
      await this.activate(
        running,
        { manifest, engine },
        {
          commit: () => slots.install(manifest, onnx),
          healthCheck: (done) =>
            publish({ progress: PROGRESS.switching + (100 - PROGRESS.switching) * done }),
        },
      );
      return manifest.version;
    });
  }

  /** Back to the previous slot on an operator's request; the newer one stays as `previous`. */
  async rollback(name: string): Promise<UpdateResult> {
    return this.exclusive(
      name,
      'rollback',
      async ({ publish, running, slots }) => {
        const target = slots.previous();
        publish({
          state: 'switching',
          latest_version: target.manifest.version,
          progress: PROGRESS.switching,
        });
        const engine = await this.createEngine(target.onnx, target.manifest);
        await this.activate(
          running,
          { manifest: target.manifest, engine },
          { commit: () => slots.rollback() },
        );
        return target.manifest.version;
      },
      'rolled_back',
    );
  }

  /**
   * Runs `job` unless another one is running (then answers at once, without touching the state of the
   * one in progress). `job` returns the version now running; whatever it throws ends as failed/rolled_back.
   */
  private async exclusive(
    name: unknown,
    what: string,
    job: (job: Job) => Promise<string>,
    doneState: UpdatePhase = 'idle',
  ): Promise<UpdateResult> {
    if (typeof name !== 'string') return { ok: false, error: `${what}: the request names no model` };
    if (this.busy)
      return {
        ok: false,
        error: `cannot start the ${what} of ${name}: the ${this.busy} is still in progress`,
      };
    this.busy = `${what} of ${name}`;
    let state: UpdateState = {
      name,
      state: 'idle',
      in_progress: true,
      installed_version: '',
      latest_version: this.states.get(name)?.latest_version ?? '',
      progress: 0,
      error: null,
    };
    const publish = (change: Partial<UpdateState>) => {
      const next = {
        ...state,
        ...change,
        progress: Math.round(Math.min(100, change.progress ?? state.progress)),
      };
      // Progress in 5 % steps: every publication may be an MQTT message.
      if (Object.keys(change).every((k) => k === 'progress') && Math.abs(next.progress - state.progress) < 5)
        return;
      state = next;
      this.states.set(name, state);
      this.deps.publishState(state);
    };
    try {
      const slots = this.slotsFor(name);
      const running = slots.resolveActive().model;
      const version = running.manifest.version;
      state = { ...state, installed_version: version, latest_version: state.latest_version || version };
      const installed = await job({ publish, running, slots });
      publish({ state: doneState, in_progress: false, installed_version: installed, progress: 100 });
      return { ok: true, state };
    } catch (e) {
      const error = (e as Error).message;
      publish({
        state: e instanceof UpdateError && e.rolledBack ? 'rolled_back' : 'failed',
        in_progress: false,
        error,
      });
      return { ok: false, error, state };
    } finally {
      this.busy = undefined;
    }
  }

  /**
   * Re-embeds the gallery (embedders changing version), switches, watches health if asked and only then
   * commits the slots, so a power cut or a crash before the model proved itself restarts on the old one.
   * Any failure undoes the steps already taken, newest first, and is rethrown.
   */
  private async activate(
    from: LoadedModel,
    to: OpenedModel,
    steps: { commit(): void; healthCheck?: (done: number) => void },
  ): Promise<void> {
    const undo: (() => Promise<void>)[] = [];
    let switched = false;
    try {
      if (to.manifest.task === 'face-embedding' && to.manifest.version !== from.manifest.version) {
        await this.reembed(to, `gallery re-embedding with ${to.manifest.version} failed`);
        undo.push(() =>
          this.withEngine(from, (old) =>
            this.reembed(old, `re-embedding the gallery back with ${from.manifest.version} failed`),
          ),
        );
      }
      await this.deps.switchTo(to);
      switched = true;
      undo.push(() => this.switchBack(from));
      if (steps.healthCheck) await this.watchHealth(steps.healthCheck);
      steps.commit();
    } catch (e) {
      if (!switched) await to.engine.close();
      const undoErrors: string[] = [];
      for (const step of undo.reverse()) {
        try {
          await step();
        } catch (u) {
          undoErrors.push((u as Error).message);
        }
      }
      const suffix = undoErrors.length > 0 ? `; undoing it failed too: ${undoErrors.join('; ')}` : '';
      throw new UpdateError(`${(e as Error).message}${suffix}`, switched);
    }
  }

  private async reembed(model: OpenedModel, failure: string): Promise<void> {
    const embedder = new FaceEmbedder(model.engine, model.manifest);
    try {
      await this.deps.reembedGallery((crops) => embedder.embed(crops), model.manifest);
    } catch (e) {
      throw new Error(`${failure}: ${(e as Error).message}`);
    }
  }

  private async switchBack(model: LoadedModel): Promise<void> {
    const engine = await this.createEngine(model.onnx, model.manifest);
    try {
      await this.deps.switchTo({ manifest: model.manifest, engine });
    } catch (e) {
      await engine.close();
      throw new Error(`switching back to ${model.manifest.version} failed: ${(e as Error).message}`);
    }
  }

  private async withEngine<T>(model: LoadedModel, fn: (opened: OpenedModel) => Promise<T>): Promise<T> {
    const engine = await this.createEngine(model.onnx, model.manifest);
    try {
      return await fn({ manifest: model.manifest, engine });
    } finally {
      await engine.close();
    }
  }

  /** healthFrames frames without an error, 90 % of them within maxLatencyMs (one GC pause must not roll back a good model). */
  private async watchHealth(onProgress: (done: number) => void): Promise<void> {
    const { healthFrames, maxLatencyMs } = this.deps.config;
    const timeoutMs = this.deps.healthTimeoutMs ?? Math.max(30_000, healthFrames * 1000);
    const latencies: number[] = [];
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `health check: only ${latencies.length} of ${healthFrames} frames within ${timeoutMs} ms`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      while (latencies.length < healthFrames) {
        const frame = await Promise.race([this.deps.health(), deadline]);
        if (frame.error)
          throw new Error(
            `health check: frame ${latencies.length + 1} of ${healthFrames} failed: ${frame.error}`,
          );
        latencies.push(frame.latencyMs);
        onProgress(latencies.length / healthFrames);
      }
    } finally {
      clearTimeout(timer);
    }
    const p90 = [...latencies].sort((a, b) => a - b)[Math.ceil(0.9 * latencies.length) - 1];
    if (p90 > maxLatencyMs)
      throw new Error(
        `health check: 90th percentile frame latency ${p90.toFixed(1)} ms is above maxLatencyMs ${maxLatencyMs}`,
      );
  }

  private createEngine(onnx: Uint8Array, manifest: ModelManifest): Promise<InferenceEngine> {
    return this.deps.createEngine(onnx, manifest);
  }

  private slotsFor(name: string): ModelSlots {
    const slots = this.deps.slots.find((s) => s.name === name);
    if (!slots) throw new UpdateError(`no model named ${JSON.stringify(name)} can be updated here`);
    return slots;
  }
}
