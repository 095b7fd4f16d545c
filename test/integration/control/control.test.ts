// The control plane against a real mosquitto: an operator client publishes requests and reads responses,
// a device runs the router over mqtt.js with fake ports.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type IClientOptions } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, mergeConfig } from '../../../runtime/config/index.ts';
import type { CommandName } from '../../../runtime/control/api.ts';
import { createHandlers } from '../../../runtime/control/handlers/index.ts';
import { ControlRouter } from '../../../runtime/control/router.ts';
import { signCommand } from '../../../runtime/control/signing.ts';
import { buildTopics } from '../../../runtime/mqtt/topics.ts';
import { recordingLogger } from '../../../runtime/util/log.ts';
import { defaultConfig, fakePorts, JPEG, makeSigningKey, PNG } from '../../helpers/control-fakes.ts';
import { type Mosquitto, startMosquitto } from '../../helpers/mosquitto.ts';
import { Subscriber, useCleanup, waitUntil } from '../mqtt/support.ts';

const cleanup = useCleanup();
/** The operator's key, trusted by every device here: privileged commands on a shared broker are signed. */
const OPERATOR = makeSigningKey();

async function startDevice(url: string, deviceId: string, patch: unknown = {}, opts: IClientOptions = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'facegate-control-'));
  cleanup(() => rm(dir, { recursive: true, force: true }));
  const topics = buildTopics({ baseTopic: 'facegate', deviceId });
  const client = connect(url, {
    clientId: `facegate-${deviceId}`,
    reconnectPeriod: 200,
    connectTimeout: 5_000,
    ...opts,
  });
  client.on('error', () => {});
  cleanup(() => Promise.race([client.endAsync(true), new Promise((r) => setTimeout(r, 2_000))]));
  await waitUntil(`${deviceId} to connect`, () => client.connected);
  const ports = fakePorts(
    join(dir, 'config.yaml'),
    defaultConfig(
      mergeConfig({ device: { id: deviceId }, control: { commandPublicKeys: [OPERATOR.publicPem] } }, patch),
    ),
  );
  ports.device.publishSnapshot = async (jpeg) => {
    await client.publishAsync(topics.snapshot, jpeg, { qos: 1 });
  };
  const logs: string[] = [];
  const router = new ControlRouter({
    client,
    topics,
    control: () => ports.config.current().control,
    handlers: createHandlers(ports),
    log: recordingLogger((level, message) => logs.push(`${level}: ${message}`)),
  });
  await router.start();
  cleanup(() => router.stop());
  return { topics, ports, router, logs, dir };
}

async function operator(url: string, opts: IClientOptions = {}): Promise<Subscriber> {
  const op = await Subscriber.connect(url, ['facegate/+/response/#', 'facegate/+/snapshot'], opts);
  cleanup(() => op.end());
  return op;
}

/** Publishes `payload` on `topic` and returns the next message on `responseTopic`, parsed. */
async function roundTrip(
  op: Subscriber,
  topic: string,
  responseTopic: string,
  payload: object | string | Buffer,
) {
  const before = op.on(responseTopic).length;
  const bytes = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
  await op.client.publishAsync(topic, bytes, { qos: 1 });
  await waitUntil(`a response on ${responseTopic}`, () => op.on(responseTopic).length > before);
  return JSON.parse(op.on(responseTopic)[before].payload) as Record<string, unknown>;
}

/** A request and its response; an object without a signature is signed with OPERATOR, bytes go as they are. */
const ask = (
  op: Subscriber,
  topics: ReturnType<typeof buildTopics>,
  command: string,
  payload: object | string | Buffer,
) => {
  const topic = topics.request(command);
  const signed =
    typeof payload === 'string' || Buffer.isBuffer(payload) || 'signature' in payload
      ? payload
      : signCommand(payload, OPERATOR.privateKey, OPERATOR.keyId, topic);
  return roundTrip(op, topic, topics.response(command), signed);
};

describe('control plane over mosquitto', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(() => broker?.dispose());

  it('answers every command with its transaction', async () => {
    const { topics, ports, dir } = await startDevice(broker.url, 'door', { mqtt: { password: 'hunter2' } });
    const op = await operator(broker.url);
    const seen = '6f1c1e0a-4c1d-4a53-9a52-0f9a8e1d2c11';
    ports.recentEvents.set(seen, 'bob');
    ports.unknowns.set('unknown-3', 2);
    ports.unknowns.set('unknown-4', 1);
    const requests: Record<CommandName, object> = {
      'config/get': {},
      'config/set': { config: { detection: { minScore: 0.6 }, models: { threads: 2 } } },
      'face/enroll': { name: 'alice', images: [JPEG.toString('base64'), PNG.toString('base64')] },
      'face/list': {},
      'face/remove': { name: 'alice' },
      'face/unknowns': {},
      'face/reject': { event: seen },
      'face/dismiss': { unknown: 'unknown-4' },
      'model/update': { manifestUrl: 'https://models.example/manifest.json' },
      'model/rollback': {},
      'model/status': {},
      snapshot: { publish: true },
      health: {},
      restart: {},
      'app/update': { url: 'https://releases.example/facegate.tar.xz', sha256: 'a'.repeat(64), bytes: 1000 },
    };
    const data: Record<string, Record<string, unknown>> = {};
    for (const [i, command] of (Object.keys(requests) as (keyof typeof requests)[]).entries()) {
      const response = await ask(op, topics, command, { ...requests[command], transaction: `t${i}` });
      expect(response, command).toMatchObject({ status: 'ok', transaction: `t${i}` });
      data[command] = response.data as Record<string, unknown>;
    }
    expect(data['config/get']).toMatchObject({ config: { mqtt: { password: '***' } } });
    expect(data['config/set']).toEqual({
      applied: ['detection.minScore'],
      restart_required: ['models.threads'],
    });
    expect(loadConfig({ file: join(dir, 'config.yaml'), env: {} }).detection.minScore).toBe(0.6);
    expect(data['face/enroll']).toEqual({ name: 'alice', added: 2 });
    expect(data['face/list']).toMatchObject({ faces: [{ name: 'alice', embeddings: 2 }] });
    expect(data['face/remove']).toEqual({ name: 'alice', removed: true });
    expect(data['face/unknowns']).toMatchObject({
      unknowns: [
        { id: 'unknown-3', faces: 2 },
        { id: 'unknown-4', faces: 1 },
      ],
    });
    expect(data['face/reject']).toEqual({ event: seen, identity: 'bob', negatives: 3 });
    expect(data['face/dismiss']).toEqual({ unknown: 'unknown-4', removed: true });
    expect(await ask(op, topics, 'face/enroll', { name: 'carol', fromUnknown: 'unknown-3' })).toEqual({
      status: 'ok',
      data: { name: 'carol', added: 2 },
    });
    expect(await ask(op, topics, 'face/enroll', { name: 'carol', fromEvent: seen })).toEqual({
      status: 'ok',
      data: { name: 'carol', added: 1 },
    });
    const both = await ask(op, topics, 'face/enroll', {
      name: 'carol',
      fromEvent: seen,
      fromUnknown: 'unknown-3',
    });
    expect(both).toMatchObject({ status: 'error', error: expect.stringMatching(/^invalid request: /) });
    expect(await ask(op, topics, 'face/reject', { event: 'not-a-uuid' })).toMatchObject({
      status: 'error',
      error: expect.stringMatching(/^invalid request: event: must match pattern/),
    });
    expect(ports.modelUpdates).toEqual([{ manifestUrl: 'https://models.example/manifest.json' }]);
    expect(data.snapshot).toEqual({ camera: 'door', bytes: JPEG.length, published: true });
    await waitUntil('the snapshot', () => op.on(topics.snapshot).length === 1);
    expect(data.health).toMatchObject({ cameras: [{ id: 'door' }], queueDepth: 0 });
    expect(data.restart).toEqual({ restarting: true });
    await waitUntil('the restart', () => ports.restarts === 1);
  });

  it('answers a base64 snapshot in the response', async () => {
    const { topics } = await startDevice(broker.url, 'porch');
    const op = await operator(broker.url);
    expect(await ask(op, topics, 'snapshot', { camera: 'porch', transaction: 1 })).toEqual({
      status: 'ok',
      data: { camera: 'porch', bytes: JPEG.length, image: JPEG.toString('base64') },
      transaction: 1,
    });
  });

  it('answers malformed, oversized, unknown and wildcard requests with errors and changes nothing', async () => {
    const { topics, ports } = await startDevice(broker.url, 'yard', { control: { maxPayloadBytes: 1024 } });
    ports.faces.set('alice', [JPEG]);
    const op = await operator(broker.url);

    expect(await ask(op, topics, 'face/remove', '{"name": "alice"')).toEqual({
      status: 'error',
      error: expect.stringMatching(/^payload is not valid JSON/),
    });
    const oversized = JSON.stringify({ name: 'alice', padding: 'x'.repeat(1024) });
    expect(await ask(op, topics, 'face/remove', oversized)).toEqual({
      status: 'error',
      error: 'payload of 1053 bytes exceeds control.maxPayloadBytes (1024)',
    });
    expect(await ask(op, topics, 'face/rename', { name: 'alice', transaction: 'u' })).toEqual({
      status: 'error',
      error: "unknown command 'face/rename'",
      transaction: 'u',
    });
    for (const name of ['+', 'alice/#', 'al+ice', '../alice']) {
      expect(await ask(op, topics, 'face/remove', { name, transaction: name })).toEqual({
        status: 'error',
        error: expect.stringMatching(
          new RegExp(`^invalid request: name ${JSON.stringify(name).replace(/[+.]/g, '\\$&')} `),
        ),
        transaction: name,
      });
    }
    expect(
      await ask(op, topics, 'face/enroll', { name: 'bob', images: ['not base64!'], transaction: 'b' }),
    ).toEqual({
      status: 'error',
      error: 'images[0] is not valid base64',
      transaction: 'b',
    });
    expect([...ports.faces.keys()]).toEqual(['alice']);
    // The device is still answering normally.
    expect(await ask(op, topics, 'face/list', { transaction: 'ok' })).toMatchObject({ status: 'ok' });
  });

  it('answers fleet-wide requests from every device, each on its own response topic', async () => {
    const a = await startDevice(broker.url, 'fleet-a');
    const b = await startDevice(broker.url, 'fleet-b');
    const op = await operator(broker.url);
    await op.client.publishAsync(a.topics.allRequest('health'), JSON.stringify({ transaction: 'all-1' }), {
      qos: 1,
    });
    await waitUntil('both devices to answer', () =>
      [a, b].every((d) => op.on(d.topics.response('health')).length === 1),
    );
    for (const device of [a, b]) {
      expect(JSON.parse(op.on(device.topics.response('health'))[0].payload)).toMatchObject({
        status: 'ok',
        transaction: 'all-1',
      });
    }
    // A request for one device reaches only that one.
    expect(await ask(op, b.topics, 'model/status', { transaction: 'b-only' })).toMatchObject({
      status: 'ok',
    });
    expect(op.on(a.topics.response('model/status'))).toEqual([]);
  });
});

describe('control plane over TLS with a username and password', () => {
  it('answers signed and unsigned requests', async () => {
    const auth = { username: 'operator', password: 'correct horse' };
    const broker = await startMosquitto({ auth, tls: true });
    cleanup(() => broker.dispose());
    const tls: IClientOptions = {
      ...auth,
      ca: await readFile(broker.caFile as string),
      rejectUnauthorized: true,
    };
    const key = makeSigningKey();
    const { topics, ports } = await startDevice(
      broker.tlsUrl as string,
      'vault',
      { control: { requireSignedCommands: true, commandPublicKeys: [key.publicPem] } },
      tls,
    );
    ports.faces.set('mallory', [JPEG]);
    const op = await operator(broker.tlsUrl as string, tls);

    expect(await ask(op, topics, 'health', JSON.stringify({ transaction: 'h' }))).toMatchObject({
      status: 'ok',
      transaction: 'h',
    });
    const unsigned = JSON.stringify({ name: 'mallory', transaction: 'unsigned' });
    expect(await ask(op, topics, 'face/remove', unsigned)).toEqual({
      status: 'error',
      error:
        "command 'face/remove' must be signed with an operator key (control.requireSignedCommands is on; see docs/security.md)",
      transaction: 'unsigned',
    });
    const topic = topics.request('face/remove');
    const signed = signCommand({ name: 'mallory', transaction: 'signed' }, key.privateKey, key.keyId, topic);
    expect(await ask(op, topics, 'face/remove', signed)).toEqual({
      status: 'ok',
      data: { name: 'mallory', removed: true },
      transaction: 'signed',
    });
    ports.faces.set('mallory', [JPEG]);
    expect(await ask(op, topics, 'face/remove', signed)).toMatchObject({
      status: 'error',
      error: 'signature rejected: replayed request: this nonce was already used',
    });
    expect(ports.faces.has('mallory')).toBe(true);
  });
});
