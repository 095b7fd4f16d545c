// Home Assistant MQTT discovery from the running device, over a real mosquitto.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { personObjectId } from '../../../runtime/mqtt/discovery.ts';
import { type Mosquitto, startMosquitto } from '../../helpers/mosquitto.ts';
import { Subscriber, waitUntil } from '../mqtt/support.ts';
import { DEVICE, hamiltonCamera, LIN, Operator, type RunningApp, startApp } from './harness.ts';

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
      device: common.device,
      // The device and the camera must both be up.
      availability: [
        { topic: `facegate/${DEVICE}/availability` },
        { topic: `facegate/${DEVICE}/camera/door/availability` },
      ],
      availability_mode: 'all',
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

  it('announces people, device triggers and unknowns, follows people changes and withdraws what a restart left behind', async () => {
    const porch = { ...hamiltonCamera(true), id: 'porch' };
    device = await startApp(dir, broker.url, {
      homeAssistant: { enabled: true },
      cameras: [hamiltonCamera(true), porch],
    });
    const ha = await Subscriber.connect(broker.url, [
      'homeassistant/#',
      `facegate/${DEVICE}/camera/#`,
      `facegate/${DEVICE}/person/#`,
    ]);
    clients.push(ha);
    const triggers = ['door', 'porch'].flatMap((camera) =>
      ['recognized', 'unknown', 'spoof'].map(
        (type) => `homeassistant/device_automation/${DEVICE}/${camera}_${type}/config`,
      ),
    );
    await waitUntil('the device triggers', () => triggers.every((t) => ha.on(t).length > 0));
    expect(JSON.parse(ha.on(triggers[0])[0].payload)).toMatchObject({
      automation_type: 'trigger',
      topic: `facegate/${DEVICE}/camera/door/trigger`,
      payload: 'recognized',
      type: 'recognized',
      subtype: 'door',
      device: { identifiers: [`facegate_${DEVICE}`] },
    });
    const unknowns = `homeassistant/sensor/${DEVICE}/unknowns/config`;
    await waitUntil('the unknowns sensor', () => ha.on(unknowns).length > 0);
    expect(JSON.parse(ha.on(unknowns)[0].payload)).toMatchObject({
      state_topic: `facegate/${DEVICE}/unknowns`,
    });
    await waitUntil('both cameras online', () =>
      ['door', 'porch'].every(
        (c) => ha.on(`facegate/${DEVICE}/camera/${c}/availability`).at(-1)?.payload === 'online',
      ),
    );

    // A person enrolled over MQTT gets two entities at once; removing them withdraws both.
    const op = await Operator.connect(broker.url, device.app.topics);
    clients.push(op);
    const photo = readFileSync(LIN).toString('base64');
    expect(await op.ask('face/enroll', { name: 'Lin-Manuel Miranda', images: [photo] })).toMatchObject({
      status: 'ok',
    });
    const objectId = personObjectId('Lin-Manuel Miranda');
    expect(objectId).toMatch(/^person_lin_manuel_miranda_[0-9a-f]{8}$/);
    const person = [
      `homeassistant/sensor/${DEVICE}/${objectId}/config`,
      `homeassistant/sensor/${DEVICE}/${objectId}_last_seen/config`,
    ];
    await waitUntil('the person entities', () =>
      person.every((t) => (ha.on(t).at(-1)?.payload ?? '') !== ''),
    );
    expect(JSON.parse(ha.on(person[0]).at(-1)?.payload ?? '')).toMatchObject({
      name: 'Lin-Manuel Miranda',
      state_topic: `facegate/${DEVICE}/person/Lin-Manuel Miranda`,
      value_template: '{{ value_json.camera }}',
    });
    expect(JSON.parse(ha.on(person[1]).at(-1)?.payload ?? '')).toMatchObject({ device_class: 'timestamp' });
    // The camera sees them: where and when is published for the entities.
    await waitUntil(
      'the person seen',
      () => ha.on(`facegate/${DEVICE}/person/Lin-Manuel Miranda`).length > 0,
      60_000,
    );
    await waitUntil(
      'a device trigger',
      () => ha.on(`facegate/${DEVICE}/camera/door/trigger`).length > 0,
      60_000,
    );
    const seen = JSON.parse(ha.on(`facegate/${DEVICE}/person/Lin-Manuel Miranda`)[0].payload);
    expect(seen).toEqual({ camera: expect.stringMatching(/^(door|porch)$/), lastSeen: expect.any(String) });
    expect(await op.ask('face/remove', { name: 'Lin-Manuel Miranda' })).toMatchObject({ status: 'ok' });
    await waitUntil('the person withdrawn', () => person.every((t) => ha.on(t).at(-1)?.payload === ''));
    await waitUntil(
      'their state cleared',
      () => ha.on(`facegate/${DEVICE}/person/Lin-Manuel Miranda`).at(-1)?.payload === '',
    );

    // The porch camera is taken out of the file while facegate is stopped.
    await device.app.stop();
    expect(ha.on(`facegate/${DEVICE}/camera/porch/availability`).at(-1)?.payload).toBe('offline');
    const porchConfigs = [
      `homeassistant/event/${DEVICE}/porch_face/config`,
      ...triggers.filter((t) => t.includes('/porch_')),
    ];
    device = await startApp(dir, broker.url, {
      homeAssistant: { enabled: true },
      cameras: [hamiltonCamera()],
    });
    await waitUntil('the porch withdrawn', () => porchConfigs.every((t) => ha.on(t).at(-1)?.payload === ''));
    // A fresh subscriber (Home Assistant restarting) finds nothing of the porch and everything of the door.
    const later = await Subscriber.connect(broker.url, ['homeassistant/#']);
    clients.push(later);
    await waitUntil('the door configs', () => later.on(CONFIGS[0]).length > 0);
    expect(porchConfigs.filter((t) => later.on(t).length > 0)).toEqual([]);
  });
});
