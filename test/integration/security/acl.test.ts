// The broker-side layer of docs/security.md, on a real mosquitto: per-device accounts and an acl_file,
// then TLS client certificates whose common name is the account. A client the ACL denies can neither
// get a request to the device (the broker drops it: the device never sees it) nor read the responses
// that carry faces and snapshots. The device runs the control router over mqtt.js with recording ports.
import { readFile } from 'node:fs/promises';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { createHandlers } from '../../../runtime/control/handlers/index.ts';
import { ControlRouter } from '../../../runtime/control/router.ts';
import { signCommand } from '../../../runtime/control/signing.ts';
import { buildTopics } from '../../../runtime/mqtt/topics.ts';
import { recordingLogger } from '../../../runtime/util/log.ts';
import { defaultConfig, fakePorts, JPEG, makeSigningKey } from '../../helpers/control-fakes.ts';
import { startMosquitto } from '../../helpers/mosquitto.ts';
import { connectError, Subscriber, useCleanup, waitUntil } from '../mqtt/support.ts';

const cleanup = useCleanup();
const DEVICE = 'front-door';
const topics = buildTopics({ baseTopic: 'facegate', deviceId: DEVICE });
const operatorKey = makeSigningKey();

/** docs/security.md's example: each device its own tree, the operator commands, a guest reads events. */
const ACL = `# the device: its own topics, and requests for the whole fleet
user ${DEVICE}
topic readwrite facegate/${DEVICE}/#
topic read facegate/all/request/#

# the operator: requests to every device, their responses and snapshots
user operator
topic write facegate/+/request/#
topic write facegate/all/request/#
topic read facegate/+/response/#
topic read facegate/+/snapshot

# a home-automation client: events and availability only
user guest
topic read facegate/+/event
topic read facegate/+/availability
`;

const accounts = {
  device: { username: DEVICE, password: 'device secret' },
  operator: { username: 'operator', password: 'operator secret' },
  guest: { username: 'guest', password: 'guest secret' },
};

async function startDevice(url: string, opts: IClientOptions) {
  const client: MqttClient = connect(url, { clientId: `facegate-${DEVICE}`, reconnectPeriod: 200, ...opts });
  client.on('error', () => {});
  cleanup(() => Promise.race([client.endAsync(true), new Promise((r) => setTimeout(r, 2_000))]));
  await waitUntil('the device to connect', () => client.connected);
  const ports = fakePorts('/nonexistent/config.yaml', defaultConfig({ device: { id: DEVICE } }));
  ports.faces.set('alice', [JPEG]);
  const requests: string[] = [];
  const router = new ControlRouter({
    client,
    topics,
    control: () => ({ ...ports.config.current().control, commandPublicKeys: [operatorKey.publicPem] }),
    handlers: createHandlers(ports),
    log: recordingLogger((_level, message) => requests.push(message)),
  });
  await router.start();
  cleanup(() => router.stop());
  return { ports, requests };
}

async function client(url: string, opts: IClientOptions): Promise<Subscriber> {
  const sub = await Subscriber.connect(url, ['facegate/#'], opts);
  cleanup(() => sub.end());
  return sub;
}

const signed = (command: string, body: object) =>
  JSON.stringify(signCommand(body, operatorKey.privateKey, operatorKey.keyId, topics.request(command)));

describe('mosquitto ACLs per device', () => {
  it("drops a denied client's requests before the device, and keeps responses from it", async () => {
    const broker = await startMosquitto({ users: Object.values(accounts), acl: ACL });
    cleanup(() => broker.dispose());
    const { ports, requests } = await startDevice(broker.url, accounts.device);
    const operator = await client(broker.url, accounts.operator);
    const guest = await client(broker.url, accounts.guest);

    // The guest holds a perfectly signed request (say, copied off the wire) and an open one.
    await guest.client.publishAsync(
      topics.request('face/remove'),
      signed('face/remove', { name: 'alice', transaction: 'g1' }),
      { qos: 1 },
    );
    await guest.client.publishAsync(topics.request('health'), JSON.stringify({ transaction: 'g2' }), {
      qos: 1,
    });
    // The operator's request arrives after the guest's: once it is answered, theirs would have been too.
    await operator.client.publishAsync(
      topics.request('face/list'),
      signed('face/list', { transaction: 'o1' }),
      { qos: 1 },
    );
    await waitUntil("the operator's answer", () => operator.on(topics.response('face/list')).length === 1);
    expect(JSON.parse(operator.on(topics.response('face/list'))[0].payload)).toMatchObject({
      status: 'ok',
      data: { faces: [{ name: 'alice' }] },
      transaction: 'o1',
    });

    expect(requests).toEqual(['face/list: ok']);
    expect([...ports.faces.keys()]).toEqual(['alice']);
    // Subscribed to everything, the guest saw no response (the list of people) at all.
    expect(guest.messages.filter((m) => m.topic.includes('/response/'))).toEqual([]);
  });
});

describe('TLS client certificates as identities', () => {
  it('admits only clients with a certificate from the CA, and applies the ACL to its common name', async () => {
    const broker = await startMosquitto({ tls: true, requireClientCertificate: true, acl: ACL });
    cleanup(() => broker.dispose());
    const ca = await readFile(broker.caFile as string);
    const tls = async (name: string): Promise<IClientOptions> => {
      const files = await broker.clientCertificate(name);
      return {
        ca,
        cert: await readFile(files.cert),
        key: await readFile(files.key),
        rejectUnauthorized: true,
      };
    };
    const url = broker.tlsUrl as string;
    const { requests } = await startDevice(url, await tls(DEVICE));
    const operator = await client(url, await tls('operator'));
    const guest = await client(url, await tls('guest'));

    await guest.client.publishAsync(topics.request('health'), JSON.stringify({ transaction: 'g' }), {
      qos: 1,
    });
    await operator.client.publishAsync(topics.request('health'), JSON.stringify({ transaction: 'o' }), {
      qos: 1,
    });
    await waitUntil("the operator's answer", () => operator.on(topics.response('health')).length === 1);
    expect(requests).toEqual(['health: ok']);
    expect(guest.messages.filter((m) => m.topic.includes('/response/'))).toEqual([]);

    // Without a certificate the TLS handshake itself fails.
    expect(await connectError(url, { ca, rejectUnauthorized: true })).toMatch(/certificate|alert|socket/i);
  });
});
