// mqtt.qos: face events go out, live and replayed, at the configured QoS; every other topic stays at 1.
// The subscribers here subscribe with QoS 2, so what they receive carries the QoS the device published with.
import { describe, expect, it } from 'vitest';
import type { FaceEvent } from '../../../runtime/events/schema.ts';
import type { Qos } from '../../../runtime/mqtt/client.ts';
import { startMosquitto } from '../../helpers/mosquitto.ts';
import { makeEvent, Subscriber, startDevice, startProxy, useCleanup, waitUntil } from './support.ts';

const strip = ({ replayed: _, ...rest }: FaceEvent) => rest;

describe('mqtt.qos (mosquitto)', () => {
  const cleanup = useCleanup();

  it.each([0, 1, 2] satisfies Qos[])(
    'publishes events at QoS %i, in order; availability stays at QoS 1',
    async (qos) => {
      const broker = await startMosquitto();
      cleanup(() => broker.dispose());
      const { client, topics, queue } = await startDevice(cleanup, broker.url, { eventQos: qos });
      const subscriber = await Subscriber.connect(broker.url, [topics.event, topics.availability], {}, 2);
      cleanup(() => subscriber.end());
      await waitUntil('connect', () => client.connected);

      const events = Array.from({ length: 20 }, () => makeEvent());
      const outcomes = await Promise.all(events.map((e) => client.publishEvent(e)));
      expect(outcomes).toEqual(events.map(() => 'published'));
      await waitUntil('20 events', () => subscriber.on(topics.event).length === 20);

      expect(subscriber.events(topics.event)).toEqual(events);
      expect(subscriber.on(topics.event).map((m) => m.qos)).toEqual(events.map(() => qos));
      await waitUntil('online', () => subscriber.on(topics.availability).length > 0);
      expect(subscriber.on(topics.availability).map((m) => [m.payload, m.qos])).toEqual([['online', 1]]);
      expect(queue.size).toBe(0);
      expect(client.stats()).toMatchObject({ published: 20, queued: 0 });
    },
  );

  it.each([0, 2] satisfies Qos[])('replays queued events at QoS %i and empties the queue', async (qos) => {
    const broker = await startMosquitto();
    cleanup(() => broker.dispose());
    const subscriber = await Subscriber.connect(broker.url, ['facegate/+/event'], {}, 2);
    cleanup(() => subscriber.end());
    // The device reaches the broker through a proxy that swallows its CONNECT until thawed: the events
    // queue up while the subscriber is already listening.
    const proxy = await startProxy(broker.port);
    cleanup(() => proxy.stop());
    proxy.freeze();
    const { client, topics, queue } = await startDevice(
      cleanup,
      proxy.url,
      { eventQos: qos, connectTimeoutMs: 500 },
      { maxEvents: 100 },
    );

    const events = Array.from({ length: 10 }, () => makeEvent());
    const outcomes = await Promise.all(events.map((e) => client.publishEvent(e)));
    expect(outcomes).toEqual(events.map(() => 'queued'));
    expect(client.connected).toBe(false);

    const drained = new Promise<void>((resolve) => client.once('drained', resolve));
    proxy.thaw();
    await drained;
    await waitUntil('10 replayed events', () => subscriber.on(topics.event).length === 10);

    const received = subscriber.events(topics.event);
    expect(received.map(strip)).toEqual(events);
    expect(received.every((e) => e.replayed === true)).toBe(true);
    expect(subscriber.on(topics.event).map((m) => m.qos)).toEqual(events.map(() => qos));
    expect(queue.size).toBe(0);
    expect(client.stats()).toMatchObject({ replayed: 10, queued: 10 });
  });

  it('at QoS 0 counts an event delivered once written to the socket: one a dead connection swallows is lost', async () => {
    const broker = await startMosquitto();
    cleanup(() => broker.dispose());
    const proxy = await startProxy(broker.port);
    cleanup(() => proxy.stop());
    const { client, topics, queue } = await startDevice(cleanup, proxy.url, { eventQos: 0 });
    const subscriber = await Subscriber.connect(broker.url, [topics.event], {}, 2);
    cleanup(() => subscriber.end());
    await waitUntil('connect', () => client.connected);

    const first = makeEvent();
    expect(await client.publishEvent(first)).toBe('published');
    await waitUntil('first event', () => subscriber.on(topics.event).length === 1);

    // The connection goes silent without closing: nothing the device writes reaches the broker.
    proxy.freeze();
    const lost = makeEvent();
    expect(await client.publishEvent(lost)).toBe('published');
    expect(queue.size).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(subscriber.events(topics.event)).toEqual([first]);
    expect(client.stats()).toMatchObject({ published: 2, queued: 0 });
    await proxy.stop();
  });
});
