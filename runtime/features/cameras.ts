// The running cameras: one source and one pipeline per configured camera, with its MQTT availability.
import { createFrameSource } from '../capture/index.ts';
import { type Config, cameraSettings } from '../config/index.ts';
import type { FaceEvent } from '../events/schema.ts';
import type { Gallery } from '../matching/gallery/index.ts';
import type { FacegateMqttClient } from '../mqtt/client.ts';
import type { LiveAnalyzer } from '../pipeline/analyzer.ts';
import {
  CameraPipeline,
  type EventMeta,
  type FaceMemory,
  type PipelineConfig,
} from '../pipeline/camera-pipeline.ts';
import type { Logger } from '../util/log.ts';
import type { Settings } from './settings.ts';

export interface CamerasOptions {
  settings: Settings;
  analyzer: LiveAnalyzer;
  gallery: Gallery;
  memory: FaceMemory;
  mqtt: FacegateMqttClient;
  log: Logger;
  /** Every decision's event, from any camera. */
  onEvent: (event: FaceEvent, meta: EventMeta) => void;
  /** After every processed frame: its capture-to-done latency and the source's frame number. */
  onFrameDone?: (camera: string, latencyMs: number, faces: number, seq: number) => void;
}

export class Cameras {
  private pipelines_: CameraPipeline[] = [];

  constructor(private readonly opts: CamerasOptions) {}

  /** In the order of config.cameras. */
  get pipelines(): readonly CameraPipeline[] {
    return this.pipelines_;
  }

  async start(): Promise<void> {
    for (const camera of this.opts.settings.config.cameras) await this.startCamera(camera);
  }

  /** Live settings of every camera, from the next frame (config/set). */
  reconfigure(): void {
    const { cameras } = this.opts.settings.config;
    for (const [i, pipeline] of this.pipelines_.entries())
      pipeline.setConfig(this.pipelineConfig(cameras[i]));
  }

  /** Stops and starts one camera again: its source reads fps and restart policy only when it starts. */
  async restart(index: number): Promise<void> {
    await this.pipelines_[index].stop();
    await this.startCamera(this.opts.settings.config.cameras[index]);
  }

  async stop(): Promise<void> {
    await Promise.all(this.pipelines_.map((p) => p.stop()));
    for (const p of this.pipelines_)
      this.opts.mqtt.publishRetained(this.opts.settings.topics.cameraAvailability(p.camera), 'offline');
  }

  /** The camera's settings: its overrides merged over the global ones. */
  private pipelineConfig(camera: Config['cameras'][number]): PipelineConfig {
    const { config } = this.opts.settings;
    const { presentationAttack, unknowns, mqtt } = config;
    return {
      ...cameraSettings(config, camera),
      presentationAttack,
      unknowns,
      snapshots: mqtt.snapshots,
      ...(camera.roi ? { roi: camera.roi } : {}),
    };
  }

  private async startCamera(camera: Config['cameras'][number]): Promise<void> {
    const { opts } = this;
    const source = createFrameSource(camera);
    const log = opts.log.child(`camera ${camera.id}`);
    source.on('error', (e) => log.error(e.message));
    source.on('restart', (r) =>
      log.warn(`restarting in ${r.delayMs} ms (attempt ${r.attempt}): ${r.reason}`),
    );
    const pipeline = new CameraPipeline({
      camera: camera.id,
      source,
      analyzer: opts.analyzer,
      gallery: opts.gallery,
      memory: opts.memory,
      config: this.pipelineConfig(camera),
      onEvent: opts.onEvent,
      onError: (e) => log.error(`frame failed: ${e.message}`),
      onFrameDone: (latencyMs, faces, seq) => opts.onFrameDone?.(camera.id, latencyMs, faces, seq),
    });
    await pipeline.start();
    const index = opts.settings.config.cameras.findIndex((c) => c.id === camera.id);
    this.pipelines_[index] = pipeline;
    opts.mqtt.publishRetained(opts.settings.topics.cameraAvailability(camera.id), 'online');
  }
}
