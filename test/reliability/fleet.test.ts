// A fleet on one broker: N device control planes (the real ControlRouter and handlers, each on its own
// MQTT connection; the device behind them is the unit tests' fake ports) against one real mosquitto on
// loopback. A fleet-wide request reaches every device once, a per-device request reaches only its
// device, and no response carries another device's answer. FACEGATE_FLEET_DEVICES sets N.
//
// The N answers to a fleet-wide request reach the one operator client at once: mosquitto sends it 20
// unacknowledged at a time (max_inflight_messages) and holds at most max_queued_messages (1000 by default)
// more, dropping the rest with "Outgoing messages are being dropped". The broker here holds one per device
// (docs/fleet.md says the same for a real broker).
import { connect, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandlers } from '../../runtime/control/handlers/index.ts';
import { ControlRouter } from '../../runtime/control/router.ts';
import { buildTopics } from '../../runtime/mqtt/topics.ts';
import { silentLogger } from '../../runtime/util/log.ts';
import { defaultConfig, fakePorts } from '../helpers/control-fakes.ts';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.ts';
import { Subscriber, waitUntil } from '../integration/mqtt/support.ts';

const DEVICES = Number(process.env.FACEGATE_FLEET_DEVICES ?? 200);
const BASE = 'facegate';
/** What mosquitto says when a client's queue is full and QoS 1 messages to it are thrown away. */
const DROPPED = /Outgoing messages are being dropped for client \S+/;

interface SimulatedDevice {
  id: string;
  client: MqttClient;
  router: ControlRouter;
}

let broker: Mosquitto;
let operator: Subscriber;
const fleet: SimulatedDevice[] = [];

async function startDevice(id: string): Promise<SimulatedDevice> {
  const client = connect(broker.url, { clientId: `facegate-${id}`, reconnectPeriod: 500 });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  const control = defaultConfig().control;
  const router = new ControlRouter({
    client,
    topics: buildTopics({ baseTopic: BASE, deviceId: id }),
    control: () => control,
    handlers: createHandlers(fakePorts('/nonexistent/config.yaml')),
    log: silentLogger,
  });
  await router.start();
  return { id, client, router };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

beforeAll(
  async () => {
    broker = await startMosquitto({ maxQueuedMessages: Math.max(1000, DEVICES) });
    for (let i = 0; i < DEVICES; i += 50) {
      const ids = Array.from(
        { length: Math.min(50, DEVICES - i) },
        (_, k) => `door-${String(i + k).padStart(4, '0')}`,
      );
      fleet.push(...(await Promise.all(ids.map(startDevice))));
    }
    operator = await Subscriber.connect(broker.url, [`${BASE}/+/response/#`]);
    recordAnswers(operator.client);
    // Connecting and subscribing takes about 20 ms a device on a busy machine.
  },
  120_000 + DEVICES * 100,
);

afterAll(async () => {
  await operator?.end();
  await Promise.all(
    fleet.map(async (d) => {
      await d.router.stop();
      await d.client.endAsync(true);
    }),
  );
  await broker?.dispose();
});

interface Answer {
  topic: string;
  body: { status: string; transaction?: string };
}

/** Answers by transaction, each parsed once as it arrives (a scan of every message per poll costs O(N²)). */
const answers = new Map<string, Answer[]>();
/** Who waits for the first answer to a transaction. */
const waiting = new Map<string, () => void>();

const responses = (transaction: string): Answer[] => answers.get(transaction) ?? [];

function recordAnswers(client: MqttClient): void {
  client.on('message', (topic, payload) => {
    const body = JSON.parse(payload.toString()) as Answer['body'];
    const key = String(body.transaction);
    const list = answers.get(key);
    if (list) list.push({ topic, body });
    else answers.set(key, [{ topic, body }]);
    waiting.get(key)?.();
  });
}

/** Resolves as soon as the first answer to `transaction` arrives (no polling interval in the round trip). */
function firstAnswer(transaction: string, timeoutMs: number): Promise<void> {
  if (responses(transaction).length > 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(transaction);
      reject(new Error(`no answer to ${transaction} within ${timeoutMs} ms`));
    }, timeoutMs);
    waiting.set(transaction, () => {
      clearTimeout(timer);
      waiting.delete(transaction);
      resolve();
    });
  });
}

describe(`a fleet of ${DEVICES} devices on one mosquitto`, () => {
  it('delivers a fleet-wide request to every device exactly once', async () => {
    const started = Date.now();
    await operator.client.publishAsync(
      `${BASE}/all/request/health`,
      JSON.stringify({ transaction: 'fleet-1' }),
      {
        qos: 1,
      },
    );
    const allAnswered = await waitUntil(
      'every device to answer',
      () => responses('fleet-1').length >= DEVICES,
      60_000,
    ).then(
      () => true,
      () => false,
    );
    const elapsed = Date.now() - started;
    await new Promise((r) => setTimeout(r, 500));
    const arrived = `${responses('fleet-1').length} of ${DEVICES} answers within 60 s`;
    // The broker's word first: it names the cause when answers are missing.
    expect(broker.log().match(DROPPED)?.[0], arrived).toBeUndefined();
    expect(allAnswered, arrived).toBe(true);
    const answered = responses('fleet-1').map((r) => r.topic.split('/')[1]);
    expect(answered.sort()).toEqual(fleet.map((d) => d.id).sort());
    expect(responses('fleet-1').every((r) => r.body.status === 'ok')).toBe(true);
    console.log(`[fleet] ${DEVICES} devices answered a fleet-wide request in ${elapsed} ms`);
  });

  it('delivers a per-device request to that device only, and reports the round-trip p95', async () => {
    const roundTrips: number[] = [];
    for (const device of fleet) {
      const transaction = `to-${device.id}`;
      const started = performance.now();
      await operator.client.publishAsync(
        `${BASE}/${device.id}/request/health`,
        JSON.stringify({ transaction }),
        { qos: 1 },
      );
      await firstAnswer(transaction, 10_000);
      roundTrips.push(performance.now() - started);
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const device of fleet) {
      const got = responses(`to-${device.id}`);
      // No cross-talk: exactly one answer, from the device addressed.
      expect(got.map((r) => r.topic)).toEqual([`${BASE}/${device.id}/response/health`]);
    }
    const p50 = percentile(roundTrips, 50);
    const p95 = percentile(roundTrips, 95);
    console.log(
      `[fleet] ${DEVICES} devices held; per-device command round trip p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${Math.max(...roundTrips).toFixed(1)} ms`,
    );
    expect(p95).toBeLessThan(2_000);
  });
});
