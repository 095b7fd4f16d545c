// Home Assistant MQTT discovery: retained config messages under <discoveryPrefix>/<component>/<device>/...
// that make the device appear in Home Assistant with no YAML. The entities read facegate's own topics
// through value templates, so nothing is published twice:
//   event  <camera>_face    one per camera, event_types recognized | unknown | spoof, from the event topic
//   sensor last_identity    who was seen last (or `unknown` / `spoof`), from the event topic
//   update embedder         the face model's versions and update progress, from the model topic
//   device_automation <camera>_<type>   a device trigger per camera and event type, from the camera's trigger topic
//   sensor person_<slug>    per enrolled person: the camera they were last recognised at; attribute lastSeen
//   sensor person_<slug>_last_seen      the same person's last recognition, as a timestamp
//   sensor unknowns         how many unknown visitors are kept
// All of them are unavailable unless the availability topic says `online` (`stopped` counts as offline);
// a camera's event entity also needs its camera's availability topic to say `online`.
// Home Assistant announces a restart with `online` on <prefix>/status; the messages are then sent again.
// Configs of this device found on the broker that are no longer wanted (a camera or person removed while
// facegate was stopped) are withdrawn with an empty retained message.
import { createHash } from 'node:crypto';
import type { Config } from '../config/index.ts';
import type { Logger } from '../util/log.ts';
import type { FacegateMqttClient } from './client.ts';
import type { Topics } from './topics.ts';

export const EVENT_TYPES = ['recognized', 'unknown', 'spoof'] as const;

export interface DiscoveryMessage {
  topic: string;
  payload: Record<string, unknown>;
}

/**
 * A discovery object id for a person: HA wants [a-zA-Z0-9_-], names may be anything a topic level allows,
 * so the readable part is folded and a hash of the name keeps two names from colliding.
 */
export function personObjectId(name: string): string {
  const readable = name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 32);
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `person_${readable ? `${readable}_` : ''}${hash}`;
}

/** The discovery messages for `config` and the enrolled `people`; empty when homeAssistant.enabled is off. */
export function discoveryMessages(
  config: Config,
  topics: Topics,
  version: string,
  people: readonly string[] = [],
): DiscoveryMessage[] {
  if (!config.homeAssistant.enabled) return [];
  const id = `facegate_${topics.deviceId}`;
  const online = "{{ 'online' if value == 'online' else 'offline' }}";
  const owner = {
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
  const common = { ...owner, availability_topic: topics.availability, availability_template: online };
  const embedder = config.models.embedder;
  const cameras = config.cameras.map(
    (camera): DiscoveryMessage => ({
      topic: topics.discovery('event', `${camera.id}_face`),
      payload: {
        ...owner,
        // The device and this camera: a camera that stopped shows unavailable on its own.
        availability: [
          { topic: topics.availability, value_template: online },
          { topic: topics.cameraAvailability(camera.id) },
        ],
        availability_mode: 'all',
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
  const triggers = config.cameras.flatMap((camera) =>
    EVENT_TYPES.map(
      (type): DiscoveryMessage => ({
        topic: topics.discovery('device_automation', `${camera.id}_${type}`),
        payload: {
          automation_type: 'trigger',
          topic: topics.cameraTrigger(camera.id),
          payload: type,
          type,
          subtype: camera.id,
          ...owner,
        },
      }),
    ),
  );
  const persons = people.flatMap((name): DiscoveryMessage[] => {
    const objectId = personObjectId(name);
    const state = topics.person(name);
    return [
      {
        topic: topics.discovery('sensor', objectId),
        payload: {
          ...common,
          name,
          unique_id: `${id}_${objectId}`,
          state_topic: state,
          value_template: '{{ value_json.camera }}',
          json_attributes_topic: state,
          icon: 'mdi:account',
        },
      },
      {
        topic: topics.discovery('sensor', `${objectId}_last_seen`),
        payload: {
          ...common,
          name: `${name} last seen`,
          unique_id: `${id}_${objectId}_last_seen`,
          state_topic: state,
          value_template: '{{ value_json.lastSeen }}',
          device_class: 'timestamp',
          icon: 'mdi:account-clock',
        },
      },
    ];
  });
  return [
    ...cameras,
    ...triggers,
    ...persons,
    {
      topic: topics.discovery('sensor', 'unknowns'),
      payload: {
        ...common,
        name: 'Unknown visitors',
        unique_id: `${id}_unknowns`,
        state_topic: topics.unknowns,
        value_template: '{{ value_json.count }}',
        state_class: 'measurement',
        icon: 'mdi:account-question',
      },
    },
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
  /** The HA status topic and this device's discovery configs, while discovery is on. */
  private subscriptions: string[] = [];

  constructor(
    private readonly mqtt: Pick<FacegateMqttClient, 'publishRetained' | 'connection'>,
    private readonly version: string,
    private readonly log: Logger,
  ) {
    mqtt.connection.on('message', this.onMessage);
  }

  /**
   * Announces what `config` calls for and withdraws (empty retained config) what it no longer does, e.g.
   * everything when Home Assistant was turned off or the discovery prefix changed.
   */
  update(config: Config, topics: Topics, people: readonly string[]): void {
    const next = discoveryMessages(config, topics, this.version, people);
    const kept = new Set(next.map((m) => m.topic));
    for (const { topic } of this.messages) if (!kept.has(topic)) this.mqtt.publishRetained(topic, '');
    this.messages = next;
    this.announce();
    const on = next.length > 0;
    const subscriptions = on ? [topics.homeAssistantStatus, topics.discoverySubscription] : [];
    if (JSON.stringify(subscriptions) === JSON.stringify(this.subscriptions)) return;
    const connection = this.mqtt.connection;
    if (this.subscriptions.length > 0) connection.unsubscribe([...this.subscriptions]);
    // The broker hands over the retained configs of this device at once: stale ones are withdrawn then.
    if (on) connection.subscribe([...subscriptions], { qos: 1 });
    this.subscriptions = subscriptions;
  }

  stop(): void {
    this.mqtt.connection.removeListener('message', this.onMessage);
  }

  private announce(): void {
    for (const { topic, payload } of this.messages) this.mqtt.publishRetained(topic, payload);
  }

  private readonly onMessage = (topic: string, payload: Buffer): void => {
    const [statusTopic, configs] = this.subscriptions;
    if (statusTopic === undefined) return;
    if (topic === statusTopic) {
      if (payload.toString() !== 'online') return;
      this.log.info('Home Assistant came online: discovery sent again');
      this.announce();
      return;
    }
    if (payload.length === 0 || !matchesDeviceConfig(configs, topic)) return;
    if (this.messages.some((m) => m.topic === topic)) return;
    this.log.info(`withdrawing ${topic}: no longer part of this device`);
    this.mqtt.publishRetained(topic, '');
  };
}

/** Whether `topic` is matched by `<prefix>/+/<device>/+/config`. */
function matchesDeviceConfig(pattern: string, topic: string): boolean {
  const want = pattern.split('/');
  const got = topic.split('/');
  return want.length === got.length && want.every((level, i) => level === '+' || level === got[i]);
}
