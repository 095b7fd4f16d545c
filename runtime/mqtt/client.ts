// The device's MQTT connection: availability with a last will, face events at `mqtt.qos` with a durable
// offline queue behind them, and retained status topics (QoS 1).
//
// Ordering: an event is published directly only while connected with nothing queued and no replay
// running; otherwise it is appended to the queue, which is written synchronously, so the queue order is
// the call order. When a connection breaks, direct publishes still waiting for confirmation are moved to
// the queue in send order before anything newer can be appended, and mqtt.js is told to forget them
// (its in-memory resend on reconnect would bypass the queue and the order).
//
// Delivery is at-least-once at QoS 1 and 2: an event whose acknowledgement was lost is replayed; consumers
// deduplicate on `id`. QoS 2 keeps the broker from duplicating within one connection, but the session is
// clean, so after a broken connection an event may still come twice. At QoS 0 there is no acknowledgement:
// an event counts as delivered (and leaves the offline queue) once it is written to the socket, so events
// written just before a connection dies unnoticed are lost; it is at-most-once for those.
//
// Subscribers after a (re)connect: a broker that restarted without its sessions (no persistence, or killed
// before its last save) accepts events before the subscribers are back, and a PUBACK then means nobody got
// them. MQTT 5 says so (reason 16, "no matching subscribers"), so for `subscriberGraceMs` after each
// connect events go through the queue and its head is offered one at a time until a subscriber takes one.

import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { EventQueue, QueueStats } from '../events/queue.ts';
import type { FaceEvent } from '../events/schema.ts';
import { defaultLogger, type Logger } from '../util/log.ts';
import { limitPacketSize } from './packet-limit.ts';
import type { AvailabilityPayload, Topics } from './topics.ts';

export type Qos = 0 | 1 | 2;

export interface MqttTlsFiles {
  /** CA certificate (PEM file) to trust instead of the system store. */
  ca?: string;
  /** Client certificate and key (PEM files) for mutual TLS. */
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
}

export interface FacegateMqttOptions {
  /** mqtt://, mqtts://, ws:// or wss:// */
  url: string;
  topics: Topics;
  /** Opened by the caller, who also closes it after stop(). */
  queue: EventQueue;
  /** QoS of face events (`mqtt.qos`), direct and replayed; default 1. Retained topics always use 1. */
  eventQos?: Qos;
  /** Default `facegate-<deviceId>`. */
  clientId?: string;
  username?: string;
  password?: string;
  tls?: MqttTlsFiles;
  keepaliveSeconds?: number;
  /** Delay between reconnection attempts, also after a refused CONNACK. */
  reconnectPeriodMs?: number;
  connectTimeoutMs?: number;
  /**
   * A publish not acknowledged (QoS 1: PUBACK, QoS 2: PUBCOMP) or, at QoS 0, not written to the socket in
   * this time is treated as a dead connection (which is then recycled).
   */
  publishTimeoutMs?: number;
  /** Queued events in flight at once during a replay. */
  replayWindow?: number;
  /**
   * MQTT 5, QoS 1 and 2: how long after a (re)connect events wait in the queue for a subscriber while the
   * broker answers "no matching subscribers"; ends as soon as one event reaches a subscriber. 0 = never.
   */
  subscriberGraceMs?: number;
  /** Bound on stop(): flushing, `stopped`, DISCONNECT. */
  stopTimeoutMs?: number;
  /**
   * Largest packet the device takes. Told to the broker as MQTT 5's maximum packet size (a broker then
   * drops larger messages for this client), and enforced on each packet's header as it arrives, so a
   * larger one ends the connection instead of being read into memory.
   */
  maxPacketBytes?: number;
  /** 4 = MQTT 3.1.1 (default, which every broker speaks, the in-process one included) or 5. */
  protocolVersion?: 4 | 5;
  log?: Logger;
}

export type PublishOutcome = 'published' | 'queued' | 'dropped';

export interface FacegateMqttStats {
  connected: boolean;
  connects: number;
  /** Events acknowledged by the broker (at QoS 0: written to the socket) on first try. */
  published: number;
  /** Events acknowledged by the broker (at QoS 0: written to the socket) from the offline queue. */
  replayed: number;
  /** Events written to the offline queue. */
  queued: number;
  /** Events refused by a full drop-newest queue, or that could not be stored (disk full). */
  dropped: number;
  queue: QueueStats;
}

interface DirectPublish {
  event: FaceEvent;
  settled: boolean;
  resolve: (outcome: PublishOutcome) => void;
  reject: (err: unknown) => void;
}

interface ClientEvents {
  connect: [];
  disconnect: [];
  /** The offline queue became empty through a replay. */
  drained: [];
}

const defaultLog = defaultLogger.child('mqtt');

/** Why a publish is given up as lost, by QoS: what did not come in time. */
const NOT_CONFIRMED: Record<Qos, string> = {
  0: 'not written to the socket',
  1: 'no PUBACK',
  2: 'no PUBCOMP',
};

/** MQTT 5 PUBACK/PUBREC reason code: accepted, but no subscription matched. */
const NO_MATCHING_SUBSCRIBERS = 16;
/** While holding events for subscribers: how often the queue head is offered again. */
const SUBSCRIBER_POLL_MS = 250;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Whether `promise` settled within `ms`; the timer is cleared so it never holds the process open. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export class FacegateMqttClient extends EventEmitter<ClientEvents> {
  private topics_: Topics;
  private readonly queue: EventQueue;
  private readonly eventQos: Qos;
  private readonly client: MqttClient;
  private readonly publishTimeoutMs: number;
  private readonly replayWindow: number;
  private readonly subscriberGraceMs: number;
  private readonly stopTimeoutMs: number;
  private readonly log: Logger;

  /** Connected and not known to be broken; direct publishes and replays only happen while true. */
  private online = false;
  private draining = false;
  private stopping: Promise<void> | null = null;
  private readonly inflight: DirectPublish[] = [];
  private readonly pendingStores = new Set<Promise<unknown>>();
  private readonly retained = new Map<string, string>();
  private lastError = '';
  /** Until when (ms since epoch) events may wait for a subscriber; 0 once one was reached or not applicable. */
  private holdUntil = 0;
  /** Message ids the broker acknowledged with "no matching subscribers" on this connection. */
  private readonly unheard = new Set<number>();
  private readonly counters = { connects: 0, published: 0, replayed: 0, queued: 0, dropped: 0 };

  private constructor(opts: FacegateMqttOptions, clientOptions: IClientOptions) {
    super();
    this.topics_ = opts.topics;
    this.queue = opts.queue;
    this.eventQos = opts.eventQos ?? 1;
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 10_000;
    this.replayWindow = opts.replayWindow ?? 16;
    // Reason codes exist only in MQTT 5, acknowledgements only at QoS 1 and 2.
    this.subscriberGraceMs =
      opts.protocolVersion === 5 && this.eventQos > 0 ? (opts.subscriberGraceMs ?? 0) : 0;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 5_000;
    this.log = opts.log ?? defaultLog;
    this.client = connect(opts.url, { ...clientOptions, manualConnect: true });
    const { maxPacketBytes } = opts;
    if (maxPacketBytes !== undefined) {
      // mqtt.js builds a stream per connection and offers no hook; its builder is the one place to watch.
      const internals = this.client as unknown as { streamBuilder: (client: MqttClient) => Duplex };
      const build = internals.streamBuilder;
      internals.streamBuilder = (client) => {
        const stream = build(client);
        limitPacketSize(stream, {
          maxPacketBytes,
          onOversize: (bytes) =>
            this.log.log(
              'warn',
              `the broker sent a packet of ${bytes} bytes, over the ${maxPacketBytes} the device takes: reconnecting`,
            ),
        });
        return stream;
      };
    }
    this.client.connect();
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => this.connectionLost('connection closed'));
    this.client.on('error', (err) => this.logError(err));
    // Emitted before mqtt.js completes the publish, so publish() finds the id here when it resolves.
    this.client.on('packetreceive', (packet) => {
      if (packet.cmd !== 'puback' && packet.cmd !== 'pubrec') return;
      if (packet.reasonCode === NO_MATCHING_SUBSCRIBERS) this.unheard.add(packet.messageId as number);
      else this.unheard.delete(packet.messageId as number);
    });
  }

  /** Starts connecting and returns at once: a broker that is down is retried while events queue up. */
  static async start(opts: FacegateMqttOptions): Promise<FacegateMqttClient> {
    const tls = opts.tls;
    const [ca, cert, key] = await Promise.all(
      [tls?.ca, tls?.cert, tls?.key].map((file) => (file ? readFile(file) : undefined)),
    );
    return new FacegateMqttClient(opts, {
      clientId: opts.clientId ?? `facegate-${opts.topics.deviceId}`,
      username: opts.username,
      password: opts.password,
      keepalive: opts.keepaliveSeconds ?? 30,
      reconnectPeriod: opts.reconnectPeriodMs ?? 2_000,
      reconnectOnConnackError: true,
      connectTimeout: opts.connectTimeoutMs ?? 10_000,
      clean: true,
      protocolVersion: opts.protocolVersion ?? 4,
      ...(opts.maxPacketBytes !== undefined && opts.protocolVersion === 5
        ? { properties: { maximumPacketSize: opts.maxPacketBytes } }
        : {}),
      // A QoS 0 publish while mqtt.js is disconnected fails instead of waiting in mqtt.js's memory for
      // the next connection, which would send it around the offline queue and out of order.
      queueQoSZero: false,
      will: {
        topic: opts.topics.availability,
        payload: Buffer.from('offline' satisfies AvailabilityPayload),
        qos: 1,
        retain: true,
      },
      ...(tls ? { ca, cert, key, rejectUnauthorized: tls.rejectUnauthorized } : {}),
    });
  }

  get connected(): boolean {
    return this.online;
  }

  get topics(): Topics {
    return this.topics_;
  }

  /**
   * The mqtt.js connection, for request/response traffic (the control router, Home Assistant's status).
   * Events must go through publishEvent(), which alone keeps their order and the offline queue.
   */
  get connection(): MqttClient {
    return this.client;
  }

  /**
   * Moves to new device topics (mqtt.baseTopic changed live): what was retained under the old ones is
   * cleared on the broker and forgotten, `online` goes to the new availability topic, and the last will
   * follows with the next (re)connect. The caller publishes its retained state again.
   */
  setTopics(topics: Topics): void {
    const old = this.topics_;
    this.topics_ = topics;
    if (this.client.options.will) this.client.options.will.topic = topics.availability;
    const oldDevice = `${old.baseTopic}/${old.deviceId}/`;
    const cleared = [old.availability, ...[...this.retained.keys()].filter((t) => t.startsWith(oldDevice))];
    for (const topic of new Set(cleared)) {
      this.retained.delete(topic);
      if (this.online) this.sendRetained(topic, '');
    }
    if (this.online) this.sendRetained(topics.availability, 'online' satisfies AvailabilityPayload);
  }

  stats(): FacegateMqttStats {
    return { connected: this.online, ...this.counters, queue: this.queue.stats() };
  }

  /**
   * Resolves 'published' once the broker acknowledged the event, 'queued' once it is on disk for a later
   * replay, or 'dropped' when a full drop-newest queue refused it.
   */
  publishEvent(event: FaceEvent): Promise<PublishOutcome> {
    if (this.stopping) return Promise.reject(new Error('MQTT client is stopped'));
    if (this.online && this.queue.size === 0 && !this.draining && !this.holdingForSubscribers()) {
      return this.publishDirect(event);
    }
    return this.store(event);
  }

  /** Retained QoS 1 publish whose latest value is re-sent on every (re)connect. */
  publishRetained(topic: string, payload: string | object): void {
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
    this.retained.set(topic, text);
    if (this.online) this.sendRetained(topic, text);
  }

  /**
   * Flushes direct publishes and the replay of the queue (bounded by stopTimeoutMs; what is left stays
   * queued), publishes `stopped` and disconnects cleanly, so the broker does not send the last will.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const deadline = Date.now() + this.stopTimeoutMs;
    // Events waiting for a subscriber stay queued for the next start; the replay stops offering them.
    const flushing = () =>
      this.inflight.length > 0 || (this.online && this.queue.size > 0 && !this.holdingForSubscribers());
    while (Date.now() < deadline && flushing()) await sleep(10);
    if (flushing()) this.connectionLost('stop timed out while flushing');
    while (this.draining && Date.now() < deadline + 1_000) await sleep(10);
    await Promise.allSettled([...this.pendingStores]);

    const graceful = this.online;
    if (graceful) {
      try {
        await this.publish(this.topics.availability, 'stopped' satisfies AvailabilityPayload, 1, true);
      } catch (err) {
        this.logError(err);
      }
    }
    // Offline from here on, so the close caused by our own DISCONNECT is not reported as a loss.
    this.online = false;
    const ended = await settlesWithin(this.client.endAsync(!graceful), Math.max(deadline - Date.now(), 500));
    // A second end() is ignored by mqtt.js while the first is pending; dropping the socket is not.
    if (!ended) this.client.stream?.destroy();
    this.client.removeAllListeners();
    // mqtt.js may still report errors from a socket being torn down; they are of no interest now.
    this.client.on('error', () => {});
  }

  private onConnect(): void {
    this.online = true;
    this.unheard.clear();
    this.holdUntil = this.subscriberGraceMs > 0 ? Date.now() + this.subscriberGraceMs : 0;
    this.lastError = '';
    this.counters.connects++;
    this.log.info('connected');
    this.sendRetained(this.topics.availability, 'online' satisfies AvailabilityPayload);
    for (const [topic, payload] of this.retained) this.sendRetained(topic, payload);
    this.emit('connect');
    this.kickReplay();
  }

  /**
   * The connection is broken or untrustworthy: move unacknowledged direct publishes to the queue in
   * order, make mqtt.js forget its copies, and make sure the socket is gone so mqtt.js reconnects.
   */
  private connectionLost(reason: string): void {
    const wasOnline = this.online;
    this.online = false;
    for (const entry of this.inflight.splice(0)) {
      if (entry.settled) continue;
      entry.settled = true;
      this.store(entry.event).then(entry.resolve, entry.reject);
    }
    for (const [id, pending] of Object.entries(this.client.outgoing)) {
      if (pending.cmd === 'publish') this.client.removeOutgoingMessage(Number(id));
    }
    if (this.client.connected) this.client.stream.destroy();
    if (wasOnline) {
      this.log.warn(`disconnected: ${reason}`);
      this.emit('disconnect');
    }
  }

  private publishDirect(event: FaceEvent): Promise<PublishOutcome> {
    return new Promise((resolve, reject) => {
      const entry: DirectPublish = { event, settled: false, resolve, reject };
      this.inflight.push(entry);
      this.publish(this.topics.event, JSON.stringify(event), this.eventQos).then(
        () => {
          if (entry.settled) return;
          entry.settled = true;
          this.inflight.splice(this.inflight.indexOf(entry), 1);
          this.counters.published++;
          resolve('published');
        },
        (err) => {
          if (!entry.settled) this.connectionLost(`publish failed: ${(err as Error).message}`);
        },
      );
    });
  }

  private store(event: FaceEvent): Promise<PublishOutcome> {
    // append() writes synchronously: the queue position is fixed before this returns.
    const stored = this.queue.append(event).then(
      (kept): PublishOutcome => {
        if (kept) this.counters.queued++;
        else this.counters.dropped++;
        return kept ? 'queued' : 'dropped';
      },
      (error: Error) => {
        // The disk is full (or failing): the event is lost, which the state topic must show.
        this.counters.dropped++;
        throw error;
      },
    );
    this.pendingStores.add(stored);
    stored.finally(() => this.pendingStores.delete(stored)).catch(() => {});
    this.kickReplay();
    return stored;
  }

  private kickReplay(): void {
    if (this.online && !this.draining && this.queue.size > 0) void this.replay();
  }

  /** Whether events still wait for a subscriber after this connect (see the top of this file). */
  private holdingForSubscribers(): boolean {
    return Date.now() < this.holdUntil;
  }

  /**
   * Publishes the queue head in windows; acknowledges only the prefix the broker confirmed. While events
   * wait for a subscriber the window is one event, offered again until a subscriber takes it.
   */
  private async replay(): Promise<void> {
    this.draining = true;
    this.log.info(`replaying ${this.queue.size} queued event(s) at QoS ${this.eventQos}`);
    let failed = false;
    let keptForNextStart = false;
    // The broker refused an event for want of subscribers during this replay.
    let waiting = false;
    try {
      while (this.online && this.queue.size > 0) {
        const holding = this.holdingForSubscribers();
        if (waiting && !holding) {
          this.log.warn(
            `no subscriber took an event within ${this.subscriberGraceMs / 1000} s of connecting: sending events on`,
          );
          waiting = false;
        }
        const batch = this.queue.peek(holding ? 1 : this.replayWindow);
        const results = await Promise.allSettled(
          batch.map(({ event }) =>
            this.publish(
              this.topics.event,
              JSON.stringify({ ...event, replayed: true } satisfies FaceEvent),
              this.eventQos,
            ),
          ),
        );
        const firstFailure = results.findIndex((r) => r.status === 'rejected');
        const confirmed = firstFailure === -1 ? batch.length : firstFailure;
        if (holding && confirmed === 1) {
          if ((results[0] as PromiseFulfilledResult<boolean>).value) {
            this.holdUntil = 0;
          } else {
            // A stop keeps the waiting events for the next start.
            keptForNextStart = this.stopping !== null;
            if (keptForNextStart) break;
            if (!waiting) {
              this.log.info(
                `the broker has no subscriber for events: keeping them queued for up to ${this.subscriberGraceMs / 1000} s`,
              );
              waiting = true;
            }
            await sleep(SUBSCRIBER_POLL_MS);
            continue;
          }
        }
        if (confirmed > 0) {
          await this.queue.ack(batch[confirmed - 1].seq);
          this.counters.replayed += confirmed;
        }
        if (confirmed < batch.length) {
          this.connectionLost(`replay failed: ${(results[confirmed] as PromiseRejectedResult).reason}`);
          return;
        }
      }
    } catch (err) {
      failed = true;
      this.logError(err);
    } finally {
      this.draining = false;
    }
    if (failed || keptForNextStart) return;
    if (this.queue.size > 0) {
      // A reconnect that happened while this replay was finishing found it still running.
      this.kickReplay();
      return;
    }
    this.log.info('offline queue replayed');
    this.emit('drained');
  }

  private sendRetained(topic: string, payload: string): void {
    this.publish(topic, payload, 1, true).catch((err) => this.logError(err));
  }

  /**
   * Resolves on the broker's PUBACK (QoS 1) or PUBCOMP (QoS 2), or once written to the socket (QoS 0): true
   * unless an MQTT 5 broker said no subscription matched.
   */
  private publish(topic: string, payload: string, qos: Qos, retain = false): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${NOT_CONFIRMED[qos]} within ${this.publishTimeoutMs} ms on ${topic}`)),
        this.publishTimeoutMs,
      );
      this.client.publish(topic, payload, { qos, retain }, (err, packet) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(!(packet?.messageId !== undefined && this.unheard.delete(packet.messageId)));
      });
    });
  }

  /** Reconnect loops repeat the same error every period; log it once until something changes. */
  private logError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (message === this.lastError) return;
    this.lastError = message;
    this.log.error(message);
  }
}

export function startMqttClient(opts: FacegateMqttOptions): Promise<FacegateMqttClient> {
  return FacegateMqttClient.start(opts);
}
