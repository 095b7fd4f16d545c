// Shared pieces of the MQTT integration tests: a subscriber that records what it receives, bounded
// waiting, and event factories.

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { afterEach } from 'vitest';
import { type EventQueue, openEventQueue, type QueueOptions } from '../../../runtime/events/queue.ts';
import { buildEvent, type FaceEvent } from '../../../runtime/events/schema.ts';
import {
  type FacegateMqttClient,
  type FacegateMqttOptions,
  startMqttClient,
} from '../../../runtime/mqtt/client.ts';
import { buildTopics, type Topics } from '../../../runtime/mqtt/topics.ts';
import { recordingLogger } from '../../../runtime/util/log.ts';

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  qos: number;
}

export async function waitUntil(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The error a connection attempt ends with (a refused CONNACK, a failed TLS handshake); one attempt only. */
export async function connectError(url: string, opts: IClientOptions = {}): Promise<string> {
  const client = connect(url, { reconnectPeriod: 0, connectTimeout: 5_000, ...opts });
  try {
    return await new Promise<string>((resolve, reject) => {
      client.once('error', (err) => resolve(err.message));
      client.once('connect', () => reject(new Error(`${url} accepted the connection`)));
    });
  } finally {
    client.end(true);
  }
}

export class Subscriber {
  readonly messages: Received[] = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos });
    });
    client.on('error', () => {});
  }

  /**
   * Connects and subscribes with `qos` (default 1; messages arrive at the lower of theirs and this). With a
   * `clientId` and `clean: false` the session (and the messages queued for it) outlives disconnections
   * and, with broker persistence, broker restarts.
   */
  static async connect(
    url: string,
    topics: string[],
    opts: IClientOptions = {},
    qos: 0 | 1 | 2 = 1,
  ): Promise<Subscriber> {
    const client = connect(url, { reconnectPeriod: 100, connectTimeout: 5_000, ...opts });
    const subscriber = new Subscriber(client);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`subscriber could not connect to ${url}`)), 10_000);
        client.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      await client.subscribeAsync(topics, { qos });
    } catch (err) {
      await subscriber.end();
      throw err;
    }
    return subscriber;
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  events(topic: string): FaceEvent[] {
    return this.on(topic).map((m) => JSON.parse(m.payload) as FaceEvent);
  }

  /** Events by first occurrence: delivery is at-least-once, so a replay may repeat one. */
  uniqueEvents(topic: string): FaceEvent[] {
    const seen = new Set<string>();
    return this.events(topic).filter((e) => !seen.has(e.id) && seen.add(e.id));
  }

  async end(): Promise<void> {
    await Promise.race([this.client.endAsync(true), new Promise((r) => setTimeout(r, 2_000))]);
  }
}

let counter = 0;

export function makeEvent(trackId = counter++, time?: Date): FaceEvent {
  return buildEvent({
    camera: 'front',
    type: trackId % 3 === 0 ? 'unknown' : 'recognized',
    identity: trackId % 3 === 0 ? null : `person-${trackId}`,
    score: 0.8,
    box: [10, 20, 30, 40],
    trackId,
    model: { name: 'facenet-int8', version: '1.0.0' },
    time,
  });
}

type Cleanup = () => Promise<unknown> | unknown;

/** Registers cleanups that run after each test, newest first, even when the test failed. */
export function useCleanup(): (fn: Cleanup) => void {
  const cleanups: Cleanup[] = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error('cleanup failed:', err);
      }
    }
  });
  return (fn) => cleanups.push(fn);
}

export interface Device {
  client: FacegateMqttClient;
  queue: EventQueue;
  topics: Topics;
  logs: string[];
}

let deviceCounter = 0;

/** A device client with its own queue directory; stopped, closed and removed after the test. */
export async function startDevice(
  cleanup: (fn: Cleanup) => void,
  url: string,
  opts: Partial<FacegateMqttOptions> = {},
  queueOpts: Partial<QueueOptions> = {},
): Promise<Device> {
  const dir = await mkdtemp(join(tmpdir(), 'facegate-device-'));
  cleanup(() => rm(dir, { recursive: true, force: true }));
  const queue = await openEventQueue(dir, { maxEvents: 1000, policy: 'drop-oldest', ...queueOpts });
  cleanup(() => queue.close());
  const topics = buildTopics({ baseTopic: 'facegate', deviceId: `dev${deviceCounter++}` });
  const logs: string[] = [];
  const client = await startMqttClient({
    url,
    topics,
    queue,
    reconnectPeriodMs: 200,
    connectTimeoutMs: 3_000,
    publishTimeoutMs: 3_000,
    stopTimeoutMs: 3_000,
    log: recordingLogger((level, message) => logs.push(`${level}: ${message}`)),
    ...opts,
  });
  cleanup(() => client.stop());
  return { client, queue, topics, logs };
}

export interface Proxy {
  readonly port: number;
  readonly url: string;
  /** Drops everything clients send from now on (the broker never sees it, so never acknowledges it). */
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

/** TCP proxy in front of a broker, to make a connection go silent without closing it. */
export async function startProxy(targetPort: number): Promise<Proxy> {
  let frozen = false;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };
  const server = createServer((downstream) => {
    const upstream = netConnect({ host: '127.0.0.1', port: targetPort });
    track(downstream);
    track(upstream);
    downstream.on('data', (chunk) => {
      if (!frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => downstream.write(chunk));
    downstream.on('close', () => upstream.destroy());
    upstream.on('close', () => downstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
    },
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
