// Every decision's event to MQTT (queued while offline), and what Home Assistant sees of it: the camera's
// device trigger, who was last seen where, how many strangers are kept.
import type { FaceEvent } from '../events/schema.ts';
import type { FacegateMqttClient } from '../mqtt/client.ts';
import type { EventMeta } from '../pipeline/camera-pipeline.ts';
import type { Logger } from '../util/log.ts';
import type { Settings } from './settings.ts';
import type { StatePublisher } from './state-publisher.ts';

export interface EventPublisherOptions {
  settings: Settings;
  mqtt: FacegateMqttClient;
  state: StatePublisher;
  /** Every event once MQTT took it, with the publish outcome and its capture-to-handed-over latency. */
  onPublished?: (event: FaceEvent, info: { outcome: string; latencyMs: number }) => void;
  log: Logger;
}

export class EventPublisher {
  constructor(private readonly opts: EventPublisherOptions) {}

  publish(event: FaceEvent, meta: EventMeta): void {
    const { mqtt, settings } = this.opts;
    if (mqtt.connected)
      mqtt.connection.publish(settings.topics.cameraTrigger(event.camera), event.type, { qos: 1 }, () => {});
    if (event.type === 'recognized' && event.identity !== null)
      mqtt.publishRetained(settings.topics.person(event.identity), {
        camera: event.camera,
        lastSeen: event.time,
      });
    if (event.unknownId !== undefined) this.opts.state.unknownCount();
    mqtt.publishEvent(event).then(
      (outcome) => this.opts.onPublished?.(event, { outcome, latencyMs: Date.now() - meta.capturedAt }),
      (e: Error) => this.opts.log.error(`event ${event.id} not published: ${e.message}`),
    );
  }
}
