import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FaceEvent } from '../../../runtime/events/schema.ts';
import { buildTopics } from '../../../runtime/mqtt/topics.ts';
import { FACES_DIR } from '../../helpers/paths.ts';
import { videoOfPhoto } from '../../helpers/video.ts';
import { waitUntil } from '../mqtt/support.ts';
import { DEVICE, hamiltonCamera, LIN, Operator, startApp, useDeviceBed, videoCamera } from './harness.ts';

const STRANGER = join(FACES_DIR, 'face_recognition_examples', 'knn_examples', 'train', 'obama', 'obama.jpg');

const bed = useDeviceBed('facegate-unknowns-');

/**
 * Starts the device on `video` (one pass), waits until the video is over and returns the events of that
 * run. Tracks end 300 ms after a face leaves, so the black gap between two visits ends the first visit.
 */
async function play(video: string): Promise<FaceEvent[]> {
  const camera = videoCamera(video);
  // Subscribed before the camera starts, so no event is missed.
  bed.op = await Operator.connect(bed.broker.url, buildTopics({ baseTopic: 'facegate', deviceId: DEVICE }));
  bed.device = await startApp(bed.dir, bed.broker.url, {
    cameras: [camera],
    recognition: { trackMaxAgeMs: 300 },
  });
  const app = bed.device.app;
  let last = -1;
  let still = 0;
  await waitUntil(
    'the end of the video',
    () => {
      const processed = app.cameraStats()[0].framesProcessed;
      still = processed === last && processed > 0 ? still + 1 : 0;
      last = processed;
      return still >= 20;
    },
    120_000,
  );
  const produced = app.cameraStats()[0].events;
  await waitUntil('every event', () => (bed.op?.events().length ?? 0) >= produced, 10_000);
  return bed.op?.events() ?? [];
}

describe('unknown visitors (real mosquitto, ffmpeg, ONNX Runtime)', () => {
  it('keeps one unknown id over repeated visits and restarts; naming it makes the next visit recognized', async () => {
    const visits = await videoOfPhoto(STRANGER, join(bed.dir, 'visits.mp4'), { seconds: 2, visits: 2 });
    const first = (await play(visits)).filter((e) => e.type === 'unknown');
    // One unknown event per visit at least, all filed under the same visitor.
    expect(first.length).toBeGreaterThanOrEqual(2);
    expect(new Set(first.map((e) => e.trackId)).size).toBeGreaterThanOrEqual(2);
    const ids = new Set(first.map((e) => e.unknownId));
    expect(ids.size).toBe(1);
    const [unknownId] = ids;
    expect(unknownId).toMatch(/^unknown-\d+$/);
    const listed = await bed.op?.ask('face/unknowns');
    expect(listed).toMatchObject({
      status: 'ok',
      data: { unknowns: [{ id: unknownId, lastCamera: 'door' }] },
    });
    await bed.stopDevice();

    // Another day: the gallery file remembers the visitor.
    const again = (await play(visits)).filter((e) => e.type === 'unknown');
    expect(again.length).toBeGreaterThan(0);
    expect(new Set(again.map((e) => e.unknownId))).toEqual(new Set([unknownId]));

    const named = await bed.op?.ask('face/enroll', { name: 'visitor', fromUnknown: unknownId });
    expect(named).toMatchObject({ status: 'ok', data: { name: 'visitor', added: expect.any(Number) } });
    expect((named as { data: { added: number } }).data.added).toBeGreaterThan(0);
    expect(await bed.op?.ask('face/unknowns')).toMatchObject({ data: { unknowns: [] } });
    await bed.stopDevice();

    const named_visit = await play(visits);
    const recognized = named_visit.filter((e) => e.type === 'recognized');
    expect(recognized.length).toBeGreaterThan(0);
    expect(recognized.every((e) => e.identity === 'visitor')).toBe(true);
  });

  it('enrols a person from an event of the demo clip over MQTT (fromEvent); the next visit is recognized as them', async () => {
    // Nobody is enrolled: the clip's visitor is unknown.
    const first = (await play(hamiltonCamera().source.path)).filter((e) => e.type === 'unknown');
    expect(first.length).toBeGreaterThan(0);
    const fromUnknownEvent = await bed.op?.ask('face/enroll', { name: 'lin', fromEvent: first[0].id });
    expect(fromUnknownEvent).toMatchObject({ status: 'ok', data: { name: 'lin', added: 1 } });
    await bed.stopDevice();

    const next = await play(hamiltonCamera().source.path);
    const recognized = next.filter((e) => e.type === 'recognized');
    expect(recognized.length).toBeGreaterThan(0);
    expect(recognized.every((e) => e.identity === 'lin')).toBe(true);
    // A recognised event's face is added to a person the same way: lin now has two faces.
    const fromRecognizedEvent = await bed.op?.ask('face/enroll', {
      name: 'lin',
      fromEvent: recognized[0].id,
    });
    expect(fromRecognizedEvent).toMatchObject({ status: 'ok', data: { name: 'lin', added: 1 } });
    expect(await bed.op?.ask('face/list')).toMatchObject({
      data: { faces: [{ name: 'lin', embeddings: 2 }] },
    });
  });

  it('does not recognise a rejected match again', async () => {
    bed.device = await startApp(bed.dir, bed.broker.url, {});
    expect(await bed.device.app.enrollPhoto('lin-manuel-miranda', LIN)).toEqual({ added: 1 });
    await bed.stopDevice();
    const before = (await play(hamiltonCamera().source.path)).filter((e) => e.type === 'recognized');
    expect(before.length).toBeGreaterThan(0);
    expect(before.every((e) => e.identity === 'lin-manuel-miranda')).toBe(true);
    // The operator says: that was not Lin-Manuel Miranda.
    for (const event of before) {
      const rejected = await bed.op?.ask('face/reject', { event: event.id });
      expect(rejected).toMatchObject({
        status: 'ok',
        data: { event: event.id, identity: 'lin-manuel-miranda', negatives: expect.any(Number) },
      });
    }
    const unknownEvent = (bed.op?.events() ?? []).find((e) => e.type === 'unknown');
    if (unknownEvent)
      expect(await bed.op?.ask('face/reject', { event: unknownEvent.id })).toMatchObject({
        status: 'error',
        error: `event ${unknownEvent.id} is unknown, not a recognition: there is nobody to reject`,
      });
    await bed.stopDevice();

    const after = await play(hamiltonCamera().source.path);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((e) => e.type === 'recognized')).toEqual([]);
  });
});
