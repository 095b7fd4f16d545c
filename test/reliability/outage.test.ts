// Broker outages with faces being recognised: the real mosquitto is killed (SIGKILL) for 30 s while the
// device watches the door clip with lin-manuel-miranda enrolled; then facegate itself is killed while its
// events are queued. Every event produced arrives, once by id, in order, the late ones marked replayed.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openEventQueue } from '../../runtime/events/queue.ts';
import type { FaceEvent } from '../../runtime/events/schema.ts';
import { buildTopics } from '../../runtime/mqtt/topics.ts';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.ts';
import { REPO_ROOT } from '../helpers/paths.ts';
import {
  DEVICE,
  hamiltonCamera,
  LIN,
  Operator,
  type RunningApp,
  startApp,
  writeConfig,
} from '../integration/app/harness.ts';
import { Subscriber, waitUntil } from '../integration/mqtt/support.ts';

const OUTAGE_MS = Number(process.env.FACEGATE_OUTAGE_SECONDS ?? 30) * 1000;
const topics = buildTopics({ baseTopic: 'facegate', deviceId: DEVICE });
/** The door clip at its own pace, 5 frames a second, an event per face per frame (a new track each frame). */
const LIVE_CAMERA = {
  cameras: [{ ...hamiltonCamera(true), fps: 5, source: { ...hamiltonCamera(true).source, realtime: true } }],
  recognition: { k: 1, n: 1, unknownAfterFrames: 1, cooldownSeconds: 0, trackIou: 1 },
};

let broker: Mosquitto | undefined;
let device: RunningApp | undefined;
let child: ChildProcess | undefined;
let dir = '';
const subscribers: Subscriber[] = [];

afterEach(async () => {
  child?.kill('SIGKILL');
  await device?.app.stop();
  for (const s of subscribers.splice(0)) await s.end();
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
  device = child = broker = undefined;
});

/** A subscriber that keeps its session across the outage, as an operator's service would. */
async function operatorSession(url: string, reconnectPeriod = 100): Promise<Subscriber> {
  const sub = await Subscriber.connect(url, [topics.event], {
    clientId: 'site-operator',
    clean: false,
    reconnectPeriod,
  });
  subscribers.push(sub);
  return sub;
}

/** Each event once (by first arrival), and how many arrived more than once. */
function firstArrivals(events: FaceEvent[]): { unique: FaceEvent[]; duplicates: number } {
  const seen = new Set<string>();
  const unique = events.filter((e) => !seen.has(e.id) && seen.add(e.id));
  return { unique, duplicates: events.length - unique.length };
}

function expectTimeOrder(events: FaceEvent[]): void {
  const times = events.map((e) => Date.parse(e.time));
  expect(times).toEqual([...times].sort((a, b) => a - b));
}

/** What the device's offline queue holds; read only while no device has the directory open. */
async function queuedEvents(queueDir: string): Promise<FaceEvent[]> {
  const q = await openEventQueue(queueDir, { maxEvents: 10_000, policy: 'drop-oldest' });
  try {
    return q.peek(q.size).map((e) => e.event);
  } finally {
    await q.close();
  }
}

/**
 * The broker SIGKILLed for `outageMs` while the door camera recognises faces, then started again. With
 * `loseSessions` its saved sessions are deleted during the outage (a broker without persistence, or killed
 * before its save) and the operator comes back 1 s after the device, so the device's replay finds nobody
 * subscribed and must wait for the operator (mqtt.subscriberGraceSeconds).
 */
async function brokerKill(outageMs: number, loseSessions: boolean): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'facegate-outage-'));
  broker = await startMosquitto({ persistence: true });
  // Losing sessions, the operator reconnects by hand once the device is back (below), so the device's
  // replay surely meets a broker with nobody subscribed.
  // (A reconnect period far beyond the test, not 0, with which mqtt.js would not resubscribe.)
  const sub = await operatorSession(broker.url, loseSessions ? 3_600_000 : 100);
  // Whether the restarted broker still had the operator's session (its last save before the kill held
  // it): without it, events reach the operator only because the device waits for it to subscribe again.
  const sessionPresent: boolean[] = [];
  sub.client.on('connect', (connack) => sessionPresent.push(connack.sessionPresent));
  // Every event the device made, by id, with how MQTT took it: 'published' once the broker acknowledged
  // it (PUBACK) on first try, 'queued' once it was on disk for a replay.
  const outcomes = new Map<string, string>();
  device = await startApp(dir, broker.url, LIVE_CAMERA, {
    onEvent: (event, { outcome }) => outcomes.set(event.id, outcome),
  });
  // Acknowledged by the broker before its connection died: a SIGKILLed mosquitto loses what it had not
  // yet saved or forwarded, which is the broker's durability, not the device's (counted apart below).
  let ackedBeforeKill = new Set<string>();
  device.app.mqtt.once('disconnect', () => {
    ackedBeforeKill = new Set([...outcomes].filter(([, o]) => o === 'published').map(([id]) => id));
  });
  const op = await Operator.connect(broker.url, topics);
  expect(
    await op.ask('face/enroll', { name: 'lin', images: [readFileSync(LIN).toString('base64')] }),
  ).toMatchObject({
    status: 'ok',
  });
  // The operator's session is then the only subscriber to events: when the broker comes back without it,
  // nothing else may take the replay in its place.
  await op.sub.end();
  const events = () => sub.events(topics.event);
  await waitUntil('live recognitions', () => events().some((e) => e.identity === 'lin'), 60_000);

  await broker.kill();
  // mosquitto may not have saved it yet (sessions lost either way).
  if (loseSessions) rmSync(broker.dbFile as string, { force: true });
  await new Promise((r) => setTimeout(r, outageMs));
  const duringOutage = device.app.mqtt.stats().queue.size;
  await broker.start();
  if (loseSessions) {
    await waitUntil('the device back', () => device?.app.mqtt.connected === true, 30_000);
    await new Promise((r) => setTimeout(r, 1_000));
    sub.client.reconnect();
  }
  await waitUntil('the replay', () => device?.app.mqtt.stats().queue.size === 0, 60_000);
  await new Promise((r) => setTimeout(r, 2000));
  await device.app.stop();
  const produced = device.app.cameraStats()[0].events;
  device = undefined;
  // A stop flushes for at most mqtt's stop timeout; what it could not send stays queued for the next
  // start (the second test proves that path), so it is kept, not lost.
  const kept = new Set((await queuedEvents(join(dir, 'queue'))).map((e) => e.id));
  const delivered = () => new Set(events().map((e) => e.id));
  await waitUntil('every event', () => delivered().size + kept.size >= outcomes.size, 15_000).catch(() => {});

  const { unique, duplicates } = firstArrivals(events());
  const arrived = delivered();
  const missing = [...outcomes.keys()].filter((id) => !arrived.has(id) && !kept.has(id));
  const brokerLost = missing.filter((id) => ackedBeforeKill.has(id));
  const queued = [...outcomes].filter(([, o]) => o === 'queued').map(([id]) => id);
  const replayed = unique.filter((e) => outcomes.get(e.id) === 'queued');
  console.log(
    `[outage] broker killed ${outageMs / 1000} s${loseSessions ? ', its sessions lost' : ''}: ${produced} events produced, ${queued.length} queued ` +
      `(${duringOutage} at the end of the outage), ${arrived.size} received, ${kept.size} still queued after the stop, ` +
      `${missing.length - brokerLost.length} lost by the device, ${brokerLost.length} acknowledged by the broker before its kill and lost with it, ` +
      `${duplicates} duplicates, ${replayed.filter((e) => e.identity === 'lin').length} replayed events recognised lin; ` +
      `the operator's session ${sessionPresent.at(-1) ? 'kept' : 'lost'} by the restarted broker`,
  );
  // Every event made went to MQTT (none was refused or failed to store).
  expect(outcomes.size).toBe(produced);
  expect(duringOutage).toBeGreaterThan(0);
  expect(missing).toEqual(brokerLost);
  expect(duplicates).toBe(0);
  // Every event queued during the outage arrived, marked replayed; nothing direct is marked replayed.
  expect(queued.filter((id) => !arrived.has(id) && !kept.has(id))).toEqual([]);
  expect(replayed.length).toBeGreaterThanOrEqual(duringOutage);
  expect(unique.every((e) => (e.replayed === true) === (outcomes.get(e.id) === 'queued'))).toBe(true);
  expect(replayed.some((e) => e.identity === 'lin')).toBe(true);
  expectTimeOrder(unique);
  if (loseSessions) expect(sessionPresent.at(-1)).toBe(false);
}

describe('broker and runtime outages', () => {
  it(`keeps every event through a ${OUTAGE_MS / 1000} s broker kill while faces are recognised`, () =>
    brokerKill(OUTAGE_MS, false));

  it("keeps every event when the restarted broker lost the subscribers' sessions", () =>
    brokerKill(10_000, true));

  it('keeps the queued events of a facegate killed during an outage and delivers them after the restart', async () => {
    dir = mkdtempSync(join(tmpdir(), 'facegate-outage-'));
    broker = await startMosquitto({ persistence: true });
    await (await operatorSession(broker.url)).end();
    subscribers.length = 0;
    await broker.stop();
    const file = writeConfig(dir, broker.url, LIVE_CAMERA);
    const runDevice = () =>
      spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'runtime', 'main.ts'), '--config', file], {
        cwd: REPO_ROOT,
        stdio: 'ignore',
      });
    child = runDevice();
    const queueDir = join(dir, 'queue');
    // The queue is read only after the kill (one writer per directory); until then its segment files'
    // sizes tell that events are being queued. A start on a busy machine can take most of a minute.
    const queuedBytes = () =>
      existsSync(queueDir)
        ? readdirSync(queueDir)
            .filter((f) => f.endsWith('.seg'))
            .reduce((sum, f) => sum + statSync(join(queueDir, f)).size, 0)
        : 0;
    await waitUntil('events queued by facegate', () => queuedBytes() > 0, 120_000);
    // Killed while events are still coming.
    await new Promise((r) => setTimeout(r, 10_000));
    child.kill('SIGKILL');
    await new Promise((r) => child?.once('exit', r));
    const held = await queuedEvents(queueDir);
    expect(held.length).toBeGreaterThan(0);

    await broker.start();
    const sub = await operatorSession(broker.url);
    child = runDevice();
    const ids = new Set(held.map((e) => e.id));
    await waitUntil(
      'the queued events',
      () => sub.events(topics.event).filter((e) => ids.has(e.id)).length >= ids.size,
      90_000,
    );
    const { unique, duplicates } = firstArrivals(sub.events(topics.event));
    const replayed = unique.filter((e) => ids.has(e.id));
    console.log(
      `[outage] facegate SIGKILLed with ${held.length} events queued: ${replayed.length} delivered after restart, ` +
        `${held.length - replayed.length} lost, ${duplicates} duplicates`,
    );
    expect(replayed.map((e) => e.id)).toEqual(held.map((e) => e.id));
    expect(replayed.every((e) => e.replayed === true)).toBe(true);
    expectTimeOrder(replayed);
  });
});
