// Every MQTT topic facegate publishes or subscribes to is built here, so the topic tree documented in
// docs/mqtt.md has exactly one implementation.

import { assertTopicId, TopicError, topicIdProblem } from '../util/topic-id.ts';

/** The device-id slot that addresses every device at once; a device may not be called this. */
export const ALL_DEVICES = 'all';

export const DEFAULT_DISCOVERY_PREFIX = 'homeassistant';

export type AvailabilityPayload = 'online' | 'offline' | 'stopped';

/** Home Assistant MQTT discovery components facegate may announce. */
export type DiscoveryComponent =
  | 'sensor'
  | 'binary_sensor'
  | 'camera'
  | 'button'
  | 'switch'
  | 'image'
  | 'event'
  | 'update'
  | 'device_automation';

export interface TopicConfig {
  /** One or more topic levels, e.g. `facegate` or `site1/facegate`. */
  baseTopic: string;
  deviceId: string;
  /** Home Assistant discovery prefix; `homeassistant` unless HA was configured otherwise. */
  discoveryPrefix?: string;
}

export interface Topics {
  readonly baseTopic: string;
  readonly deviceId: string;
  /** Retained `online` | `offline` (last will) | `stopped`. */
  readonly availability: string;
  /** QoS 1 stream of face events for all cameras of the device (camera is in the payload). */
  readonly event: string;
  /** Retained state summary. */
  readonly state: string;
  /** Retained effective configuration, secrets redacted. */
  readonly config: string;
  /** Retained model update state. */
  readonly model: string;
  /** Health report on schedules.heartbeat (not retained). */
  readonly heartbeat: string;
  /** Latest snapshot JPEG (not retained). */
  readonly snapshot: string;
  /** Home Assistant birth/last-will topic (`online`/`offline`), so discovery can be re-sent. */
  readonly homeAssistantStatus: string;
  /** Matches every discovery config of this device, to find ones a previous run left behind. */
  readonly discoverySubscription: string;
  /** Retained `{ count }` of unknown visitors kept. */
  readonly unknowns: string;
  /** Retained `online` while the camera runs, `offline` once it stopped. */
  cameraAvailability(camera: string): string;
  /** The event type (`recognized`, `unknown`, `spoof`) of every event of the camera, for HA device triggers. */
  cameraTrigger(camera: string): string;
  /** Retained `{ camera, lastSeen }`: where and when the person was last recognised. */
  person(name: string): string;
  /** The two subscriptions receiving every request for this device (`request/#`: commands have levels). */
  readonly requestSubscriptions: readonly [string, string];
  request(command: string): string;
  response(command: string): string;
  /** Fleet-wide request received by every device under the same base topic. */
  allRequest(command: string): string;
  /** `<prefix>/<component>/<deviceId>/<objectId>/config`. */
  discovery(component: DiscoveryComponent, objectId: string): string;
}

export interface ParsedRequest {
  scope: 'device' | 'all';
  command: string;
}

/** Why `command` cannot be a command name (one or more levels, each a valid topic level), or null. */
export function commandProblem(command: string): string | null {
  if (typeof command !== 'string' || command.length === 0) return 'is empty';
  for (const level of command.split('/')) {
    const problem = topicIdProblem(level);
    if (problem !== null) return `has a level ${JSON.stringify(level)} that ${problem}`;
  }
  return null;
}

function assertCommand(command: string): string {
  const problem = commandProblem(command);
  if (problem !== null) throw new TopicError(`command ${JSON.stringify(command)} ${problem}`);
  return command;
}

function assertBaseTopic(base: string): string {
  if (typeof base !== 'string' || base.length === 0) throw new TopicError('base topic is empty');
  // `$`-topics belong to the broker ($SYS) and are not matched by `#` subscriptions.
  if (base.startsWith('$')) throw new TopicError(`base topic ${JSON.stringify(base)} starts with $`);
  for (const level of base.split('/')) assertTopicId(level, `base topic level of ${JSON.stringify(base)}`);
  return base;
}

export function buildTopics(cfg: TopicConfig): Topics {
  const base = assertBaseTopic(cfg.baseTopic);
  const deviceId = assertTopicId(cfg.deviceId, 'device id');
  if (deviceId === ALL_DEVICES)
    throw new TopicError(`device id "${ALL_DEVICES}" is reserved for fleet requests`);
  const prefix = assertBaseTopic(cfg.discoveryPrefix ?? DEFAULT_DISCOVERY_PREFIX);
  const device = `${base}/${deviceId}`;
  return {
    baseTopic: base,
    deviceId,
    availability: `${device}/availability`,
    event: `${device}/event`,
    state: `${device}/state`,
    config: `${device}/config`,
    model: `${device}/model`,
    heartbeat: `${device}/heartbeat`,
    snapshot: `${device}/snapshot`,
    homeAssistantStatus: `${prefix}/status`,
    discoverySubscription: `${prefix}/+/${deviceId}/+/config`,
    unknowns: `${device}/unknowns`,
    cameraAvailability: (camera) => `${device}/camera/${assertTopicId(camera, 'camera id')}/availability`,
    cameraTrigger: (camera) => `${device}/camera/${assertTopicId(camera, 'camera id')}/trigger`,
    person: (name) => `${device}/person/${assertTopicId(name, 'person name')}`,
    requestSubscriptions: [`${device}/request/#`, `${base}/${ALL_DEVICES}/request/#`],
    request: (command) => `${device}/request/${assertCommand(command)}`,
    response: (command) => `${device}/response/${assertCommand(command)}`,
    allRequest: (command) => `${base}/${ALL_DEVICES}/request/${assertCommand(command)}`,
    discovery: (component, objectId) =>
      `${prefix}/${assertTopicId(component, 'discovery component')}/${deviceId}/${assertTopicId(objectId, 'discovery object id')}/config`,
  };
}

/**
 * Maps an incoming topic to the request it carries, or null when the topic is not a well-formed request
 * for this device (other devices, responses, empty or invalid command levels). Everything after
 * `request/` is the command, known or not, so that the router can answer an unknown one with an error.
 */
export function parseRequestTopic(topics: Topics, topic: string): ParsedRequest | null {
  const base = `${topics.baseTopic}/`;
  if (!topic.startsWith(base)) return null;
  const [target, kind, ...levels] = topic.slice(base.length).split('/');
  if (kind !== 'request' || levels.length === 0) return null;
  const command = levels.join('/');
  if (commandProblem(command) !== null) return null;
  if (target === topics.deviceId) return { scope: 'device', command };
  if (target === ALL_DEVICES) return { scope: 'all', command };
  return null;
}
