// What the device tells the broker about itself, retained: its state every STATE_INTERVAL_MS, its
// configuration (secrets redacted), model update states, the unknown-visitor count and Home Assistant
// discovery for the enrolled people.
import { redactSecrets } from '../config/index.ts';
import type { ModelControl } from '../control/ports.ts';
import { type DeviceState, EVENT_SCHEMA_VERSION, type ModelRef } from '../events/schema.ts';
import type { Gallery } from '../matching/gallery/index.ts';
import type { UnknownVisitors } from '../matching/unknowns.ts';
import type { FacegateMqttClient } from '../mqtt/client.ts';
import type { HomeAssistantDiscovery } from '../mqtt/discovery.ts';
import type { CameraPipeline } from '../pipeline/camera-pipeline.ts';
import type { Settings } from './settings.ts';

const STATE_INTERVAL_MS = 10_000;

export interface StatePublisherOptions {
  settings: Settings;
  mqtt: FacegateMqttClient;
  discovery: HomeAssistantDiscovery;
  gallery: Gallery;
  unknowns: UnknownVisitors;
  cameras: () => readonly CameraPipeline[];
  /** The running model, for the state. */
  model: () => ModelRef;
  modelStates: () => ModelControl['states'];
  version: string;
}

export class StatePublisher {
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: StatePublisherOptions) {}

  /** `running` now and every STATE_INTERVAL_MS until stop(). */
  start(): void {
    this.timer = setInterval(() => this.state('running'), STATE_INTERVAL_MS);
    this.state('running');
  }

  /** Ends the periodic state; the final `stopping` is published with state() once the cameras stopped. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  state(status: DeviceState['status']): void {
    const { mqtt, settings } = this.opts;
    const stats = mqtt.stats();
    const state: DeviceState = {
      schemaVersion: EVENT_SCHEMA_VERSION,
      time: new Date().toISOString(),
      status,
      version: this.opts.version,
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      cameras: this.opts.cameras().map((p) => ({ id: p.camera, online: true, fps: p.stats().fps })),
      model: this.opts.model(),
      events: { published: stats.published, queued: stats.queued, dropped: stats.dropped },
    };
    mqtt.publishRetained(settings.topics.state, state);
  }

  /** Everything retained the device owns: configuration, model states, Home Assistant discovery. */
  retained(): void {
    this.opts.mqtt.publishRetained(
      this.opts.settings.topics.config,
      redactSecrets(this.opts.settings.config),
    );
    this.modelStates();
    this.people();
  }

  /** Home Assistant discovery for the current configuration and enrolled people. */
  people(): void {
    const { config, topics } = this.opts.settings;
    this.opts.discovery.update(
      config,
      topics,
      this.opts.gallery.list().map((p) => p.name),
    );
  }

  /** Clears the retained presence of people no longer enrolled (or renamed), then updates discovery. */
  forget(names: readonly string[]): void {
    for (const name of names) this.opts.mqtt.publishRetained(this.opts.settings.topics.person(name), '');
    this.people();
  }

  modelStates(): void {
    this.opts.mqtt.publishRetained(this.opts.settings.topics.model, this.opts.modelStates());
  }

  unknownCount(): void {
    this.opts.mqtt.publishRetained(this.opts.settings.topics.unknowns, {
      count: this.opts.unknowns.list().length,
    });
  }
}
