import { connect as netConnect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startInProcessBroker } from '../../../runtime/mqtt/broker.ts';
import { recordingLogger } from '../../../runtime/util/log.ts';
import {
  connectError,
  makeEvent,
  Subscriber,
  startDevice,
  startProxy,
  useCleanup,
  waitUntil,
} from './support.ts';

describe('in-process aedes broker', () => {
  const cleanup = useCleanup();

  it('carries availability, events and retained state to a subscriber', async () => {
    const broker = await startInProcessBroker();
    cleanup(() => broker.stop());
    expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.port}`);
    const { client, topics } = await startDevice(cleanup, broker.url);
    const subscriber = await Subscriber.connect(broker.url, [topics.event]);
    cleanup(() => subscriber.end());
    await waitUntil('connect', () => client.connected);

    const events = Array.from({ length: 10 }, () => makeEvent());
    for (const e of events) expect(await client.publishEvent(e)).toBe('published');
    await waitUntil('10 events', () => subscriber.on(topics.event).length === 10);
    expect(subscriber.events(topics.event)).toEqual(events);

    client.publishRetained(topics.state, { status: 'running' });
    const late = await Subscriber.connect(broker.url, [topics.availability, topics.state]);
    cleanup(() => late.end());
    await waitUntil('retained availability and state', () => late.messages.length === 2);
    expect(late.on(topics.availability)[0]).toMatchObject({ payload: 'online', retain: true });
    expect(late.on(topics.state)[0]).toMatchObject({ payload: '{"status":"running"}', retain: true });
  });

  it('stops cleanly with clients still connected', async () => {
    const broker = await startInProcessBroker();
    const subscriber = await Subscriber.connect(broker.url, ['#'], { reconnectPeriod: 0 });
    cleanup(() => subscriber.end());
    const idle = netConnect({ host: '127.0.0.1', port: broker.port }); // never sends CONNECT
    cleanup(() => idle.destroy());
    idle.on('error', () => {});
    await new Promise((resolve) => idle.once('connect', resolve));
    await broker.stop();
    await waitUntil('subscriber disconnected', () => !subscriber.client.connected);
    await expect(startInProcessBroker({ port: broker.port }).then((b) => b.stop())).resolves.toBeUndefined();
  });

  it('moves unacknowledged in-flight events to the queue in order and replays them after reconnecting', async () => {
    const broker = await startInProcessBroker();
    cleanup(() => broker.stop());
    const proxy = await startProxy(broker.port);
    cleanup(() => proxy.stop());
    const { client, topics, queue, logs } = await startDevice(cleanup, proxy.url, { publishTimeoutMs: 300 });
    const subscriber = await Subscriber.connect(broker.url, [topics.event]);
    cleanup(() => subscriber.end());
    await waitUntil('connect', () => client.connected);

    const before = Array.from({ length: 3 }, () => makeEvent());
    for (const e of before) expect(await client.publishEvent(e)).toBe('published');

    // The connection goes silent: these go out directly, pipelined, and are never acknowledged.
    proxy.freeze();
    const silent = Array.from({ length: 5 }, () => makeEvent());
    const pending = silent.map((e) => client.publishEvent(e));
    expect(client.stats().published).toBe(3);
    expect(await Promise.all(pending)).toEqual(silent.map(() => 'queued'));
    expect(logs.some((l) => l.includes('no PUBACK'))).toBe(true);
    expect(client.connected).toBe(false);

    const later = Array.from({ length: 2 }, () => makeEvent());
    for (const e of later) expect(await client.publishEvent(e)).toBe('queued');
    expect(queue.size).toBe(7);

    const drained = new Promise<void>((resolve) => client.once('drained', resolve));
    proxy.thaw();
    await drained;
    await waitUntil('10 events', () => subscriber.on(topics.event).length === 10);
    const received = subscriber.events(topics.event);
    expect(received.map(({ replayed: _, ...e }) => e)).toEqual([...before, ...silent, ...later]);
    expect(received.map((e) => e.replayed)).toEqual([...Array(3).fill(undefined), ...Array(7).fill(true)]);
  });

  it('demands the configured credentials of every client', async () => {
    const credentials = { username: 'facegate', password: 'correct horse' };
    const broker = await startInProcessBroker({ credentials });
    cleanup(() => broker.stop());
    const good = await Subscriber.connect(broker.url, ['#'], credentials);
    cleanup(() => good.end());
    expect(good.client.connected).toBe(true);
    for (const opts of [{}, { ...credentials, password: 'wrong' }]) {
      expect(await connectError(broker.url, opts)).toMatch(/Not authorized|Bad username or password/);
    }
  });

  it('ends a connection whose packet announces more than maxPacketBytes, reading only its start', async () => {
    const logs: string[] = [];
    const broker = await startInProcessBroker({
      maxPacketBytes: 64 * 1024,
      log: recordingLogger((_level, m) => logs.push(m)),
    });
    cleanup(() => broker.stop());
    const socket = netConnect({ host: '127.0.0.1', port: broker.port });
    cleanup(() => socket.destroy());
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    // A PUBLISH announcing 200 MiB (remaining length 0x80 0x80 0x80 0x64), then its body as it streams.
    socket.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x64]));
    let written = 0;
    const chunk = Buffer.alloc(64 * 1024);
    while (!socket.destroyed && written < 200 * 1024 * 1024) {
      if (!socket.write(chunk)) await new Promise((r) => setTimeout(r, 5));
      written += chunk.length;
      if (socket.readyState !== 'open') break;
    }
    await waitUntil(
      'the broker to close the connection',
      () => socket.destroyed || socket.readyState !== 'open',
    );
    expect(logs).toEqual([
      `closed a client connection that announced a packet of ${5 + 200 * 1024 * 1024} bytes (limit 65536)`,
    ]);
  });
});
