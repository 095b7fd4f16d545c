import { afterEach, describe, expect, it } from 'vitest';
import type { RestartInfo } from '../../../runtime/capture/index.ts';
import { createFrameSource } from '../../../runtime/capture/index.ts';
import type { CaptureSource } from '../../../runtime/capture/source.ts';
import { camera } from '../../unit/capture/helpers.ts';
import {
  distinctValues,
  freePort,
  type MjpegHttpServer,
  nextEvent,
  nextFrame,
  type RtspServer,
  startMjpegHttpServer,
  startRtspServer,
} from './harness.ts';

// Smaller than the clip: scaling is ffmpeg's job, and two cores run the servers too.
const SIZE = { width: 320, height: 180 };

describe('network sources (real ffmpeg on loopback)', () => {
  let source: CaptureSource | undefined;
  let rtsp: RtspServer | undefined;
  let http: MjpegHttpServer | undefined;

  afterEach(async () => {
    await source?.stop();
    await rtsp?.close();
    await http?.close();
    source = rtsp = http = undefined;
  });

  it('reads an RTSP stream over TCP', async () => {
    rtsp = await startRtspServer();
    source = createFrameSource(camera({ kind: 'rtsp', url: rtsp.url }, { ...SIZE, fps: 10 }));
    await source.start();
    for (let i = 0; i < 10; i++) {
      const frame = await nextFrame(source, 10_000);
      expect([frame?.width, frame?.height]).toEqual([320, 180]);
      expect(distinctValues(frame?.rgb ?? Buffer.alloc(0))).toBeGreaterThan(100);
    }
    expect(source.stats().restarts).toBe(0);
  });

  it('restarts a stalled RTSP source (SIGSTOPped encoder) and resumes when the stream does', async () => {
    rtsp = await startRtspServer();
    source = createFrameSource(
      camera(
        { kind: 'rtsp', url: rtsp.url },
        { ...SIZE, fps: 10, restart: { initialDelayMs: 200, maxDelayMs: 2000, stallTimeoutMs: 4000 } },
      ),
    );
    await source.start();
    await nextFrame(source, 10_000);
    rtsp.encoder.kill('SIGSTOP');
    const stalledAt = Date.now();
    const [info] = (await nextEvent(source, 'restart', 10_000)) as [RestartInfo];
    expect(info).toMatchObject({ attempt: 1, delayMs: 200, reason: 'stalled: no frame for 4000 ms' });
    expect(Date.now() - stalledAt).toBeGreaterThanOrEqual(3500);
    rtsp.encoder.kill('SIGCONT');
    const seqBefore = source.stats().framesIn;
    // Newest frame wins: the one taken while stalled may be stale, so wait for a fresh one.
    let frame = await nextFrame(source, 15_000);
    while (frame && frame.seq < seqBefore) frame = await nextFrame(source, 15_000);
    expect(frame?.seq).toBeGreaterThanOrEqual(seqBefore);
    expect(source.stats().restarts).toBe(1);
  });

  it('reads ffmpeg-served HTTP MJPEG, and restarts with backoff when the server dies until it is back', async () => {
    const port = await freePort();
    http = await startMjpegHttpServer(port);
    source = createFrameSource(
      camera(
        { kind: 'http', url: http.url },
        { ...SIZE, fps: 10, restart: { initialDelayMs: 100, maxDelayMs: 800, stallTimeoutMs: 5000 } },
      ),
    );
    const restarts: RestartInfo[] = [];
    source.on('restart', (info) => restarts.push(info));
    source.on('error', () => undefined);
    await source.start();
    for (let i = 0; i < 5; i++) {
      const frame = await nextFrame(source, 10_000);
      expect([frame?.width, frame?.height]).toEqual([320, 180]);
      expect(distinctValues(frame?.rgb ?? Buffer.alloc(0))).toBeGreaterThan(100);
    }
    await http.close();
    await nextEvent(source, 'restart', 10_000);
    // Down long enough for the backoff to grow against refused connections.
    await new Promise((r) => setTimeout(r, 1500));
    expect(restarts.length).toBeGreaterThanOrEqual(3);
    expect(restarts.map((r) => r.delayMs).slice(0, 3)).toEqual([100, 200, 400]);
    expect(source.stats().lastError).toMatch(/Connection refused/);
    http = await startMjpegHttpServer(port);
    const framesBefore = source.stats().framesIn;
    let frame = await nextFrame(source, 15_000);
    while (frame && frame.seq < framesBefore) frame = await nextFrame(source, 15_000);
    expect(frame?.seq).toBeGreaterThanOrEqual(framesBefore);
  });
});
