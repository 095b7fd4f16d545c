// Home Assistant MQTT discovery: retained config messages under <discoveryPrefix>/<component>/<device>/...
// that make the device appear in Home Assistant with no YAML. The entities read facegate's own topics
// through value templates, so nothing is published twice:
//   event  <camera>_face    one per camera, event_types recognized | unknown | spoof, from the event topic
//   sensor last_identity    who was seen last (or `unknown` / `spoof`), from the event topic
//   update embedder         the face model's versions and update progress, from the model topic
// All of them are unavailable unless the availability topic says `online` (`stopped` counts as offline).
// Home Assistant announces a restart with `online` on <prefix>/status; the messages are then sent again.
import type { Config } from '../config/index.ts';
import type { FacegateMqttClient, LogLevel } from './client.ts';
import type { Topics } from './topics.ts';

export const EVENT_TYPES = ['recognized', 'unknown', 'spoof'] as const;

export interface DiscoveryMessage {
  topic: string;
  payload: Record<string, unknown>;
}

/** The discovery messages for `config`; empty when homeAssistant.enabled is off. */
export function discoveryMessages(config: Config, topics: Topics, version: string): DiscoveryMessage[] {
  if (!config.homeAssistant.enabled) return [];
  const id = `facegate_${topics.deviceId}`;
  const common = {
    availability_topic: topics.availability,
    availability_template: "{{ 'online' if value == 'online' else 'offline' }}",
    device: {
      identifiers: [id],
      name: config.device.name,
      manufacturer: 'facegate',
      model: 'facegate edge camera',
      sw_version: version,
    },
    origin: { name: 'facegate', sw_version: version },
    qos: 1,
  };
  const embedder = config.models.embedder;
  const cameras = config.cameras.map(
    (camera): DiscoveryMessage => ({
      topic: topics.discovery('event', `${camera.id}_face`),
      payload: {
        ...common,
        name: `${camera.id} face`,
        unique_id: `${id}_${camera.id}_face`,
        state_topic: topics.event,
        event_types: [...EVENT_TYPES],
        // Events of every camera share one topic; rendering nothing makes HA ignore the other cameras'.
        value_template:
          `{% if value_json.camera == '${camera.id}' %}` +
          "{{ {'event_type': value_json.type, 'identity': value_json.identity, 'score': value_json.score, " +
          "'track_id': value_json.trackId, 'time': value_json.time} | to_json }}{% endif %}",
        icon: 'mdi:face-recognition',
      },
    }),
  );
  return [
    ...cameras,
    {
      topic: topics.discovery('sensor', 'last_identity'),
      payload: {
        ...common,
        name: 'Last identity',
        unique_id: `${id}_last_identity`,
        state_topic: topics.event,
        value_template: "{{ value_json.identity if value_json.type == 'recognized' else value_json.type }}",
        json_attributes_topic: topics.event,
        json_attributes_template:
          "{{ {'camera': value_json.camera, 'type': value_json.type, 'score': value_json.score, 'time': value_json.time} | to_json }}",
        icon: 'mdi:account-search',
      },
    },
    {
      topic: topics.discovery('update', 'embedder'),
      payload: {
        ...common,
        name: 'Face model',
        unique_id: `${id}_embedder`,
        entity_category: 'config',
        state_topic: topics.model,
        // The model topic holds every updatable model's state by name; HA wants this one's, in its fields.
        value_template:
          `{% set m = value_json['${embedder}'] %}` +
          "{{ {'installed_version': m.installed_version, 'latest_version': m.latest_version, " +
          "'in_progress': m.in_progress, 'update_percentage': m.progress if m.in_progress else none, " +
          `'title': '${embedder} face model'} | to_json }}`,
      },
    },
  ];
}

export class HomeAssistantDiscovery {
  private messages: DiscoveryMessage[] = [];
  private statusTopic: string | null = null;

  constructor(
    private readonly mqtt: Pick<FacegateMqttClient, 'publishRetained' | 'connection'>,
    private readonly version: string,
    private readonly log: (level: LogLevel, message: string) => void,
  ) {
    mqtt.connection.on('message', this.onMessage);
  }

  /**
   * Announces what `config` calls for and withdraws (empty retained config) what it no longer does, e.g.
   * everything when Home Assistant was turned off or the discovery prefix changed.
   */
  update(config: Config, topics: Topics): void {
    const next = discoveryMessages(config, topics, this.version);
    const kept = new Set(next.map((m) => m.topic));
    for (const { topic } of this.messages) if (!kept.has(topic)) this.mqtt.publishRetained(topic, '');
    this.messages = next;
    this.announce();
    const statusTopic = next.length > 0 ? topics.homeAssistantStatus : null;
    if (statusTopic === this.statusTopic) return;
    const connection = this.mqtt.connection;
    if (this.statusTopic) connection.unsubscribe(this.statusTopic);
    if (statusTopic) connection.subscribe(statusTopic, { qos: 1 });
    this.statusTopic = statusTopic;
  }

  stop(): void {
    this.mqtt.connection.removeListener('message', this.onMessage);
  }

  private announce(): void {
    for (const { topic, payload } of this.messages) this.mqtt.publishRetained(topic, payload);
  }

  private readonly onMessage = (topic: string, payload: Buffer): void => {
    if (topic !== this.statusTopic || payload.toString() !== 'online') return;
    this.log('info', 'Home Assistant came online: discovery sent again');
    this.announce();
  };
}
