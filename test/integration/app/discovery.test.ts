// Home Assistant MQTT discovery from the running device, over a real mosquitto.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Mosquitto, startMosquitto } from '../../helpers/mosquitto.ts';
import { Subscriber, waitUntil } from '../mqtt/support.ts';
import { DEVICE, Operator, type RunningApp, startApp } from './harness.ts';

let dir: string;
let broker: Mosquitto;
let device: RunningApp | undefined;
const clients: { end(): Promise<void> }[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-ha-'));
  broker = await startMosquitto();
});

afterEach(async () => {
  await device?.app.stop().catch(() => {});
  device = undefined;
  for (const client of clients.splice(0)) await client.end();
  await broker.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const CONFIGS = [
  `homeassistant/event/${DEVICE}/door_face/config`,
  `homeassistant/sensor/${DEVICE}/last_identity/config`,
  `homeassistant/update/${DEVICE}/embedder/config`,
];

describe('Home Assistant discovery', () => {
  it('publishes retained discovery configs and sends them again when Home Assistant comes online', async () => {
    device = await startApp(dir, broker.url, { homeAssistant: { enabled: true } });
    await waitUntil('the device online', () => device?.app.mqtt.connected === true);
    // Home Assistant starting later: it gets the configs from the broker's retained store.
    const ha = await Subscriber.connect(broker.url, ['homeassistant/#']);
    clients.push(ha);
    await waitUntil('every discovery config', () => CONFIGS.every((t) => ha.on(t).length === 1));
    expect(CONFIGS.every((t) => ha.on(t)[0].retain)).toBe(true);

    const [event, sensor, update] = CONFIGS.map((t) => JSON.parse(ha.on(t)[0].payload));
    const common = {
      availability_topic: `facegate/${DEVICE}/availability`,
      device: expect.objectContaining({ identifiers: [`facegate_${DEVICE}`], name: 'Test door' }),
    };
    expect(event).toMatchObject({
      ...common,
      unique_id: `facegate_${DEVICE}_door_face`,
      state_topic: `facegate/${DEVICE}/event`,
      event_types: ['recognized', 'unknown', 'spoof'],
      value_template: expect.stringContaining("value_json.camera == 'door'"),
    });
    expect(sensor).toMatchObject({ ...common, state_topic: `facegate/${DEVICE}/event` });
    expect(update).toMatchObject({
      ...common,
      state_topic: `facegate/${DEVICE}/model`,
      value_template: expect.stringContaining("value_json['facerec']"),
    });
    // The update entity's source: every updatable model's state by name, retained.
    const op = await Operator.connect(broker.url, device.app.topics);
    clients.push(op);
    await waitUntil('the retained model state', () => op.sub.on(op.topics.model).length > 0);
    expect(JSON.parse(op.sub.on(op.topics.model)[0].payload)).toMatchObject({
      facerec: { state: 'idle', installed_version: '1.0.0', in_progress: false },
      blazeface: { state: 'idle', installed_version: '1.0.0' },
    });

    await ha.client.publishAsync('homeassistant/status', 'online', { qos: 1 });
    await waitUntil('the configs again', () => CONFIGS.every((t) => ha.on(t).length === 2));
    // Sent to a live subscription, so not flagged retained, and the same as before.
    expect(CONFIGS.map((t) => ha.on(t)[1].retain)).toEqual([false, false, false]);
    expect(CONFIGS.map((t) => ha.on(t)[1].payload)).toEqual(CONFIGS.map((t) => ha.on(t)[0].payload));

    // Turned off live: the entities are withdrawn with empty retained configs.
    const off = await op.ask('config/set', { config: { homeAssistant: { enabled: false } } });
    expect(off).toMatchObject({ status: 'ok', data: { applied: ['homeAssistant.enabled'] } });
    await waitUntil('the withdrawals', () => CONFIGS.every((t) => ha.on(t).at(-1)?.payload === ''));
  });
});
