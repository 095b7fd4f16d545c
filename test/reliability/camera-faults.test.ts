// Camera faults through the whole device: the camera is an HTTP MJPEG stream from a server the test
// controls (ffmpeg reads it, as for a real IP camera), and the stream misbehaves in turn: corrupt frames,
// frames of the wrong size, a stall, and the connection dropped so ffmpeg exits. After each fault the
// pipeline is processing frames again. Corrupt frames, the stall and the exit are logged; frames of the
// wrong size are scaled by ffmpeg to the configured size, so for the pipeline they are no fault.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.ts';
import { DOOR_CLIP } from '../helpers/paths.ts';
import { type RunningApp, startApp } from '../integration/app/harness.ts';
import { waitUntil } from '../integration/mqtt/support.ts';

const run = promisify(execFile);
type Mode = 'ok' | 'corrupt' | 'wrong-size' | 'stall';

const dir = mkdtempSync(join(tmpdir(), 'facegate-camera-faults-'));
let broker: Mosquitto | undefined;
let device: RunningApp | undefined;
const clients = new Set<ServerResponse>();
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=frame' });
  clients.add(res);
  res.on('close', () => clients.delete(res));
});

afterAll(async () => {
  await device?.app.stop();
  await broker?.dispose();
  for (const c of clients) c.destroy();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('camera faults', () => {
  it('recovers from corrupt and wrong-size frames, a stall and an exited source; reports the corrupt frames, the stall and the exit', async () => {
    await run('ffmpeg', [
      '-loglevel',
      'error',
      '-i',
      DOOR_CLIP,
      '-vf',
      'fps=5',
      '-frames:v',
      '20',
      join(dir, 'f%02d.jpg'),
    ]);
    const jpegs = readdirSync(dir)
      .filter((f) => f.endsWith('.jpg'))
      .map((f) => readFileSync(join(dir, f)));
    const small = await Promise.all(jpegs.map((j) => sharp(j).resize(320, 180).jpeg().toBuffer()));
    let mode: Mode = 'ok';
    let n = 0;
    const timer = setInterval(() => {
      if (mode === 'stall') return;
      const frame =
        mode === 'corrupt'
          ? Buffer.concat([jpegs[0].subarray(0, 600), Buffer.alloc(3000, 0x5a)])
          : (mode === 'wrong-size' ? small : jpegs)[n++ % jpegs.length];
      for (const c of clients)
        c.write(
          Buffer.concat([
            Buffer.from(`--frame\r\ncontent-type: image/jpeg\r\ncontent-length: ${frame.length}\r\n\r\n`),
            frame,
            Buffer.from('\r\n'),
          ]),
        );
    }, 100);
    try {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/stream.mjpg`;
      broker = await startMosquitto();
      mkdirSync(join(dir, 'device'));
      device = await startApp(join(dir, 'device'), broker.url, {
        cameras: [
          {
            id: 'door',
            source: { kind: 'http', url },
            width: 640,
            height: 360,
            fps: 10,
            restart: { initialDelayMs: 200, maxDelayMs: 1000, stallTimeoutMs: 2000, healthyAfterMs: 5000 },
          },
        ],
      });
      const running = device;
      const processed = () => running.app.cameraStats()[0].framesProcessed;
      const recovers = async (fault: string) => {
        mode = 'ok';
        const before = processed();
        await waitUntil(`frames after ${fault}`, () => processed() >= before + 10, 30_000);
      };
      const logsSince = (from: number) => running.logs.slice(from).join('\n');

      await recovers('start');
      const outcomes: string[] = [];
      for (const fault of ['corrupt', 'wrong-size', 'stall'] as const) {
        const from = running.logs.length;
        mode = fault;
        await new Promise((r) => setTimeout(r, 3_000));
        await recovers(fault);
        outcomes.push(
          `${fault}: recovered; logged ${JSON.stringify(logsSince(from).split('\n').filter(Boolean).at(-1) ?? '')}`,
        );
        if (fault === 'stall') expect(logsSince(from)).toMatch(/stalled: no frame for 2000 ms/);
        if (fault === 'corrupt') expect(logsSince(from)).toMatch(/camera door: stream error: /);
      }
      const from = running.logs.length;
      for (const c of clients) c.destroy();
      await recovers('the source exiting');
      expect(logsSince(from)).toMatch(/camera door.*restarting in/s);
      outcomes.push(
        `exit: recovered; logged ${JSON.stringify(logsSince(from).split('\n').filter(Boolean).at(-1) ?? '')}`,
      );
      console.log(`[camera] ${outcomes.join('\n[camera] ')}`);
      expect(running.app.cameraStats()[0].framesProcessed).toBeGreaterThan(40);
    } finally {
      clearInterval(timer);
    }
  });
});
