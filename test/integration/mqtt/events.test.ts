import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEventQueue } from '../../../runtime/events/queue.ts';
import type { FaceEvent } from '../../../runtime/events/schema.ts';
import { startMqttClient } from '../../../runtime/mqtt/client.ts';
import { buildTopics } from '../../../runtime/mqtt/topics.ts';
import { silentLogger } from '../../../runtime/util/log.ts';
import { createMosquitto, type Mosquitto, startMosquitto } from '../../helpers/mosquitto.ts';
import { makeEvent, Subscriber, startDevice, useCleanup, waitUntil } from './support.ts';

const strip = ({ replayed: _, ...rest }: FaceEvent) => rest;

/**
 * A subscriber whose session is saved by mosquitto, so it receives everything published while it (or
 * the broker) was away — this makes delivery checks independent of who reconnects first.
 */
async function persistentSubscriber(broker: Mosquitto, topic: string, clientId: string): Promise<Subscriber> {
  const subscriber = await Subscriber.connect(broker.url, [topic], { clientId, clean: false });
  const subscribedAt = Date.now();
  const deadline = subscribedAt + 10_000;
  const saved = () =>
    stat(broker.dbFile as string).then(
      (s) => s.mtimeMs > subscribedAt,
      () => false,
    );
  while (!(await saved())) {
    if (Date.now() > deadline) {
      await subscriber.end();
      throw new Error(`mosquitto never saved its database:\n${broker.log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return subscriber;
}

describe('events (mosquitto)', () => {
  const cleanup = useCleanup();

  it('delivers events with QoS 1 to a separate subscriber, in order', async () => {
    const broker = await startMosquitto();
    cleanup(() => broker.dispose());
    const { client, topics, queue } = await startDevice(cleanup, broker.url);
    const subscriber = await Subscriber.connect(broker.url, [topics.event]);
    cleanup(() => subscriber.end());
    await waitUntil('connect', () => client.connected);

    const events = Array.from({ length: 50 }, () => makeEvent());
    const outcomes = await Promise.all(events.map((e) => client.publishEvent(e)));
    expect(outcomes).toEqual(events.map(() => 'published'));
    await waitUntil('50 events', () => subscriber.on(topics.event).length === 50);

    expect(subscriber.events(topics.event)).toEqual(events);
    expect(subscriber.on(topics.event).every((m) => m.qos === 1 && !m.retain)).toBe(true);
    expect(queue.size).toBe(0);
    expect(client.stats()).toMatchObject({ published: 50, replayed: 0, queued: 0 });
  });

  it('buffers on disk while the broker is down at start, then replays in order with original ids and times', async () => {
    const broker = await createMosquitto({ persistence: true });
    cleanup(() => broker.dispose());
    await broker.start();
    const subscriber = await persistentSubscriber(broker, 'facegate/+/event', 'sub-down-at-start');
    cleanup(() => subscriber.end());
    await broker.stop();

    const { client, topics, queue } = await startDevice(cleanup, broker.url);
    const events = [];
    for (let i = 0; i < 20; i++) events.push(makeEvent(i, new Date(Date.UTC(2024, 0, 1, 0, 0, i))));
    const outcomes = await Promise.all(events.map((e) => client.publishEvent(e)));
    expect(outcomes).toEqual(events.map(() => 'queued'));
    expect(client.connected).toBe(false);
    expect(queue.size).toBe(20);
    expect((await readdir(queue.dir)).some((f) => f.endsWith('.seg'))).toBe(true);

    // Still retrying a while later, without crashing anything.
    await new Promise((r) => setTimeout(r, 600));
    expect(client.connected).toBe(false);

    const drained = new Promise<void>((resolve) => client.once('drained', resolve));
    await broker.start();
    await drained;
    await waitUntil('20 replayed events', () => subscriber.uniqueEvents(topics.event).length === 20, 15_000);

    const received = subscriber.uniqueEvents(topics.event);
    expect(received.map(strip)).toEqual(events);
    expect(received.every((e) => e.replayed === true)).toBe(true);
    expect(received.map((e) => e.time)).toEqual(events.map((e) => e.time));
    expect(queue.size).toBe(0);

    // Back to direct publishing once the queue is empty.
    const live = makeEvent();
    expect(await client.publishEvent(live)).toBe('published');
    await waitUntil('live event', () => subscriber.uniqueEvents(topics.event).length === 21);
    expect(subscriber.uniqueEvents(topics.event).at(-1)).toEqual(live);
    expect(client.stats()).toMatchObject({ published: 1, replayed: 20, queued: 20, connects: 1 });
  });

  it('loses nothing and keeps order when the broker is killed and restarted mid-stream', async () => {
    const broker = await createMosquitto({ persistence: true });
    cleanup(() => broker.dispose());
    await broker.start();
    const subscriber = await persistentSubscriber(broker, 'facegate/+/event', 'sub-restart');
    cleanup(() => subscriber.end());
    const { client, topics, queue } = await startDevice(cleanup, broker.url);
    await waitUntil('connect', () => client.connected);

    const sent: FaceEvent[] = [];
    const outcomes: string[] = [];
    const publish = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const event = makeEvent();
        sent.push(event);
        outcomes.push(await client.publishEvent(event));
        await new Promise((r) => setTimeout(r, 5));
      }
    };

    await publish(20);
    await waitUntil('first 20', () => subscriber.uniqueEvents(topics.event).length === 20);

    // Crash with nothing in flight: an event the broker acknowledged and then lost in its own crash
    // would be the broker's failure, not ours. Events published right after the kill may still go out
    // on the dead socket before the close is noticed; they must end up in the queue.
    await broker.kill();
    await publish(30);
    expect(client.connected).toBe(false);
    expect(queue.size).toBe(30);

    await broker.start();
    await publish(30); // while reconnecting and replaying
    await waitUntil('all 80 events', () => subscriber.uniqueEvents(topics.event).length === 80, 20_000).catch(
      (err) => {
        throw new Error(
          `${err.message}; got ${subscriber.uniqueEvents(topics.event).length}\n${broker.log()}`,
        );
      },
    );

    const received = subscriber.uniqueEvents(topics.event);
    expect(received.map((e) => e.id)).toEqual(sent.map((e) => e.id));
    expect(received.map(strip)).toEqual(sent);
    // Every event that went through the queue says so; the first 20 went straight out.
    for (const [i, e] of received.entries()) {
      if (outcomes[i] === 'queued') expect(e.replayed).toBe(true);
    }
    expect(received.slice(0, 20).every((e) => e.replayed === undefined)).toBe(true);
    expect(outcomes.slice(20, 50)).toEqual(Array(30).fill('queued'));
    await waitUntil('queue empty', () => queue.size === 0);
  });

  it('keeps queued events across a device restart while the broker is down', async () => {
    const broker = await createMosquitto({ persistence: true });
    cleanup(() => broker.dispose());
    await broker.start();
    const subscriber = await persistentSubscriber(broker, 'facegate/restarted/event', 'sub-device-restart');
    cleanup(() => subscriber.end());
    await broker.stop();

    const dir = await mkdtemp(join(tmpdir(), 'facegate-restart-'));
    cleanup(() => rm(dir, { recursive: true, force: true }));
    const topics = buildTopics({ baseTopic: 'facegate', deviceId: 'restarted' });
    const queueOpts = { maxEvents: 100, policy: 'drop-oldest' } as const;
    const clientOpts = {
      url: broker.url,
      topics,
      reconnectPeriodMs: 200,
      stopTimeoutMs: 2_000,
      log: silentLogger,
    };

    const queue1 = await openEventQueue(dir, queueOpts);
    cleanup(() => queue1.close());
    const first = await startMqttClient({ ...clientOpts, queue: queue1 });
    cleanup(() => first.stop());
    const events = Array.from({ length: 5 }, () => makeEvent());
    for (const e of events) expect(await first.publishEvent(e)).toBe('queued');
    const started = Date.now();
    await first.stop();
    expect(Date.now() - started).toBeLessThan(1_000);
    await queue1.close();

    const queue2 = await openEventQueue(dir, queueOpts);
    cleanup(() => queue2.close());
    expect(queue2.size).toBe(5);
    const second = await startMqttClient({ ...clientOpts, queue: queue2 });
    cleanup(() => second.stop());
    const drained = new Promise<void>((resolve) => second.once('drained', resolve));
    await broker.start();
    await drained;
    await waitUntil('5 events', () => subscriber.uniqueEvents(topics.event).length === 5);
    expect(subscriber.uniqueEvents(topics.event).map(strip)).toEqual(events);
  });

  /**
   * A broker restarted without its sessions (no persistence here; a SIGKILL before its save does the same)
   * has no subscription when the device, reconnecting first, replays its queue. The subscriber (clean
   * session, resubscribing on reconnect) is back 3 s later. Resolves what it received and the device logs.
   */
  async function restartWithoutSessions(subscriberGraceMs: number) {
    const broker = await startMosquitto();
    cleanup(() => broker.dispose());
    const subscriber = await Subscriber.connect(broker.url, ['facegate/+/event'], { reconnectPeriod: 3_000 });
    cleanup(() => subscriber.end());
    const { client, topics, queue, logs } = await startDevice(cleanup, broker.url, {
      protocolVersion: 5,
      subscriberGraceMs,
    });
    await waitUntil('connect', () => client.connected);
    const sent = Array.from({ length: 25 }, () => makeEvent());
    // Through the queue until a subscriber is seen to take one (right away here).
    for (const e of sent.slice(0, 5)) await client.publishEvent(e);
    await waitUntil('5 live events', () => subscriber.uniqueEvents(topics.event).length === 5);

    await broker.kill();
    for (const e of sent.slice(5)) expect(await client.publishEvent(e)).toBe('queued');
    await broker.start();
    await waitUntil('the replay', () => queue.size === 0, 20_000);
    // The subscriber is back ~3 s after the restart; anything it is still owed would arrive within this.
    await waitUntil('the subscriber back', () => subscriber.client.connected, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    return { sent, received: subscriber.events(topics.event), logs };
  }

  it('keeps replayed events for subscribers a restarted broker lost until one subscribes again', async () => {
    const { sent, received, logs } = await restartWithoutSessions(20_000);
    expect(received.map((e) => e.id)).toEqual(sent.map((e) => e.id));
    expect(received.slice(5).every((e) => e.replayed === true)).toBe(true);
    expect(logs).toContain(
      'info: the broker has no subscriber for events: keeping them queued for up to 20 s',
    );
  });

  it('without the grace the same restart sends the replay to nobody (the case the grace is for)', async () => {
    const { sent, received } = await restartWithoutSessions(0);
    const got = new Set(received.map((e) => e.id));
    // The 5 live events arrived; the replay went out before the subscriber was back, so some were lost.
    expect(sent.slice(0, 5).every((e) => got.has(e.id))).toBe(true);
    expect(got.size).toBeLessThan(sent.length);
  });

  it('warns of no subscriber only when one was missed, not when the grace passed without events', async () => {
    const broker = await startMosquitto();
    cleanup(() => broker.dispose());
    const subscriber = await Subscriber.connect(broker.url, ['facegate/+/event']);
    cleanup(() => subscriber.end());
    const { client, topics, logs } = await startDevice(cleanup, broker.url, {
      protocolVersion: 5,
      subscriberGraceMs: 300,
    });
    await waitUntil('connect', () => client.connected);
    await new Promise((r) => setTimeout(r, 500));
    expect(await client.publishEvent(makeEvent())).toBe('published');
    await waitUntil('the event', () => subscriber.events(topics.event).length === 1);
    expect(logs.filter((l) => l.includes('no subscriber'))).toEqual([]);
  });

  it('sends events on once the grace has passed with no subscriber at all', async () => {
    const broker = await startMosquitto();
    cleanup(() => broker.dispose());
    const { client, queue, logs } = await startDevice(cleanup, broker.url, {
      protocolVersion: 5,
      subscriberGraceMs: 1_000,
    });
    await waitUntil('connect', () => client.connected);
    const started = Date.now();
    for (let i = 0; i < 3; i++) expect(await client.publishEvent(makeEvent())).toBe('queued');
    await waitUntil('the queue sent on', () => queue.size === 0, 10_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(client.stats()).toMatchObject({ published: 0, replayed: 3, queued: 3 });
    expect(logs).toContain('warn: no subscriber took an event within 1 s of connecting: sending events on');
    // Once the grace is over, events go straight out again.
    expect(await client.publishEvent(makeEvent())).toBe('published');
  });
});
