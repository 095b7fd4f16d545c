// Remote control of the running device over a real mosquitto: config/set applied live and persisted,
// enrolment over MQTT recognised by the camera, and heartbeats rescheduled without a restart.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../runtime/config/index.ts';
import type { HealthReport } from '../../../runtime/control/api.ts';
import { Gallery } from '../../../runtime/matching/gallery/index.ts';
import { Subscriber, waitUntil } from '../mqtt/support.ts';
import { hamiltonCamera, LIN, Operator, startApp, useDeviceBed } from './harness.ts';

const bed = useDeviceBed('facegate-app-');

async function start(patch: object = {}, opts: Parameters<typeof startApp>[3] = {}) {
  const device = await startApp(bed.dir, bed.broker.url, patch, opts);
  bed.device = device;
  const op = await Operator.connect(bed.broker.url, device.app.topics);
  bed.op = op;
  return { device, op };
}

describe('config/set over MQTT', () => {
  it('applies a live key without a restart, persists it atomically and answers applied', async () => {
    const { device, op } = await start();
    expect(device.app.config.recognition.k).toBe(3);

    const response = await op.ask('config/set', { config: { recognition: { k: 2 } } });
    expect(response).toMatchObject({
      status: 'ok',
      data: { applied: ['recognition.k'], restart_required: [] },
    });
    expect(device.app.config.recognition.k).toBe(2);
    expect(loadConfig({ file: device.file, env: {} }).recognition.k).toBe(2);
    // The temp file of the atomic write was renamed over the config, never left beside it.
    expect(readdirSync(bed.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // The retained configuration follows.
    await waitUntil('the new retained config', () =>
      op.json<{ recognition: { k: number } }>(op.topics.config).some((c) => c?.recognition.k === 2),
    );
    const got = await op.ask('config/get');
    expect(got).toMatchObject({ status: 'ok', data: { config: { recognition: { k: 2 } } } });

    // Settings read only at start are saved and answered as such, not as applied.
    const later = await op.ask('config/set', {
      config: {
        offlineQueue: { maxEvents: 50, whenFull: 'drop-newest' },
        mqtt: { qos: 0 },
        logging: { level: 'debug' },
      },
    });
    expect(later).toMatchObject({ status: 'ok', data: { applied: [] } });
    expect((later.data as { restart_required: string[] }).restart_required.sort()).toEqual(
      ['logging.level', 'mqtt.qos', 'offlineQueue.maxEvents', 'offlineQueue.whenFull'].sort(),
    );
    expect(loadConfig({ file: device.file, env: {} }).offlineQueue.maxEvents).toBe(50);
  });

  it('answers an invalid change with every validation error and leaves the file untouched', async () => {
    const { device, op } = await start();
    const before = readFileSync(device.file);
    const mtime = statSync(device.file).mtimeMs;

    const response = await op.ask('config/set', {
      config: { recognition: { k: 0 }, detection: { minScore: 2 } },
    });
    expect(response.status).toBe('error');
    expect(response.error).toMatch(/^invalid configuration: /);
    expect(response.error).toContain('recognition.k');
    expect(response.error).toContain('detection.minScore');
    expect(readFileSync(device.file)).toEqual(before);
    expect(statSync(device.file).mtimeMs).toBe(mtime);
    expect(device.app.config.recognition.k).toBe(3);
  });

  it('refuses to change a device started without a config file', async () => {
    const { device, op } = await start({}, { persist: false });
    const response = await op.ask('config/set', { config: { recognition: { k: 2 } } });
    expect(response).toMatchObject({
      status: 'error',
      error: expect.stringMatching(/^no config file to persist to/),
    });
    expect(device.app.config.recognition.k).toBe(3);
  });

  it('moves the device to a new base topic live, after answering on the old one', async () => {
    const { device, op } = await start();
    const watcher = await Subscriber.connect(bed.broker.url, ['facegate/#', 'site1/#']);
    const response = await op.ask('config/set', { config: { mqtt: { baseTopic: 'site1/facegate' } } });
    expect(response).toMatchObject({ status: 'ok', data: { applied: ['mqtt.baseTopic'] } });
    await waitUntil(
      'the new topics',
      () => device.app.topics.availability === 'site1/facegate/test-door/availability',
    );
    await waitUntil('online on the new tree', () =>
      watcher.on('site1/facegate/test-door/availability').some((m) => m.payload === 'online'),
    );
    // What was retained under the old tree is cleared.
    await waitUntil('the old availability cleared', () =>
      watcher.on('facegate/test-door/availability').some((m) => m.payload === ''),
    );
    await watcher.end();

    const moved = await Operator.connect(bed.broker.url, device.app.topics);
    try {
      expect(await moved.ask('config/get')).toMatchObject({
        status: 'ok',
        data: { config: { mqtt: { baseTopic: 'site1/facegate' } } },
      });
      await waitUntil(
        'the retained config on the new tree',
        () => moved.sub.on(moved.topics.config).length > 0,
      );
    } finally {
      await moved.end();
    }
  });
});

describe('per-camera settings over MQTT', () => {
  it("applies a camera's region of interest live, without restarting its source", async () => {
    const { device, op } = await start({ cameras: [hamiltonCamera(true)] });
    const stats = () => device.app.cameraStats()[0];
    await waitUntil('faces in view', () => stats().facesDetected > 0, 60_000);
    // A corner of the frame where the face never is.
    const roi = { x: 0, y: 0, width: 0.1, height: 0.1 };
    const response = await op.ask('config/set', { config: { cameras: [{ ...hamiltonCamera(true), roi }] } });
    expect(response).toMatchObject({
      status: 'ok',
      data: { applied: ['cameras[0].roi'], restart_required: [] },
    });
    // A frame already under way when the change arrived finishes with the settings it started with.
    const applied = stats().framesProcessed;
    await waitUntil('the next frames', () => stats().framesProcessed >= applied + 2, 60_000);
    const { facesDetected, framesProcessed } = stats();
    await waitUntil('30 more frames', () => stats().framesProcessed >= framesProcessed + 30, 60_000);
    // The same pipeline went on (its counters did not restart) and found no face outside the region.
    expect(stats().facesDetected).toBe(facesDetected);
    expect(loadConfig({ file: device.file, env: {} }).cameras[0].roi).toEqual(roi);
  });
});

describe('face/enroll over MQTT', () => {
  it('enrols from a base64 photo, and the camera recognises the person from then on', async () => {
    // Looping, so the clip is still playing when the enrolment lands.
    const { device, op } = await start({
      cameras: [hamiltonCamera(true)],
      recognition: { cooldownSeconds: 0 },
    });
    await waitUntil('frames before the enrolment', () => device.frames.length >= 30, 30_000);
    expect(op.events().filter((e) => e.type === 'recognized')).toEqual([]);

    const image = readFileSync(LIN).toString('base64');
    const enrolled = await op.ask('face/enroll', { name: 'lin-manuel-miranda', images: [image] }, 60_000);
    expect(enrolled).toMatchObject({ status: 'ok', data: { name: 'lin-manuel-miranda', added: 1 } });
    const listed = await op.ask('face/list');
    expect(listed).toMatchObject({
      status: 'ok',
      data: { faces: [{ name: 'lin-manuel-miranda', embeddings: 1, models: ['facerec@1.0.0'] }] },
    });

    await waitUntil('a recognized event', () => op.events().some((e) => e.type === 'recognized'), 60_000);
    const recognized = op.events().filter((e) => e.type === 'recognized');
    expect(recognized.every((e) => e.identity === 'lin-manuel-miranda' && e.camera === 'door')).toBe(true);
  });
});

describe('heartbeat schedule', () => {
  it('publishes the health report every second and follows config/set of schedules.heartbeat', async () => {
    const { op } = await start({ schedules: { heartbeat: '* * * * * *' } });
    const beats = () => op.json<HealthReport>(op.topics.heartbeat);
    await waitUntil('two heartbeats', () => beats().length >= 2, 5_000);
    const [report] = beats();
    expect(report.cameras).toEqual([expect.objectContaining({ id: 'door' })]);
    expect(report.models.embedder).toEqual({ name: 'facerec', version: '1.0.0' });
    expect(report.queueDepth).toBe(0);
    expect(report.memory.rssBytes).toBeGreaterThan(0);

    expect(await op.ask('config/set', { config: { schedules: { heartbeat: '' } } })).toMatchObject({
      status: 'ok',
      data: { applied: ['schedules.heartbeat'] },
    });
    await new Promise((r) => setTimeout(r, 1_200));
    const stopped = beats().length;
    await new Promise((r) => setTimeout(r, 2_500));
    expect(beats().length).toBe(stopped);

    await op.ask('config/set', { config: { schedules: { heartbeat: '*/1 * * * * *' } } });
    await waitUntil('heartbeats again', () => beats().length >= stopped + 2, 5_000);
  });
});

describe('device commands over MQTT', () => {
  it('answers health and a snapshot of the latest frame, and restarts by a clean stop and exit code 0', async () => {
    const exits: number[] = [];
    const { device, op } = await start(
      { cameras: [hamiltonCamera(true)] },
      { exit: (code) => exits.push(code) },
    );
    await waitUntil('frames', () => device.frames.length >= 5, 30_000);

    const health = await op.ask('health');
    expect(health).toMatchObject({
      status: 'ok',
      data: { cameras: [{ id: 'door', droppedFrames: 0 }], models: { embedder: { version: '1.0.0' } } },
    });
    expect((health.data as HealthReport).stageLatencyMs.total).toBeGreaterThan(0);

    const snapshot = await op.ask('snapshot', { camera: 'door' });
    const jpeg = Buffer.from((snapshot.data as { image: string }).image, 'base64');
    expect(jpeg.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    expect(snapshot.data).toMatchObject({ camera: 'door', bytes: jpeg.length });
    expect(await op.ask('snapshot', { camera: 'garage' })).toEqual(
      expect.objectContaining({ status: 'error', error: "no camera 'garage'" }),
    );

    expect(await op.ask('restart')).toMatchObject({ status: 'ok', data: { restarting: true } });
    await waitUntil('the exit', () => exits.length > 0, 15_000);
    expect(exits).toEqual([0]);
    const availability = await Subscriber.connect(bed.broker.url, [device.app.topics.availability]);
    await waitUntil('the retained availability', () => availability.messages.length > 0);
    expect(availability.messages[0].payload).toBe('stopped');
    await availability.end();
  });
});

describe('gallery backup schedule', () => {
  it('writes a timestamped consistent copy and keeps the newest seven', async () => {
    const backups = join(bed.dir, 'backups');
    mkdirSync(backups);
    const old = Array.from({ length: 8 }, (_, i) => `gallery-2000-01-0${i + 1}T03-00-00-000Z.db`);
    for (const name of old) writeFileSync(join(backups, name), 'old');
    const { device } = await start({ schedules: { galleryBackup: '* * * * * *' } });
    await device.app.enrollPhoto('lin-manuel-miranda', LIN);
    const enrolledAt = Date.now();
    const fresh = () => readdirSync(backups).filter((f) => !old.includes(f));
    // The schedule fires every second, so a backup may predate the enrolment: wait for a later one.
    const startedAt = (f: string) =>
      Date.parse(f.replace(/^gallery-(.{10}T)(\d\d)-(\d\d)-(\d\d)-(\d{3}Z)\.db$/, '$1$2:$3:$4.$5'));
    const afterEnrolment = () => fresh().filter((f) => startedAt(f) > enrolledAt);
    await waitUntil('a backup after the enrolment', () => afterEnrolment().length > 0, 5_000);
    await device.app.stop();

    const kept = readdirSync(backups).sort();
    expect(kept).toHaveLength(7);
    const oldKept = kept.filter((f) => old.includes(f));
    expect(oldKept).toHaveLength(7 - fresh().length);
    expect(oldKept).toEqual(old.slice(old.length - oldKept.length));
    expect(fresh()[0]).toMatch(/^gallery-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z\.db$/);
    const copy = Gallery.open(join(backups, afterEnrolment().at(-1) as string));
    try {
      expect(copy.list().map((p) => p.name)).toEqual(['lin-manuel-miranda']);
    } finally {
      copy.close();
    }
  });
});
