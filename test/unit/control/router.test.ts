import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CommandHandlers, isPrivileged, REQUESTS } from '../../../runtime/control/api.ts';
import { createHandlers } from '../../../runtime/control/handlers/index.ts';
import { type ControlConfig, ControlRouter, MAX_QUEUED_REQUESTS } from '../../../runtime/control/router.ts';
import { CommandVerifier, MAX_CLOCK_SKEW_MS, signCommand } from '../../../runtime/control/signing.ts';
import { buildTopics } from '../../../runtime/mqtt/topics.ts';
import { recordingLogger } from '../../../runtime/util/log.ts';
import {
  defaultConfig,
  FakeMqttClient,
  fakePorts,
  JPEG,
  makeSigningKey,
  modelStatus,
} from '../../helpers/control-fakes.ts';

const NOW = 1_700_000_000_000;
const key = makeSigningKey();
const otherKey = makeSigningKey();

/**
 * A router over a fake client. `privateBroker` is on unless asked otherwise: these tests are about routing
 * on facegate's own loopback broker, where privileged commands may run unsigned; the secure default on any
 * other broker has its own tests below.
 */
async function setup(
  control: Partial<ControlConfig> = {},
  handlers: Partial<CommandHandlers> = {},
  opts: { privateBroker?: boolean; operatorKeys?: () => string[]; nonceFile?: string } = {},
) {
  const client = new FakeMqttClient();
  const topics = buildTopics({ baseTopic: 'facegate', deviceId: 'cam-01' });
  const state = { control: { ...defaultConfig().control, ...control }, clock: NOW };
  // config/set is covered with a real file in handlers.test.ts; here it must never be reached.
  const ports = fakePorts('/nonexistent/config.yaml');
  const logs: string[] = [];
  const router = new ControlRouter({
    client,
    topics,
    control: () => state.control,
    handlers: { ...createHandlers(ports), ...handlers },
    log: recordingLogger((level, message) => logs.push(`${level}: ${message}`)),
    now: () => state.clock,
    privateBroker: opts.privateBroker ?? true,
    operatorKeys: opts.operatorKeys,
    nonceFile: opts.nonceFile,
  });
  await router.start();

  /** Publishes on `topic` (a command, or a full topic) and returns the one response it caused. */
  async function send(topic: string, payload: object | string | Buffer = {}) {
    const before = client.published.length;
    client.deliver(topic.startsWith('facegate/') ? topic : topics.request(topic), payload);
    await router.idle();
    const responses = client.published.slice(before);
    expect(responses).toHaveLength(1);
    return responses[0];
  }
  const call = async (topic: string, payload?: object | string | Buffer) =>
    (await send(topic, payload)).payload;
  return { client, topics, state, ports, logs, router, send, call };
}

describe('ControlRouter', () => {
  it('subscribes to every request for the device and the fleet', async () => {
    const { client } = await setup();
    expect([...client.subscriptions]).toEqual(['facegate/cam-01/request/#', 'facegate/all/request/#']);
  });

  it('answers on response/<command> with the data and the transaction', async () => {
    const { send, ports } = await setup();
    ports.faces.set('alice', [JPEG]);
    const response = await send('face/list', { transaction: 'tx-1' });
    expect(response.topic).toBe('facegate/cam-01/response/face/list');
    expect(response.payload).toEqual({
      status: 'ok',
      data: { faces: [expect.objectContaining({ name: 'alice', embeddings: 1 })] },
      transaction: 'tx-1',
    });
    expect((await send('health', { transaction: 7 })).payload).toMatchObject({
      status: 'ok',
      transaction: 7,
    });
  });

  it('answers fleet requests on its own response topic', async () => {
    const { send } = await setup();
    const response = await send('facegate/all/request/model/status', { transaction: 'fleet' });
    expect(response.topic).toBe('facegate/cam-01/response/model/status');
    expect(response.payload).toMatchObject({ status: 'ok', transaction: 'fleet' });
  });

  it('treats an empty payload as an empty request', async () => {
    const { call } = await setup();
    expect(await call('health', '')).toMatchObject({ status: 'ok' });
  });

  it('ignores topics that are not requests for this device', async () => {
    const { client, router } = await setup();
    for (const topic of [
      'facegate/cam-02/request/health',
      'facegate/cam-01/response/health',
      'homeassistant/status',
    ]) {
      client.deliver(topic, {});
    }
    await router.idle();
    expect(client.published).toEqual([]);
  });

  it('refuses a payload above control.maxPayloadBytes before parsing it', async () => {
    const { call, ports } = await setup({ maxPayloadBytes: 256 });
    const response = await call('face/remove', `{"name": "${'x'.repeat(300)}`);
    expect(response).toEqual({
      status: 'error',
      error: 'payload of 310 bytes exceeds control.maxPayloadBytes (256)',
    });
    expect(await call('face/remove', { name: 'alice', pad: 'x'.repeat(250) })).toMatchObject({
      error: expect.stringMatching(/exceeds control.maxPayloadBytes/),
    });
    expect(ports.faces.size).toBe(0);
  });

  it('refuses malformed JSON and invalid UTF-8', async () => {
    const { call } = await setup();
    expect(await call('health', '{"transaction": 1,')).toEqual({
      status: 'error',
      error: expect.stringMatching(/^payload is not valid JSON: /),
    });
    expect(await call('health', Buffer.from([0x7b, 0xff, 0x7d]))).toEqual({
      status: 'error',
      error: 'payload is not valid UTF-8',
    });
  });

  it('names every schema violation and still echoes a valid transaction', async () => {
    const { call, ports } = await setup();
    expect(await call('face/enroll', { transaction: 'a', nmae: 'alice', images: 'x' })).toEqual({
      status: 'error',
      error: 'invalid request: name: required; nmae: unknown field; images: must be array',
      transaction: 'a',
    });
    expect(await call('health', [1, 2])).toEqual({
      status: 'error',
      error: 'invalid request: request: must be object',
    });
    expect(await call('health', { transaction: { nested: true } })).toEqual({
      status: 'error',
      error: 'invalid request: transaction: must be string,number',
    });
    expect(ports.faces.size).toBe(0);
  });

  it('refuses commands missing from control.allow, reading the setting per request', async () => {
    const { call, state, ports } = await setup({ allow: ['health'] });
    ports.faces.set('alice', []);
    expect(await call('face/remove', { name: 'alice', transaction: 1 })).toEqual({
      status: 'error',
      error: "command 'face/remove' is not allowed on this device (control.allow)",
      transaction: 1,
    });
    expect(ports.faces.has('alice')).toBe(true);
    state.control = { ...state.control, allow: ['face/remove'] };
    expect(await call('face/remove', { name: 'alice' })).toMatchObject({ status: 'ok' });
  });

  it('answers an unknown command with an error on its response topic', async () => {
    const { send } = await setup();
    const response = await send('face/rename', { transaction: 'u' });
    expect(response.topic).toBe('facegate/cam-01/response/face/rename');
    expect(response.payload).toEqual({
      status: 'error',
      error: "unknown command 'face/rename'",
      transaction: 'u',
    });
  });

  it.each([
    ['a+b', 'contains an MQTT wildcard (+ or #)'],
    ['a#', 'contains an MQTT wildcard (+ or #)'],
    ['a/b', 'contains the topic separator /'],
    ['a\u0000b', 'contains a control character'],
    ['a\nb', 'contains a control character'],
    ['..', 'contains ..'],
    ['a..b', 'contains ..'],
    ['', 'is empty'],
  ])('refuses the identifier %j', async (name, problem) => {
    const { call, ports } = await setup();
    ports.faces.set(name, []);
    expect(await call('face/remove', { name })).toEqual({
      status: 'error',
      error: `invalid request: name ${JSON.stringify(name)} ${problem}`,
    });
    expect(await call('snapshot', { camera: name })).toMatchObject({
      error: expect.stringContaining(problem),
    });
    expect(ports.faces.has(name)).toBe(true);
  });

  it('turns a handler exception into an error response and goes on with the next request', async () => {
    const { call } = await setup(
      {},
      {
        health: () => {
          throw new Error('camera pipeline is not running');
        },
      },
    );
    expect(await call('health', { transaction: 3 })).toEqual({
      status: 'error',
      error: 'camera pipeline is not running',
      transaction: 3,
    });
    expect(await call('model/status')).toMatchObject({ status: 'ok' });
  });

  it('runs requests one at a time, in arrival order', async () => {
    let running = 0;
    let maxRunning = 0;
    const order: string[] = [];
    const slow = async (name: string) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 5));
      order.push(name);
      running--;
    };
    const { client, topics, router } = await setup(
      {},
      {
        'face/remove': async ({ name }) => {
          await slow(name);
          return { name, removed: true };
        },
      },
    );
    for (const name of ['a', 'b', 'c', 'd'])
      client.deliver(topics.request('face/remove'), { name, transaction: name });
    await router.idle();
    expect(maxRunning).toBe(1);
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect(client.published.map((p) => p.payload.transaction)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('refuses requests beyond the queue bound at once', async () => {
    let release = () => {};
    const blocked = new Promise<void>((r) => {
      release = r;
    });
    const { client, topics, router } = await setup(
      {},
      {
        health: async () => {
          await blocked;
          throw new Error('released');
        },
      },
    );
    for (let i = 0; i < MAX_QUEUED_REQUESTS + 2; i++)
      client.deliver(topics.request('health'), { transaction: i });
    expect(client.published.map((p) => p.payload.error)).toEqual([
      `busy: ${MAX_QUEUED_REQUESTS} requests are waiting; try again later`,
      `busy: ${MAX_QUEUED_REQUESTS} requests are waiting; try again later`,
    ]);
    release();
    await router.idle();
    expect(client.published).toHaveLength(MAX_QUEUED_REQUESTS + 2);
  });

  it('restarts only after the response is published', async () => {
    const { client, topics, router, ports } = await setup();
    const seenAtRestart: number[] = [];
    ports.device.restart = () => {
      seenAtRestart.push(client.published.length);
    };
    client.deliver(topics.request('restart'), { transaction: 'r' });
    await router.idle();
    expect(client.published[0].payload).toEqual({
      status: 'ok',
      data: { restarting: true },
      transaction: 'r',
    });
    expect(seenAtRestart).toEqual([1]);
  });

  it('moves to new topics without losing requests', async () => {
    const { client, router } = await setup();
    await router.setTopics(buildTopics({ baseTopic: 'site1/facegate', deviceId: 'cam-01' }));
    expect([...client.subscriptions]).toEqual([
      'site1/facegate/cam-01/request/#',
      'site1/facegate/all/request/#',
    ]);
    client.deliver('facegate/cam-01/request/health');
    client.deliver('site1/facegate/cam-01/request/health');
    await router.idle();
    expect(client.published.map((p) => p.topic)).toEqual(['site1/facegate/cam-01/response/health']);
  });

  it('stops listening on stop()', async () => {
    const { client, router } = await setup();
    await router.stop();
    expect(client.subscriptions.size).toBe(0);
    client.deliver('facegate/cam-01/request/health');
    await router.idle();
    expect(client.published).toEqual([]);
  });
});

describe('ControlRouter signed commands', () => {
  const control = {
    requireSignedCommands: true,
    commandPublicKeys: [key.publicPem],
    maxCommandAgeSeconds: 300,
  };
  const topic = 'facegate/cam-01/request/face/remove';
  const signed = (
    body: Record<string, unknown>,
    opts: { timestamp?: number; nonce?: string; on?: string } = {},
  ) => signCommand(body, key.privateKey, key.keyId, opts.on ?? topic, { timestamp: NOW, ...opts });

  async function signedSetup() {
    const s = await setup(control);
    s.ports.faces.set('alice', []);
    return s;
  }

  it('runs a validly signed state-changing command', async () => {
    const { call, ports } = await signedSetup();
    expect(await call(topic, signed({ name: 'alice', transaction: 1 }))).toEqual({
      status: 'ok',
      data: { name: 'alice', removed: true },
      transaction: 1,
    });
    expect(ports.faces.has('alice')).toBe(false);
  });

  it('refuses an unsigned state-changing command but answers read-only ones', async () => {
    const { call, ports } = await signedSetup();
    expect(await call(topic, { name: 'alice' })).toEqual({
      status: 'error',
      error:
        "command 'face/remove' must be signed with an operator key (control.requireSignedCommands is on; see docs/security.md)",
    });
    expect(ports.faces.has('alice')).toBe(true);
    expect(await call('health')).toMatchObject({ status: 'ok' });
  });

  const refusals: [string, (s: Awaited<ReturnType<typeof signedSetup>>) => Promise<unknown>, string][] = [
    [
      'a tampered body',
      (s) => s.call(topic, { ...signed({ name: 'bob' }), name: 'alice' }),
      'signature rejected: bad signature',
    ],
    [
      'a signature made for another device',
      (s) => s.call(topic, signed({ name: 'alice' }, { on: 'facegate/cam-02/request/face/remove' })),
      'signature rejected: bad signature',
    ],
    [
      'a signature made for another command',
      (s) => s.call(topic, signed({ name: 'alice' }, { on: 'facegate/cam-01/request/face/enroll' })),
      'signature rejected: bad signature',
    ],
    [
      'an unknown key',
      (s) =>
        s.call(
          topic,
          signCommand({ name: 'alice' }, otherKey.privateKey, otherKey.keyId, topic, { timestamp: NOW }),
        ),
      `signature rejected: unknown signing key ${otherKey.keyId}: not an installed operator key (control.commandPublicKeys, control.operatorKeysFile)`,
    ],
    [
      'a stale signature',
      (s) => s.call(topic, signed({ name: 'alice' }, { timestamp: NOW - 301_000 })),
      'signature rejected: signature expired: signed 301 s ago, control.maxCommandAgeSeconds is 300',
    ],
    [
      'a signature from the future',
      (s) => s.call(topic, signed({ name: 'alice' }, { timestamp: NOW + MAX_CLOCK_SKEW_MS + 5_000 })),
      `signature rejected: signature timestamp is ${MAX_CLOCK_SKEW_MS / 1000 + 5} s in the future (at most ${MAX_CLOCK_SKEW_MS / 1000} s of clock skew is allowed)`,
    ],
  ];

  it.each(refusals)('refuses %s and changes nothing', async (_what, send, error) => {
    const s = await signedSetup();
    expect(await send(s)).toEqual({ status: 'error', error: expect.stringContaining(error) });
    expect(s.ports.faces.has('alice')).toBe(true);
  });

  it('accepts a signature within the age window and the allowed clock skew', async () => {
    const { call, ports } = await signedSetup();
    ports.faces.set('bob', []);
    expect(await call(topic, signed({ name: 'alice' }, { timestamp: NOW - 299_000 }))).toMatchObject({
      status: 'ok',
    });
    expect(await call(topic, signed({ name: 'bob' }, { timestamp: NOW + MAX_CLOCK_SKEW_MS }))).toMatchObject({
      status: 'ok',
    });
  });

  it('refuses a replayed nonce, even with a fresh signature', async () => {
    const { call, ports } = await signedSetup();
    const request = signed({ name: 'alice' }, { nonce: 'nonce-0123456789abcdef' });
    expect(await call(topic, request)).toMatchObject({ status: 'ok' });
    ports.faces.set('alice', []);
    expect(await call(topic, request)).toEqual({
      status: 'error',
      error: 'signature rejected: replayed request: this nonce was already used',
    });
    const resigned = signed({ name: 'alice' }, { nonce: 'nonce-0123456789abcdef', timestamp: NOW + 1 });
    expect(await call(topic, resigned)).toMatchObject({ error: expect.stringMatching(/replayed/) });
    expect(ports.faces.has('alice')).toBe(true);
  });

  it('checks a signature that is present even when signing is not required', async () => {
    const { call, ports } = await setup({ commandPublicKeys: [key.publicPem] });
    ports.faces.set('alice', []);
    expect(await call(topic, { ...signed({ name: 'bob' }), name: 'alice' })).toMatchObject({
      error: 'signature rejected: bad signature',
    });
    expect(ports.faces.has('alice')).toBe(true);
  });

  it('refuses a malformed signature through the schema', async () => {
    const { call } = await signedSetup();
    const request = signed({ name: 'alice' });
    expect(await call(topic, { ...request, signature: { ...request.signature, value: 'AAAA' } })).toEqual({
      status: 'error',
      error: expect.stringMatching(/^invalid request: signature.value: must match pattern/),
    });
  });
});

describe('ControlRouter model transfers', () => {
  const manifest = { name: 'facerec', version: '1.0.1' };
  const offer = { manifest, transfer: { id: 'xfer-1', total: 2 } };
  const chunk = (index: number) => ({
    id: 'xfer-1',
    index,
    total: 2,
    data: 'AAAA',
    transaction: `c${index}`,
  });
  const flush = () => new Promise((r) => setImmediate(r));

  /** A queue held up by a health request, and a model port whose update waits until released. */
  async function busySetup(control: Partial<ControlConfig> = {}) {
    let releaseQueue = () => {};
    const queueBlocked = new Promise<void>((r) => {
      releaseQueue = r;
    });
    const s = await setup(control, {
      health: async () => {
        await queueBlocked;
        throw new Error('released');
      },
    });
    let finishUpdate = () => {};
    const signals: AbortSignal[] = [];
    s.ports.models.update = (request, signal) => {
      s.ports.modelUpdates.push(request);
      if (signal) signals.push(signal);
      return new Promise((resolve, reject) => {
        finishUpdate = () => resolve({ updated: true, status: modelStatus });
        signal?.addEventListener('abort', () => reject(new Error('transfer xfer-1 cancelled')));
      });
    };
    return { ...s, releaseQueue, finish: () => finishUpdate(), signals };
  }

  it('runs a model/update with a transfer and its chunks on arrival, beside a busy queue', async () => {
    const { client, topics, router, ports, releaseQueue, finish } = await busySetup();
    client.deliver(topics.request('health'), { transaction: 'h' });
    client.deliver(topics.request('model/update'), { ...offer, transaction: 'u' });
    // Opened before the next message is read.
    expect(ports.modelUpdates).toEqual([offer]);
    client.deliver(topics.request('model/chunk'), chunk(1));
    client.deliver(topics.request('model/chunk'), chunk(0));
    await flush();
    expect(ports.chunks.map((c) => c.index)).toEqual([1, 0]);
    expect(client.published.map((p) => [p.topic, p.payload.transaction])).toEqual([
      ['facegate/cam-01/response/model/chunk', 'c1'],
      ['facegate/cam-01/response/model/chunk', 'c0'],
    ]);
    expect(client.published[1].payload).toEqual({
      status: 'ok',
      data: { id: 'xfer-1', index: 0, received: 2, total: 2, duplicate: false },
      transaction: 'c0',
    });
    finish();
    await flush();
    expect(client.published.at(-1)?.payload).toMatchObject({ status: 'ok', transaction: 'u' });
    expect(ports.modelUpdates).toHaveLength(1);
    // A model/update from a URL waits in the model lane, which the held-up main lane does not hold up.
    client.deliver(topics.request('model/update'), {
      manifestUrl: 'https://models.example/m.json',
      transaction: 'url',
    });
    await flush();
    expect(ports.modelUpdates).toHaveLength(2);
    finish();
    await flush();
    expect(client.published.at(-1)?.payload).toMatchObject({ status: 'ok', transaction: 'url' });
    releaseQueue();
    await router.idle();
    expect(client.published.map((p) => p.payload.transaction)).toEqual(['c1', 'c0', 'u', 'url', 'h']);
  });

  it('answers a chunk the transfer refuses with the reason', async () => {
    const { call, ports } = await setup();
    ports.models.chunk = () => {
      throw new Error('model chunk 0 of xfer-1 is not base64');
    };
    expect(await call('model/chunk', { ...chunk(0), data: '!!!!' })).toEqual({
      status: 'error',
      error: 'model chunk 0 of xfer-1 is not base64',
      transaction: 'c0',
    });
    expect(await call('model/chunk', { id: 'xfer-1', index: 0 })).toEqual({
      status: 'error',
      error: 'invalid request: total: required; data: required',
    });
  });

  it('accepts chunks wherever model/update is allowed, and signed when commands must be', async () => {
    const denied = await setup({ allow: ['health'] });
    expect(await denied.call('model/chunk', chunk(0))).toEqual({
      status: 'error',
      error:
        "command 'model/chunk' is not allowed on this device (control.allow: it comes with model/update)",
      transaction: 'c0',
    });
    const signedOnly = await setup({ requireSignedCommands: true, commandPublicKeys: [key.publicPem] });
    expect(await signedOnly.call('model/chunk', chunk(0))).toMatchObject({
      error:
        "command 'model/chunk' must be signed with an operator key (control.requireSignedCommands is on; see docs/security.md)",
    });
    const topic = 'facegate/cam-01/request/model/chunk';
    const signed = signCommand(chunk(0), key.privateKey, key.keyId, topic, { timestamp: NOW });
    expect(await signedOnly.call(topic, signed)).toMatchObject({ status: 'ok' });
    expect(signedOnly.ports.chunks).toHaveLength(1);
  });

  it('tells a transfer waiting for chunks to give up when it stops', async () => {
    const { client, topics, router, signals, releaseQueue } = await busySetup();
    client.deliver(topics.request('model/update'), { ...offer, transaction: 'u' });
    expect(signals).toHaveLength(1);
    releaseQueue();
    await router.stop();
    expect(signals[0].aborted).toBe(true);
    expect(client.published.map((p) => p.payload)).toEqual([
      { status: 'error', error: 'transfer xfer-1 cancelled', transaction: 'u' },
    ]);
  });
});

describe('CommandVerifier nonce memory', () => {
  const settings = { commandPublicKeys: [key.publicPem], maxCommandAgeSeconds: 10 };
  const topic = 'facegate/d/request/restart';
  const sign = (timestamp: number) => signCommand({}, key.privateKey, key.keyId, topic, { timestamp });

  it('is bounded, refusing rather than forgetting a nonce that is still valid', () => {
    let now = NOW;
    const verifier = new CommandVerifier(() => now, 2);
    const first = sign(now);
    expect(verifier.check(first, topic, settings)).toBeNull();
    expect(verifier.check(sign(now), topic, settings)).toBeNull();
    expect(verifier.check(sign(now), topic, settings)).toMatch(/^too many signed requests/);
    expect(verifier.check(first, topic, settings)).toMatch(/^replayed request/);
    // Once the remembered ones have aged out, their timestamps alone refuse them, so they are forgotten.
    now += 10_001;
    expect(verifier.check(sign(now), topic, settings)).toBeNull();
    expect(verifier.check(first, topic, settings)).toMatch(/^signature expired/);
  });
});

describe('ControlRouter secure default (any broker but its own loopback one)', () => {
  const privileged = REQUESTS.filter(isPrivileged);

  it('opens only the commands that neither change state nor reveal faces, images or secrets', () => {
    expect(REQUESTS.filter((name) => !isPrivileged(name)).sort()).toEqual([
      'config/get',
      'health',
      'model/status',
    ]);
    // Everything else, and every command added later without saying otherwise, is privileged.
    expect(privileged).toEqual(
      expect.arrayContaining(['face/enroll', 'face/list', 'snapshot', 'config/set']),
    );
  });

  it('refuses every unsigned privileged command with the reason, and runs none of them', async () => {
    const { call, ports } = await setup({}, {}, { privateBroker: false });
    ports.faces.set('alice', [JPEG]);
    for (const command of privileged) {
      expect(await call(command, {})).toMatchObject({ status: 'error' });
    }
    expect(await call('face/list')).toEqual({
      status: 'error',
      error:
        "command 'face/list' must be signed with an operator key (the broker is not this device's own loopback broker; see docs/security.md)",
    });
    expect(ports.restarts).toBe(0);
    expect(ports.modelUpdates).toEqual([]);
    expect(await call('health')).toMatchObject({ status: 'ok' });
  });

  it('runs commands signed with a key from the operator key file', async () => {
    const { call, ports } = await setup(
      {},
      {},
      { privateBroker: false, operatorKeys: () => [key.publicPem] },
    );
    ports.faces.set('alice', [JPEG]);
    const topic = 'facegate/cam-01/request/face/list';
    const signed = signCommand({ transaction: 1 }, key.privateKey, key.keyId, topic, { timestamp: NOW });
    expect(await call(topic, signed)).toMatchObject({ status: 'ok', data: { faces: [{ name: 'alice' }] } });
  });

  it('ignores a retained request without answering it', async () => {
    const { client, router, logs } = await setup();
    client.deliver('facegate/cam-01/request/health', {}, { retain: true });
    await router.idle();
    expect(client.published).toEqual([]);
    expect(logs).toContain(
      'warn: ignored a retained request on facegate/cam-01/request/health: requests must not be retained',
    );
  });

  it('remembers accepted nonces across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'facegate-nonces-'));
    try {
      const nonceFile = join(dir, 'control-nonces');
      const control = { commandPublicKeys: [key.publicPem] };
      const topic = 'facegate/cam-01/request/face/remove';
      const request = signCommand({ name: 'alice' }, key.privateKey, key.keyId, topic, { timestamp: NOW });
      const first = await setup(control, {}, { privateBroker: false, nonceFile });
      expect(await first.call(topic, request)).toMatchObject({ status: 'ok' });
      await first.router.stop();
      const second = await setup(control, {}, { privateBroker: false, nonceFile });
      expect(await second.call(topic, request)).toEqual({
        status: 'error',
        error: 'signature rejected: replayed request: this nonce was already used',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers health while a model/update hangs in its own lane', async () => {
    const { client, topics, ports } = await setup();
    ports.models.update = () => new Promise(() => {});
    client.deliver(topics.request('model/update'), { manifestUrl: 'https://models.example/m.json' });
    client.deliver(topics.request('health'), { transaction: 'h' });
    client.deliver(topics.request('face/list'), { transaction: 'f' });
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(client.published.map((p) => p.payload.transaction)).toEqual(['h', 'f']);
  });
});
