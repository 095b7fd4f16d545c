import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildTopics } from '../../../runtime/mqtt/topics.ts';
import { startMosquitto } from '../../helpers/mosquitto.ts';
import { makeEvent, Subscriber, startDevice, useCleanup, waitUntil } from './support.ts';

const DEVICE = fileURLToPath(new URL('./fixtures/device.ts', import.meta.url));

describe('availability (mosquitto)', () => {
  const cleanup = useCleanup();

  it('publishes a retained online on connect and the broker publishes the last will offline on a crash', async () => {
    const broker = await startMosquitto();
    cleanup(() => broker.dispose());
    const dir = await mkdtemp(join(tmpdir(), 'facegate-lwt-'));
    cleanup(() => rm(dir, { recursive: true, force: true }));
    const topics = buildTopics({ baseTopic: 'facegate', deviceId: 'crashy' });

    const child = spawn(
      process.execPath,
      ['--import', 'tsx', DEVICE, broker.url, 'facegate', 'crashy', dir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    cleanup(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    await waitUntil(`the device to connect (${out})`, () => out.includes('connected'), 30_000);

    // A late subscriber still learns the device is online: the message is retained.
    const late = await Subscriber.connect(broker.url, [topics.availability]);
    cleanup(() => late.end());
    await waitUntil('retained online', () => late.on(topics.availability).length > 0);
    expect(late.on(topics.availability)[0]).toMatchObject({ payload: 'online', retain: true });

    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    await waitUntil('the last will', () => late.on(topics.availability).some((m) => m.payload === 'offline'));
    expect(late.on(topics.availability).at(-1)).toMatchObject({ payload: 'offline', qos: 1 });

    const after = await Subscriber.connect(broker.url, [topics.availability]);
    cleanup(() => after.end());
    await waitUntil('retained offline', () => after.on(topics.availability).length > 0);
    expect(after.on(topics.availability)[0]).toMatchObject({ payload: 'offline', retain: true });
  });

  it('the last will also fires when the connection drops under a live process', async () => {
    const broker = await startMosquitto();
    cleanup(() => broker.dispose());
    const { client, topics } = await startDevice(cleanup, broker.url, { reconnectPeriodMs: 60_000 });
    await waitUntil('connect', () => client.connected);
    const watcher = await Subscriber.connect(broker.url, [topics.availability]);
    cleanup(() => watcher.end());
    await waitUntil('retained online', () => watcher.on(topics.availability).length > 0);

    // The network going away without a DISCONNECT: destroy the socket under mqtt.js (a private field).
    const mqttClient = Reflect.get(client, 'client') as { stream: { destroy(): void } };
    mqttClient.stream.destroy();
    await waitUntil('offline', () => watcher.on(topics.availability).some((m) => m.payload === 'offline'));
    expect(client.connected).toBe(false);
  });

  it('flushes pending events, then publishes a retained stopped on a clean stop, and no last will', async () => {
    const broker = await startMosquitto();
    cleanup(() => broker.dispose());
    const { client, topics, logs } = await startDevice(cleanup, broker.url);
    await waitUntil('connect', () => client.connected);
    const watcher = await Subscriber.connect(broker.url, [topics.availability, topics.event]);
    cleanup(() => watcher.end());
    await waitUntil('retained online', () => watcher.on(topics.availability).length > 0);

    const events = Array.from({ length: 5 }, () => makeEvent());
    const outcomes = events.map((e) => client.publishEvent(e));
    await client.stop();
    expect(await Promise.all(outcomes)).toEqual(events.map(() => 'published'));
    await waitUntil('stopped', () => watcher.on(topics.availability).some((m) => m.payload === 'stopped'));
    await new Promise((r) => setTimeout(r, 500));
    expect(watcher.on(topics.availability).map((m) => m.payload)).toEqual(['online', 'stopped']);
    expect(watcher.events(topics.event)).toEqual(events);
    expect(logs.filter((l) => !l.startsWith('info'))).toEqual([]);
    await expect(client.publishEvent(makeEvent())).rejects.toThrow(/stopped/);

    const after = await Subscriber.connect(broker.url, [topics.availability]);
    cleanup(() => after.end());
    await waitUntil('retained stopped', () => after.on(topics.availability).length > 0);
    expect(after.on(topics.availability)[0]).toMatchObject({ payload: 'stopped', retain: true });
  });
});
