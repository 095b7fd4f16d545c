// The main job end to end, for real: enrol from a photo, play a video through ffmpeg, run the models in
// ONNX Runtime, publish to a real mosquitto, and check what a subscriber receives.

import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from '../../../runtime/app.ts';
import { loadConfig } from '../../../runtime/config/index.ts';
import { type FaceEvent, isFaceEvent } from '../../../runtime/events/schema.ts';
import { type Mosquitto, startMosquitto } from '../../helpers/mosquitto.ts';
import { FACES_DIR, MODELS_DIR } from '../../helpers/paths.ts';
import { videoOfPhoto } from '../../helpers/video.ts';
import { HAMILTON, LIN, videoCamera } from '../app/harness.ts';

const STRANGER = join(FACES_DIR, 'face_recognition_examples', 'knn_examples', 'train', 'obama', 'obama.jpg');

let dir: string;
let broker: Mosquitto | undefined;
let app: App | undefined;
let subscriber: mqtt.MqttClient | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-pipeline-'));
  mkdirSync(join(dir, 'people'));
  copyFileSync(LIN, join(dir, 'people', 'lin-manuel-miranda.png'));
});

afterEach(async () => {
  await app?.stop().catch(() => {});
  app = undefined;
  await subscriber?.endAsync();
  subscriber = undefined;
  await broker?.dispose();
  broker = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function configFor(video: string, url: string) {
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      device: { id: 'test-door', name: 'Test door' },
      cameras: [videoCamera(video)],
      models: { dir: MODELS_DIR },
      mqtt: { url },
      gallery: { path: join(dir, 'gallery.db'), seedDir: join(dir, 'people') },
      offlineQueue: { path: join(dir, 'queue') },
      schedules: { heartbeat: null, modelUpdateCheck: null, galleryBackup: null },
    }),
  );
  return loadConfig({ file, env: {} });
}

/** `session`: a persistent session (clean: false) under this client id, so QoS 1 messages published
 * while the subscriber is away are kept for it. */
async function subscribe(
  url: string,
  session?: string,
): Promise<{ events: FaceEvent[]; availability: string[] }> {
  const received = { events: [] as FaceEvent[], availability: [] as string[] };
  subscriber = await mqtt.connectAsync(
    url,
    session ? { clientId: session, clean: false } : { clientId: `sub-${process.pid}-${Date.now()}` },
  );
  subscriber.on('message', (topic, payload) => {
    if (topic.endsWith('/event')) received.events.push(JSON.parse(payload.toString()));
    if (topic.endsWith('/availability')) received.availability.push(payload.toString());
  });
  await subscriber.subscribeAsync(['facegate/test-door/event', 'facegate/test-door/availability'], {
    qos: 1,
  });
  return received;
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Frames stop arriving when ffmpeg reaches the end of the (non-looping) video. */
async function untilVideoDone(a: App): Promise<void> {
  let last = -1;
  let still = 0;
  await until(() => {
    const processed = a.cameraStats()[0].framesProcessed;
    still = processed === last && processed > 0 ? still + 1 : 0;
    last = processed;
    return still >= 20;
  }, 120_000);
}

describe('enrol -> video -> MQTT events (real mosquitto, ffmpeg, ONNX Runtime)', () => {
  it('recognises the enrolled person in the Hamilton clip', async () => {
    broker = await startMosquitto();
    const received = await subscribe(broker.url);
    app = await App.start(configFor(HAMILTON, broker.url), { log: () => {} });
    expect(app.gallery.list().map((p) => p.name)).toEqual(['lin-manuel-miranda']);
    await untilVideoDone(app);
    // What bench-pipeline reads: the models the analyzer opened (the detector always on ORT) and the
    // summed stage times behind its per-frame and per-face means.
    const { detector, embedder } = app.analyzer.current.engines();
    expect(detector).toEqual({ model: 'blazeface.fp32', engine: 'ort' });
    expect(embedder.model).toBe('facerec.int8');
    const stats = app.cameraStats()[0];
    expect(stats.facesEmbedded).toBeGreaterThan(0);
    expect(stats.sumMs.detect).toBeGreaterThan(0);
    expect(stats.sumMs.embedder).toBeGreaterThan(0);
    await until(() => received.events.length > 0, 10_000);
    await app.stop();
    app = undefined;
    await until(() => received.availability.includes('stopped'), 5_000);

    for (const e of received.events) expect(isFaceEvent(e)).toBe(true);
    const recognized = received.events.filter((e) => e.type === 'recognized');
    expect(recognized.length).toBeGreaterThan(0);
    expect(recognized.every((e) => e.identity === 'lin-manuel-miranda')).toBe(true);
    expect(new Set(received.events.map((e) => e.id)).size).toBe(received.events.length);
    expect(received.availability[0]).toBe('online');
  });

  it('says unknown, never a name, for people who are not enrolled', async () => {
    broker = await startMosquitto();
    const received = await subscribe(broker.url);
    app = await App.start(configFor(await videoOfPhoto(STRANGER, join(dir, 'stranger.mp4')), broker.url), {
      log: () => {},
    });
    await untilVideoDone(app);
    await until(() => received.events.length > 0, 10_000);
    expect(received.events.some((e) => e.type === 'unknown')).toBe(true);
    expect(received.events.filter((e) => e.type === 'recognized')).toEqual([]);
  });

  it('keeps the events of a broker that is down at start and delivers them, marked replayed, once it is up', async () => {
    broker = await startMosquitto({ persistence: true });
    // The operator's subscriber session exists before the outage, as it would at a real site.
    await subscribe(broker.url, 'operator');
    await subscriber?.endAsync();
    await broker.stop();

    app = await App.start(configFor(HAMILTON, broker.url), { log: () => {} });
    await untilVideoDone(app);
    const produced = app.cameraStats()[0].events;
    expect(produced).toBeGreaterThan(0);
    expect(app.mqtt.connected).toBe(false);

    await broker.start();
    const received = await subscribe(broker.url, 'operator');
    await until(() => received.events.length >= produced, 30_000);
    expect(received.events.every((e) => e.replayed === true)).toBe(true);
    const times = received.events.map((e) => Date.parse(e.time));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });
});
