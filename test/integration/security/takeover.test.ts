// The takeover from issue 9, replayed end to end: a device started the way provision.sh starts it
// (`facegate run --config FILE` as a child process, the operator's key installed with `facegate keys`)
// on a real mosquitto that lets anonymous clients in, as most home brokers do. An anonymous client
// without a key tries the four takeover steps and to read faces and images; each is refused with the
// reason. The operator's signed commands still work, but not even they change who is trusted. Then the
// resource bounds: health within 1 s while a model download hangs, and the device's RSS while a 200 MiB
// payload and a fuzz run of hostile requests arrive.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signCommand } from '../../../runtime/control/signing.ts';
import { signManifest } from '../../../runtime/model-update/signature.ts';
import type { ModelManifest } from '../../../runtime/models/manifest.ts';
import { generateSigningKeyPair, keyIdOf } from '../../../runtime/util/signing.ts';
import { type Mosquitto, startMosquitto } from '../../helpers/mosquitto.ts';
import { MODELS_DIR } from '../../helpers/paths.ts';
import { embedderRelease, FileServer, LIN } from '../app/harness.ts';
import { waitUntil } from '../mqtt/support.ts';
import {
  BrokerClient,
  DEVICE_ID,
  type DeviceProcess,
  provisionOperatorKey,
  startDeviceProcess,
  topics,
} from './device.ts';

const MiB = 1024 * 1024;
const UNSIGNED =
  /^command '[a-z/]+' must be signed with an operator key \(the broker is not this device's own loopback broker; see docs\/security\.md\)$/;

let dir: string;
let broker: Mosquitto;
let files: FileServer;
let hang: Server;
let device: DeviceProcess;
let configFile: string;
let operator: BrokerClient;
let attacker: BrokerClient;
let operatorKey: string;
const modelKey = generateSigningKeyPair();
const photo = readFileSync(LIN).toString('base64');

function config() {
  const hangOrigin = `http://127.0.0.1:${(hang.address() as AddressInfo).port}`;
  return {
    // What provision.sh writes ...
    device: { id: DEVICE_ID, name: 'Front door' },
    dataDir: join(dir, 'var'),
    gallery: { path: join(dir, 'var', 'gallery.db'), seedDir: null },
    offlineQueue: { path: join(dir, 'var', 'offline-queue') },
    models: {
      dir: MODELS_DIR,
      update: { publicKeys: [modelKey.publicKeyPem], allowedOrigins: [files.origin, hangOrigin] },
    },
    // ... a shared broker, the installed operator key, and a still camera that costs little CPU.
    mqtt: { url: broker.url },
    control: { operatorKeysFile: join(dir, 'operator-keys.pem') },
    cameras: [
      {
        id: 'door',
        source: { kind: 'images', path: LIN, loop: true },
        width: 640,
        height: 480,
        fps: 2,
        restart: { initialDelayMs: 200, maxDelayMs: 1000, stallTimeoutMs: 10000, healthyAfterMs: 5000 },
      },
    ],
    schedules: { heartbeat: null, modelUpdateCheck: null, galleryBackup: null, backupDir: join(dir, 'b') },
  };
}

async function startDevice(): Promise<void> {
  device = startDeviceProcess(configFile, config());
  // Up once it answers: health is open to anyone.
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await attacker.ask('health', {}, { unsigned: true, timeoutMs: 1_000 });
      return;
    } catch (e) {
      if (Date.now() > deadline || device.child.exitCode !== null)
        throw new Error(`the device did not come up (${(e as Error).message}):\n${device.log()}`);
    }
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-takeover-'));
  configFile = join(dir, 'config.yaml');
  broker = await startMosquitto();
  files = await FileServer.start();
  // Accepts the connection and never answers: a download that hangs.
  hang = createServer(() => {});
  await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', resolve));
  ({ privateKeyPem: operatorKey } = await provisionOperatorKey(dir, join(dir, 'operator-keys.pem')));
  operator = await BrokerClient.connect(broker.url, 'operator', operatorKey);
  attacker = await BrokerClient.connect(broker.url, 'attacker');
  await startDevice();
}, 180_000);

afterAll(async () => {
  await device?.stop();
  await operator?.end();
  await attacker?.end();
  hang?.closeAllConnections();
  await new Promise((resolve) => hang?.close(resolve));
  await files?.close();
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** A facerec release whose manifest claims thresholds of -1: every face a match. */
function acceptEveryone(version: string): ModelManifest {
  const release = embedderRelease(version);
  const thresholds = {
    ...release.manifest.thresholds,
    far: { '0.01': -1, '0.001': -1 },
    // A curve that agrees with them, so the manifest is valid and only the policy stands in the way.
    curve: [
      [0.01, -1],
      [0.001, -1],
    ],
  } as ModelManifest['thresholds'];
  return { ...release.manifest, thresholds };
}

describe('an anonymous client on a shared broker, without a key', () => {
  it('is refused each of the four takeover steps with the reason, and changes nothing', async () => {
    const fileBefore = readFileSync(configFile, 'utf8');
    // 1. enrol its own face
    expect(await attacker.ask('face/enroll', { name: 'mallory', images: [photo] })).toMatchObject({
      status: 'error',
      error: expect.stringMatching(UNSIGNED),
    });
    // 2. allow unsigned models
    expect(
      await attacker.ask('config/set', { config: { models: { update: { allowUnsigned: true } } } }),
    ).toMatchObject({ status: 'error', error: expect.stringMatching(UNSIGNED) });
    // 3. install an unsigned "model" that accepts everyone
    const manifest = acceptEveryone('6.6.6');
    expect(
      await attacker.ask('model/update', { manifest, transfer: { id: 'evil', total: 1 } }),
    ).toMatchObject({ status: 'error', error: expect.stringMatching(UNSIGNED) });
    // 4. turn on signing with its own key, locking the operator out
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const ownKey = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(
      await attacker.ask('config/set', {
        config: { control: { requireSignedCommands: true, commandPublicKeys: [ownKey] } },
      }),
    ).toMatchObject({ status: 'error', error: expect.stringMatching(UNSIGNED) });
    // Signing with a key of its own is no way in either.
    const selfSigned = await attacker.ask(
      'face/list',
      {},
      {
        key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
    );
    expect(selfSigned).toMatchObject({
      status: 'error',
      error: expect.stringMatching(
        /^signature rejected: unknown signing key [0-9a-f]{64}: not an installed operator key/,
      ),
    });

    expect(readFileSync(configFile, 'utf8')).toBe(fileBefore);
    const faces = await operator.ask('face/list');
    expect(faces).toMatchObject({ status: 'ok', data: { faces: [] } });
    expect(await operator.ask('model/status')).toMatchObject({
      status: 'ok',
      data: { active: { embedder: { name: 'facerec', version: '1.0.0' } }, lastUpdate: null },
    });
  });

  it('can neither read faces and snapshots nor restart, remove or roll back anything', async () => {
    for (const command of ['face/list', 'snapshot', 'face/remove', 'model/rollback', 'restart']) {
      const body = command === 'face/remove' ? { name: 'anyone' } : {};
      expect(await attacker.ask(command, body), command).toMatchObject({
        status: 'error',
        error: expect.stringMatching(UNSIGNED),
      });
    }
    expect(device.child.exitCode).toBeNull();
    // What stays open: health, model/status and config/get (secrets redacted).
    expect(await attacker.ask('health', {}, { unsigned: true })).toMatchObject({ status: 'ok' });
    expect(await attacker.ask('config/get', {}, { unsigned: true })).toMatchObject({ status: 'ok' });
  });
});

describe("the operator's signed commands", () => {
  it('enrol, list, take a snapshot and change a setting', async () => {
    expect(await operator.ask('face/enroll', { name: 'lin', images: [photo] })).toEqual({
      status: 'ok',
      data: { name: 'lin', added: 1 },
      transaction: expect.any(String),
    });
    expect(await operator.ask('face/list')).toMatchObject({ data: { faces: [{ name: 'lin' }] } });
    const snapshot = await operator.ask('snapshot');
    expect(snapshot).toMatchObject({ status: 'ok', data: { camera: 'door' } });
    expect(Buffer.from(String(snapshot.data?.image), 'base64').subarray(0, 3)).toEqual(
      Buffer.from([0xff, 0xd8, 0xff]),
    );
    expect(await operator.ask('config/set', { config: { recognition: { k: 2 } } })).toMatchObject({
      status: 'ok',
      data: { applied: ['recognition.k'] },
    });
  });

  it('still cannot change who is trusted, nor install a model that lowers the thresholds', async () => {
    expect(
      await operator.ask('config/set', { config: { models: { update: { allowUnsigned: true } } } }),
    ).toMatchObject({
      status: 'error',
      error: expect.stringMatching(
        /^models\.update\.allowUnsigned decides who is trusted and cannot be changed by a remote command/,
      ),
    });
    expect(
      await operator.ask('config/set', { config: { control: { requireSignedCommands: true } } }),
    ).toMatchObject({
      status: 'error',
      error: expect.stringMatching(/^control\.requireSignedCommands decides who is trusted/),
    });
    // Signed by the trusted model key, and still refused: -1 is outside the family's calibrated range.
    const signed = signManifest(acceptEveryone('1.0.1'), modelKey.privateKeyPem);
    files.put(`/${signed.file}`, embedderRelease('1.0.1').onnx);
    const manifestUrl = files.put('/evil-manifest.json', JSON.stringify(signed));
    const refused = await operator.ask('model/update', { manifestUrl }, { timeoutMs: 60_000 });
    expect(refused).toMatchObject({
      status: 'error',
      error: expect.stringMatching(
        /^manifest 1\.0\.1 refused: its FAR 0\.01 threshold -1 is outside .*the calibrated range of facerec/,
      ),
    });
    // A manifest URL on a host nobody allowed is not even fetched.
    expect(
      await operator.ask('model/update', { manifestUrl: 'http://169.254.169.254/latest/meta-data/x.json' }),
    ).toMatchObject({
      status: 'error',
      error: expect.stringMatching(
        /^manifestUrl http:\/\/169\.254\.169\.254\/latest\/meta-data\/x\.json is refused/,
      ),
    });
  });
});

describe('bounded resources', () => {
  it('answers health within 1 s while a model download hangs', async () => {
    const hangUrl = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/manifest.json`;
    await operator.publish('model/update', { manifestUrl: hangUrl, transaction: 'hung' });
    await new Promise((r) => setTimeout(r, 500));
    const timings: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = Date.now();
      expect(await attacker.ask('health', {}, { unsigned: true, timeoutMs: 5_000 })).toMatchObject({
        status: 'ok',
      });
      timings.push(Date.now() - start);
      const listed = Date.now();
      expect(await operator.ask('face/list', {}, { timeoutMs: 5_000 })).toMatchObject({ status: 'ok' });
      timings.push(Date.now() - listed);
    }
    console.log(`health and face/list while a manifest download hangs: ${timings.join(', ')} ms`);
    expect(Math.max(...timings)).toBeLessThan(1000);
    // The hung update is still waiting (its timeout is 30 s), not answered.
    expect(operator.sub.on(topics.response('model/update')).some((m) => m.payload.includes('"hung"'))).toBe(
      false,
    );
  });

  it('keeps RSS within 50 MB of idle while a 200 MiB payload and hostile requests arrive, and does not crash', async () => {
    const sample = async (ms: number) => {
      const values: number[] = [];
      const end = Date.now() + ms;
      while (Date.now() < end) {
        values.push(device.rss());
        await new Promise((r) => setTimeout(r, 50));
      }
      return values;
    };
    const idle = await sample(5_000);
    const during: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        during.push(device.rss());
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const flood = attacker.sub.client;
    const request = (command: string) => topics.request(command);
    // A witness without a packet limit proves the broker took the 200 MiB message and passed it on.
    const witness = connect(broker.url, { protocolVersion: 5 });
    const witnessed: number[] = [];
    witness.on('message', (_topic, payload) => witnessed.push(payload.length));
    await witness.subscribeAsync(request('face/enroll'), { qos: 0 });
    // 200 MiB, then 8 MiB several times: above the packet size the device told the broker it takes.
    await flood.publishAsync(request('face/enroll'), Buffer.alloc(200 * MiB, 0x41), { qos: 0 });
    for (let i = 0; i < 5; i++)
      await flood.publishAsync(request('config/set'), Buffer.alloc(8 * MiB, 0x42), { qos: 0 });
    // Just over control.maxPayloadBytes: these reach the device and are refused by size.
    for (let i = 0; i < 20; i++)
      await flood.publishAsync(request('face/enroll'), Buffer.alloc(MiB + 1000, 0x43), { qos: 1 });
    // A fuzz run: random bytes, broken JSON, deep nesting, control characters, wrong types.
    const fuzz = [
      () => randomBytes(1 + Math.floor(Math.random() * 4096)),
      () => Buffer.from(`{"name":"${'\u0000\n'.repeat(50)}","images":[1]}`),
      () => Buffer.from('['.repeat(5000)),
      () => Buffer.from(JSON.stringify({ config: { models: { update: { publicKeys: ['x'] } } } })),
      () => Buffer.from(JSON.stringify({ manifest: { files: [] }, transfer: { id: 'f', total: 1 } })),
      () =>
        Buffer.from(
          JSON.stringify({
            signature: {
              keyId: 'a'.repeat(64),
              timestamp: 1,
              nonce: 'n'.repeat(16),
              value: `${'A'.repeat(85)}A==`,
            },
          }),
        ),
    ];
    const commands = [
      'face/enroll',
      'config/set',
      'model/update',
      'model/chunk',
      'snapshot',
      'face/../x',
      'health',
      'nope',
    ];
    let fuzzed = 0;
    for (let i = 0; i < 600; i++) {
      const payload = fuzz[i % fuzz.length]();
      await flood.publishAsync(request(commands[i % commands.length]), payload, { qos: 0 });
      fuzzed++;
    }
    // Until the witness has the whole 200 MiB, and 3 s more: the broker has had time to send it anywhere.
    await waitUntil('the witness to receive 200 MiB', () => witnessed.includes(200 * MiB), 60_000);
    await new Promise((r) => setTimeout(r, 3_000));
    sampling = false;
    await sampler;
    await witness.endAsync();
    const idleMax = Math.max(...idle);
    const duringMax = Math.max(...during);
    const mb = (b: number) => (b / 1e6).toFixed(1);
    console.log(
      `device RSS: idle ${mb(Math.min(...idle))}..${mb(idleMax)} MB over ${idle.length} samples; while 200 MiB + 5 x 8 MiB + 20 x 1 MiB + ${fuzzed} fuzzed requests arrived: peak ${mb(duringMax)} MB (${mb(duringMax - idleMax)} MB above idle peak) over ${during.length} samples`,
    );
    expect(duringMax - idleMax).toBeLessThan(50 * MiB);
    // mosquitto honoured the maximum packet size: the device never had to cut a packet off itself.
    expect(device.log()).not.toMatch(/the broker sent a packet of \d+ bytes/);
    expect(device.child.exitCode).toBeNull();
    expect(await attacker.ask('health', {}, { unsigned: true, timeoutMs: 10_000 })).toMatchObject({
      status: 'ok',
    });
    // The oversized messages never reached the device; the 1 MiB ones were refused by size.
    expect(device.log()).not.toMatch(/payload of 2097152\d* bytes/);
    expect(device.log()).toMatch(/payload of 1049576 bytes exceeds control\.maxPayloadBytes \(1048576\)/);
    // No log line was forged from a payload.
    expect(
      device
        .log()
        .split('\n')
        .filter((l) => l.startsWith('[control] restart')),
    ).toEqual([]);
  }, 120_000);
});

describe('after a restart', () => {
  it('refuses a signed command it already ran, and ignores retained requests', async () => {
    const topic = topics.request('face/remove');
    const removal = signCommand(
      { name: 'lin', transaction: 'once' },
      operatorKey,
      keyIdOf(operatorKey),
      topic,
    );
    await operator.sub.client.publishAsync(topics.request('face/remove'), JSON.stringify(removal), {
      qos: 1,
    });
    expect(await operator.answer('face/remove', 'once')).toMatchObject({
      status: 'ok',
      data: { removed: true },
    });
    // A retained request would be handed to the device again at every reconnect.
    await attacker.sub.client.publishAsync(
      topics.request('health'),
      JSON.stringify({ transaction: 'retained' }),
      {
        qos: 1,
        retain: true,
      },
    );
    expect(await operator.ask('restart')).toMatchObject({ status: 'ok', data: { restarting: true } });
    expect(await device.exited).toBe(0);
    const before = operator.sub.on(topics.response('face/remove')).length;
    await startDevice();
    await operator.sub.client.publishAsync(topics.request('face/remove'), JSON.stringify(removal), {
      qos: 1,
    });
    await waitUntil(
      'the replay answer',
      () => operator.sub.on(topics.response('face/remove')).length > before,
    );
    expect(JSON.parse(operator.sub.on(topics.response('face/remove')).at(-1)?.payload ?? '')).toEqual({
      status: 'error',
      error: 'signature rejected: replayed request: this nonce was already used',
      transaction: 'once',
    });
    expect(device.log()).toContain(`ignored a retained request on ${topics.request('health')}`);
    // Answered once, live (the broker clears the retain flag for current subscribers), never again.
    const answers = attacker.sub
      .on(topics.response('health'))
      .filter((m) => m.payload.includes('"retained"'));
    expect(answers).toHaveLength(1);
    await attacker.sub.client.publishAsync(topics.request('health'), '', { qos: 1, retain: true });
  }, 180_000);
});
