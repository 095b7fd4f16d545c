// The control plane's ports (declared in ./handlers) over the running application: what each remote
// command does to this device.

import { type ChangeClassification, type Config, checkTargetFars } from '../config/index.ts';
import type { ModelRef } from '../events/schema.ts';
import type { Gallery } from '../matching/gallery/index.ts';
import { normalizePersonName } from '../matching/gallery/records.ts';
import { downloadModel, type ModelChunk } from '../model-update/download.ts';
import type { ModelSlots } from '../model-update/slots.ts';
import { type ChunkReceipt, ChunkTransfer } from '../model-update/transfer.ts';
import { ModelUpdater, type UpdateResult, type UpdateState } from '../model-update/updater.ts';
import { type ModelManifest, validateManifest } from '../models/manifest.ts';
import { type LiveAnalyzer, openModelEngine, type UpdatableRole } from '../pipeline/analyzer.ts';
import type { CameraPipeline, FaceMemory } from '../pipeline/camera-pipeline.ts';
import { enrollPhotos } from '../pipeline/enroll.ts';
import {
  type CommandParams,
  DEFAULT_TRANSFER_TIMEOUT_SECONDS,
  type ModelStatus,
  type ModelTransfer,
  type ModelUpdateResult,
} from './api.ts';
import type { ConfigPort, DevicePort, GalleryPort, ModelPort } from './handlers/index.ts';
import { createHeartbeat } from './heartbeat.ts';

/** A manifest is a few KB; anything much larger is not one. */
const MAX_MANIFEST_BYTES = 64 * 1024;
const MANIFEST_TIMEOUT_MS = 30_000;

export interface ConfigPortOptions {
  current(): Config;
  /** The file the configuration was loaded from; without one config/set is refused. */
  file: string | undefined;
  /** Refuses a configuration the device cannot run, before it is written. */
  check(config: Config): void;
  apply(config: Config, changes: ChangeClassification): Promise<void>;
}

export function configPort(opts: ConfigPortOptions): ConfigPort {
  return {
    current: opts.current,
    // Read by config/set right before it writes. A change written anywhere else would be silently lost
    // at the next start, so a device started without a file refuses instead.
    get path() {
      if (!opts.file) throw new Error('no config file to persist to: start facegate with --config FILE');
      return opts.file;
    },
    check: opts.check,
    applyLive: opts.apply,
  };
}

/**
 * The gallery commands over the running device. `onPeopleChanged` hears every change of who is enrolled
 * or of the unknown visitors (with the names removed), e.g. to re-announce Home Assistant entities.
 */
export function galleryPort(
  gallery: Gallery,
  analyzer: LiveAnalyzer,
  memory: FaceMemory,
  onPeopleChanged: (removed: string[]) => void = () => {},
): GalleryPort {
  const { unknowns, recent } = memory;
  const changed = <T>(result: T, removed: string[] = []): T => {
    onPeopleChanged(removed);
    return result;
  };
  return {
    list: () => gallery.list().map((person) => ({ ...person, createdAt: person.createdAt.toISOString() })),
    remove: (name) => {
      const removed = gallery.remove(name);
      return removed ? changed(removed, [normalizePersonName(name)]) : removed;
    },
    enroll: async (name, images) =>
      changed(
        await analyzer.use((current) =>
          enrollPhotos(
            current,
            gallery,
            name,
            images.map((data, i) => ({ source: `face/enroll image ${i + 1}`, data })),
          ),
        ),
      ),
    // Under the analyzer, like a photo enrolment: the faces are labelled with the model running now.
    enrollFromUnknown: async (name, unknownId) =>
      changed(await analyzer.use(async (current) => unknowns.enrollAs(unknownId, name, current.modelRef))),
    enrollFromEvent: async (name, eventId) =>
      changed(
        await analyzer.use(async (current) => {
          const face = recent.get(eventId);
          const model = current.modelRef;
          if (face.model.name !== model.name || face.model.version !== model.version)
            throw new Error(`event ${eventId} was seen with another model; enrol from a photo instead`);
          const { best } = face;
          return {
            added: gallery.enroll(
              name,
              [{ embedding: best.embedding, crop: best.crop, source: `event ${eventId}` }],
              model,
            ).added,
          };
        }),
      ),
    reject: (eventId) => {
      const { event, embeddings, model } = recent.get(eventId);
      if (event.type !== 'recognized' || event.identity === null)
        throw new Error(`event ${eventId} is ${event.type}, not a recognition: there is nobody to reject`);
      const negatives = unknowns.addNegatives(event.identity, embeddings, model, `face/reject ${eventId}`);
      return { identity: event.identity, negatives };
    },
    unknowns: () => unknowns.list(),
    dismiss: (unknownId) => changed(unknowns.dismiss(unknownId)),
  };
}

export interface DevicePortOptions {
  pipelines(): readonly CameraPipeline[];
  analyzer: LiveAnalyzer;
  /** Events waiting in the offline queue. */
  queueDepth(): number;
  publishSnapshot(jpeg: Buffer): Promise<void>;
  /** Stops facegate cleanly and exits; must return at once (it runs inside the request being answered). */
  restart(): void;
}

export function devicePort(opts: DevicePortOptions): DevicePort {
  const health = createHeartbeat(() => {
    const stats = opts.pipelines().map((p) => p.stats());
    const mean = (stage: 'detect' | 'embed' | 'total') =>
      stats.length === 0
        ? 0
        : Math.round((stats.reduce((sum, s) => sum + s.stageMs[stage], 0) / stats.length) * 10) / 10;
    return {
      cameras: stats.map((s) => ({ id: s.camera, fps: s.fps, droppedFrames: s.framesDropped })),
      stageLatencyMs: { detect: mean('detect'), embed: mean('embed'), total: mean('total') },
      models: opts.analyzer.current.modelRefs(),
      queueDepth: opts.queueDepth(),
    };
  });
  return {
    health,
    snapshot: async (wanted) => {
      const pipelines = opts.pipelines();
      const pipeline = wanted === undefined ? pipelines[0] : pipelines.find((p) => p.camera === wanted);
      if (!pipeline) throw new Error(wanted === undefined ? 'no camera is running' : `no camera '${wanted}'`);
      const jpeg = await pipeline.snapshot();
      if (!jpeg) throw new Error(`camera ${pipeline.camera} has not delivered a frame yet`);
      return { camera: pipeline.camera, jpeg };
    },
    publishSnapshot: opts.publishSnapshot,
    restart: opts.restart,
  };
}

export interface ModelControlOptions {
  /** Read per request: models.update applies live. */
  config(): Config;
  /** Engines of new versions open like the running ones (engine and threads change with a restart). */
  models: Config['models'];
  slots: Record<UpdatableRole, ModelSlots>;
  analyzer: LiveAnalyzer;
  gallery: Gallery;
  /** Called whenever `states` changed. */
  onStateChange(): void;
}

/**
 * model/update, model/chunk, model/rollback and model/status over ModelUpdater. A manifest URL names one
 * model's manifest; its .onnx is fetched from the same directory (`<manifest URL dir>/<manifest.file>`).
 * A model/update with the manifest itself and a `transfer` opens a chunked transfer, one at a time, which
 * model/chunk messages feed; the updater assembles and checks the model as it does a download.
 */
export class ModelControl implements ModelPort {
  private readonly updater: ModelUpdater;
  private readonly states_: Record<string, UpdateState> = {};
  private lastUpdate: ModelStatus['lastUpdate'] = null;
  /** Frames are held from the gallery's re-embedding until the switch (see reembedGallery). */
  private holding = false;
  /** The chunked transfer in progress: from its model/update until that is answered. */
  private transfer?: ChunkTransfer;

  constructor(private readonly opts: ModelControlOptions) {
    const { analyzer, gallery } = opts;
    this.updater = new ModelUpdater({
      get config() {
        return opts.config().models.update;
      },
      slots: Object.values(opts.slots),
      publishState: (state) => {
        this.states_[state.name] = state;
        opts.onStateChange();
      },
      switchTo: async (model) => {
        // An embedder whose calibration does not cover a configured target FAR would fail every frame;
        // refused here, the swap keeps the running analyzer and the updater rolls back.
        await analyzer.swap((current) => {
          const next = current.withModel(model);
          checkTargetFars(opts.config(), (far) => next.thresholdFor(far));
          return next;
        });
        this.release();
      },
      health: () => analyzer.nextFrame(),
      reembedGallery: async (embed, manifest) => {
        // From here the gallery only matches the new model, so frames wait for it rather than miss everyone.
        if (!this.holding) {
          this.holding = true;
          await analyzer.pause();
        }
        const model = { name: manifest.name, version: manifest.version };
        await gallery.reembed(model, async (crop) => (await embed([crop]))[0]);
      },
      createEngine: (onnx, manifest) => openModelEngine({ onnx, manifest }, opts.models),
    });
    for (const slots of Object.values(opts.slots)) this.states_[slots.name] = this.updater.status(slots.name);
  }

  /** The update state of every updatable model, by model name: the retained model topic. */
  get states(): Readonly<Record<string, UpdateState>> {
    return this.states_;
  }

  async update(request: CommandParams['model/update'], signal?: AbortSignal): Promise<ModelUpdateResult> {
    if ('manifest' in request) return this.receive(request.manifest, request.transfer, signal);
    const settings = this.opts.config().models.update;
    const url = request.manifestUrl ?? settings.manifestUrl;
    if (!url) throw this.fail('no manifestUrl given and models.update.manifestUrl is not set');
    const refused = manifestUrlProblem(url, settings);
    if (refused) throw this.fail(refused);
    const manifest = await fetchManifest(url).catch((e: Error) => {
      throw this.fail(e.message);
    });
    this.checkManifest(manifest, `the manifest at ${where(url)}`);
    if (this.upToDate(manifest)) return { updated: false, status: this.status() };
    const onnxUrl = new URL(encodeURIComponent(String(manifest.file)), url).href;
    await this.run(() => this.updater.update({ name: manifest.name, manifest, url: onnxUrl }), 'updated');
    return { updated: true, status: this.status() };
  }

  /** model/chunk: one chunk for the transfer in progress. */
  chunk(chunk: ModelChunk): ChunkReceipt {
    const open = this.transfer;
    if (open?.id === chunk.id) return open.accept(chunk);
    throw new Error(
      open
        ? `model chunk ${chunk.index} belongs to transfer ${chunk.id}, but the transfer in progress is ${open.id}`
        : `no transfer ${chunk.id} is in progress: send model/update with the manifest and the transfer first`,
    );
  }

  /**
   * A model sent in chunks. Everything up to the updater's first wait runs synchronously, so the transfer
   * is open (or the request refused) before the next MQTT message is read.
   */
  private async receive(
    manifest: ModelManifest,
    { id, total, timeoutSeconds = DEFAULT_TRANSFER_TIMEOUT_SECONDS }: ModelTransfer,
    signal?: AbortSignal,
  ): Promise<ModelUpdateResult> {
    this.checkManifest(manifest, 'the manifest');
    const busy = this.transfer;
    if (busy) {
      throw new Error(
        `transfer ${busy.id} is still in progress (${busy.received} of ${busy.total} chunks): send the next model/update once it is answered`,
      );
    }
    if (this.upToDate(manifest)) return { updated: false, status: this.status() };
    const transfer = new ChunkTransfer({ id, total, idleTimeoutMs: timeoutSeconds * 1000 });
    this.transfer = transfer;
    const cancel = () => transfer.cancel('facegate is stopping');
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      await this.run(
        () => this.updater.update({ name: manifest.name, manifest, chunks: transfer }),
        'updated',
      );
    } finally {
      signal?.removeEventListener('abort', cancel);
      // Whatever happened, nothing of the transfer stays in memory and later chunks are refused.
      transfer.close();
      this.transfer = undefined;
    }
    return { updated: true, status: this.status() };
  }

  /** Refuses, in sentences naming each field, a manifest the rest of the update could not even read. */
  private checkManifest(manifest: unknown, what: string): asserts manifest is ModelManifest {
    const errors = validateManifest(manifest);
    if (errors.length > 0) throw this.fail(`${what} is not a valid model manifest: ${errors.join('; ')}`);
  }

  /** The same version with the same bytes as the running model: nothing to do (recorded as such). */
  private upToDate(manifest: ModelManifest): boolean {
    const running = this.opts.analyzer.current.manifests.find((m) => m.name === manifest.name);
    if (running?.version !== manifest.version || running.sha256 !== manifest.sha256) return false;
    this.record('up-to-date');
    return true;
  }

  /** Every model running an installed version goes back to what it replaced. */
  async rollback(): Promise<ModelStatus> {
    const names = Object.values(this.opts.slots)
      .filter((slots) => slots.pointer() !== undefined)
      .map((slots) => slots.name);
    if (names.length === 0) throw this.fail('nothing to roll back to: the bundled models are running');
    for (const name of names) await this.run(() => this.updater.rollback(name), 'rolled-back');
    return this.status();
  }

  status(): ModelStatus {
    const previous = Object.entries(this.opts.slots).flatMap(([role, slots]): [string, ModelRef][] => {
      try {
        if (slots.pointer() === undefined) return [];
        const { manifest } = slots.previous();
        return [[role, { name: manifest.name, version: manifest.version }]];
      } catch {
        // An unusable previous version is nothing model/rollback could return to.
        return [];
      }
    });
    return {
      active: this.opts.analyzer.current.modelRefs(),
      previous: previous.length > 0 ? Object.fromEntries(previous) : null,
      lastUpdate: this.lastUpdate,
    };
  }

  private async run(job: () => Promise<UpdateResult>, outcome: 'updated' | 'rolled-back'): Promise<void> {
    let result: UpdateResult;
    try {
      result = await job();
    } catch (e) {
      this.release();
      throw e;
    }
    // No state: refused because another job is running, whose hold on the frames is not ours to end.
    if (!result.ok && !result.state) throw new Error(result.error);
    // A job that failed between re-embedding and switching never reached switchTo.
    this.release();
    if (!result.ok) throw this.fail(result.error, result.state?.state === 'rolled_back');
    this.record(outcome);
  }

  private release(): void {
    if (!this.holding) return;
    this.holding = false;
    this.opts.analyzer.resume();
  }

  private fail(message: string, rolledBack = false): Error {
    this.record(rolledBack ? 'rolled-back' : 'failed', message);
    return new Error(message);
  }

  private record(outcome: NonNullable<ModelStatus['lastUpdate']>['outcome'], message?: string): void {
    this.lastUpdate = { time: new Date().toISOString(), outcome, ...(message ? { message } : {}) };
  }
}

/** A URL as errors name it: origin and path, never credentials or a query. */
function where(url: string): string {
  try {
    const { origin, pathname } = new URL(url);
    return `${origin}${pathname}`;
  } catch {
    return 'the given manifestUrl';
  }
}

/**
 * Why the device may not fetch `url`: only http(s), and only from models.update.manifestUrl's origin or
 * one in models.update.allowedOrigins, so a request cannot send the device to a host of its choosing
 * (the LAN, loopback, a cloud metadata address).
 */
export function manifestUrlProblem(url: string, settings: Config['models']['update']): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'manifestUrl is not a URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return `manifestUrl must be http or https, not ${parsed.protocol}`;
  const allowed = [...settings.allowedOrigins];
  if (settings.manifestUrl) allowed.push(new URL(settings.manifestUrl).origin);
  if (allowed.includes(parsed.origin)) return null;
  return `manifestUrl ${where(url)} is refused: the device fetches models only from ${allowed.length > 0 ? allowed.join(', ') : 'nowhere yet'} (models.update.manifestUrl's origin and models.update.allowedOrigins, set on the device)`;
}

async function fetchManifest(url: string): Promise<unknown> {
  const bytes = await downloadModel(url, { maxBytes: MAX_MANIFEST_BYTES, timeoutMs: MANIFEST_TIMEOUT_MS });
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    // The parser's message quotes the page; a device must not read pages out to whoever asked.
    throw new Error(`the manifest at ${where(url)} is not JSON (${bytes.length} bytes)`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error(`the manifest at ${where(url)} is not a JSON object`);
  return parsed;
}
