import { describe, expect, it } from 'vitest';
import { startMosquitto } from '../../helpers/mosquitto.ts';
import { makeEvent, Subscriber, startDevice, useCleanup, waitUntil } from './support.ts';

describe('authentication and TLS (mosquitto)', () => {
  const cleanup = useCleanup();
  const auth = { username: 'camera', password: 'correct horse' };

  it('connects and delivers with the right username and password', async () => {
    const broker = await startMosquitto({ auth });
    cleanup(() => broker.dispose());
    const { client, topics } = await startDevice(cleanup, broker.url, auth);
    const subscriber = await Subscriber.connect(broker.url, [topics.event], auth);
    cleanup(() => subscriber.end());
    await waitUntil('connect', () => client.connected);
    const event = makeEvent();
    expect(await client.publishEvent(event)).toBe('published');
    await waitUntil('event', () => subscriber.on(topics.event).length === 1);
    expect(subscriber.events(topics.event)).toEqual([event]);
  });

  it('is refused with a wrong password, keeps retrying and queues events', async () => {
    const broker = await startMosquitto({ auth });
    cleanup(() => broker.dispose());
    const { client, logs } = await startDevice(cleanup, broker.url, { ...auth, password: 'wrong' });
    await waitUntil('a refusal', () => logs.some((l) => /Not authorized|Bad username or password/.test(l)));
    const attempts = () =>
      broker
        .log()
        .split('\n')
        .filter((l) => l.includes('New client connected')).length;
    expect(await client.publishEvent(makeEvent())).toBe('queued');
    expect(client.connected).toBe(false);
    // Refusals are logged once, not once per retry.
    await new Promise((r) => setTimeout(r, 700));
    expect(logs.filter((l) => l.startsWith('error')).length).toBe(1);
    expect(attempts()).toBe(0);
    expect(broker.log().match(/not authorised|not authorized/gi)?.length ?? 0).toBeGreaterThan(1);
  });

  it('connects over TLS when the broker certificate verifies against the configured CA', async () => {
    const broker = await startMosquitto({ tls: true });
    cleanup(() => broker.dispose());
    const { client, topics } = await startDevice(cleanup, broker.tlsUrl as string, {
      tls: { ca: broker.caFile, rejectUnauthorized: true },
    });
    const subscriber = await Subscriber.connect(broker.url, [topics.event]);
    cleanup(() => subscriber.end());
    await waitUntil('TLS connect', () => client.connected);
    const event = makeEvent();
    expect(await client.publishEvent(event)).toBe('published');
    await waitUntil('event', () => subscriber.on(topics.event).length === 1);
    expect(subscriber.events(topics.event)).toEqual([event]);
  });

  it('refuses a broker whose certificate does not verify', async () => {
    const broker = await startMosquitto({ tls: true });
    cleanup(() => broker.dispose());
    const { client, logs } = await startDevice(cleanup, broker.tlsUrl as string, {
      tls: { rejectUnauthorized: true },
    });
    await waitUntil('a certificate error', () => logs.some((l) => /certificate/i.test(l)));
    expect(client.connected).toBe(false);
    expect(await client.publishEvent(makeEvent())).toBe('queued');
  });
});
