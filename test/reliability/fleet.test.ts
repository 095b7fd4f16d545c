// A fleet on one broker: N device control planes (the real ControlRouter and handlers, each on its own
// MQTT connection; the device behind them is the unit tests' fake ports) against one real mosquitto on
// loopback. A fleet-wide request reaches every device once, a per-device request reaches only its
// device, and no response carries another device's answer. FACEGATE_FLEET_DEVICES sets N.
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

beforeAll(async () => {
  broker = await startMosquitto();
  for (let i = 0; i < DEVICES; i += 50) {
    const ids = Array.from(
      { length: Math.min(50, DEVICES - i) },
      (_, k) => `door-${String(i + k).padStart(4, '0')}`,
    );
    fleet.push(...(await Promise.all(ids.map(startDevice))));
  }
  operator = await Subscriber.connect(broker.url, [`${BASE}/+/response/#`]);
});

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

const responses = (transaction: string) =>
  operator.messages
    .map((m) => ({ topic: m.topic, body: JSON.parse(m.payload) as { status: string; transaction?: string } }))
    .filter((r) => r.body.transaction === transaction);

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
    await waitUntil('every device to answer', () => responses('fleet-1').length >= DEVICES, 60_000);
    const elapsed = Date.now() - started;
    await new Promise((r) => setTimeout(r, 500));
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
      await waitUntil(`${device.id} to answer`, () => responses(transaction).length > 0, 10_000);
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
