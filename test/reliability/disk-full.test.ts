// Disk full, on a real 1 MiB tmpfs (needs root to mount): buffering events with the broker away, the
// offline queue filling the disk itself and then draining, enrolling people and installing a model
// version each hit ENOSPC. Nothing crashes, each failure is counted or reported with its reason, what was
// stored before stays intact, and work resumes once there is space.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openEventQueue } from '../../runtime/events/queue.ts';
import { Gallery } from '../../runtime/matching/gallery/index.ts';
import { CROP_BYTES, EMBEDDING_DIM } from '../../runtime/matching/gallery/records.ts';
import { ModelSlots } from '../../runtime/model-update/slots.ts';
import { loadModel, manifestPathFor, sha256 } from '../../runtime/models/manifest.ts';
import { startMqttClient } from '../../runtime/mqtt/client.ts';
import { buildTopics } from '../../runtime/mqtt/topics.ts';
import { silentLogger } from '../../runtime/util/log.ts';
import { unknownEvent } from '../helpers/events.ts';
import { freePort, startMosquitto } from '../helpers/mosquitto.ts';
import { MODELS_DIR } from '../helpers/paths.ts';
import { Subscriber, waitUntil } from '../integration/mqtt/support.ts';

const mountPoint = mkdtempSync(join(tmpdir(), 'facegate-diskfull-'));
let mounted = false;
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint], { stdio: 'ignore' });
  mounted = true;
} catch {
  // Not root, or no mount in this container: the suite says so instead of passing vacuously.
}

function freeBytes(): number {
  return Number(execFileSync('df', ['--output=avail', '-B1', mountPoint]).toString().split('\n')[1]);
}

/** Fills the disk but for `leave` bytes. */
function fill(leave: number): string {
  const filler = join(mountPoint, `filler-${Math.random().toString(36).slice(2)}`);
  writeFileSync(filler, Buffer.alloc(Math.max(0, freeBytes() - leave)));
  return filler;
}

/** A queue whose 64 KiB segments let the 1 MiB disk fill (and, drained, free) a segment at a time. */
function openSmallQueue(dir: string) {
  return openEventQueue(dir, { maxEvents: 100_000, policy: 'drop-oldest', segmentBytes: 64 * 1024 });
}

function event(n: number) {
  return unknownEvent(n, {
    snapshot: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(2000, n % 256)]),
  });
}

// A failed test must not leave the next one a full disk.
afterEach(() => {
  if (!mounted) return;
  for (const name of readdirSync(mountPoint)) if (name.startsWith('filler-')) rmSync(join(mountPoint, name));
});

afterAll(() => {
  if (mounted) execFileSync('umount', [mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

describe.skipIf(!mounted)('disk full (1 MiB tmpfs)', () => {
  it('buffering: events that do not fit are counted as dropped, the queue keeps the rest and resumes', async () => {
    const dir = join(mountPoint, 'queue');
    const queue = await openSmallQueue(dir);
    // A broker that is not there: every event goes to the offline queue.
    const client = await startMqttClient({
      url: `mqtt://127.0.0.1:${await freePort()}`,
      topics: buildTopics({ baseTopic: 'facegate', deviceId: 'door' }),
      queue,
      reconnectPeriodMs: 60_000,
      log: silentLogger,
    });
    const filler = fill(64 * 1024);
    const outcomes = { queued: 0, failed: 0 };
    const errors = new Set<string>();
    for (let n = 0; n < 200; n++) {
      await client.publishEvent(event(n)).then(
        () => outcomes.queued++,
        (e: NodeJS.ErrnoException) => {
          outcomes.failed++;
          errors.add(e.code ?? e.message);
        },
      );
    }
    const stats = client.stats();
    console.log(
      `[disk-full] buffering: ${outcomes.queued} events queued, ${outcomes.failed} refused (${[...errors].join(', ')}), counted dropped ${stats.dropped}`,
    );
    expect(outcomes.failed).toBeGreaterThan(0);
    expect([...errors]).toEqual(['ENOSPC']);
    expect(stats.dropped).toBe(outcomes.failed);
    expect(queue.size).toBe(outcomes.queued);
    const held = queue.peek(queue.size).map((e) => e.event.trackId);
    // Space again: appends resume, and everything queued is still there in order after a reopen.
    rmSync(filler);
    await client.publishEvent(event(1000));
    await client.stop();
    await queue.close();
    const reopened = await openSmallQueue(dir);
    expect(reopened.peek(reopened.size).map((e) => e.event.trackId)).toEqual([...held, 1000]);
    await reopened.close();
    rmSync(dir, { recursive: true });
  });

  it('draining: a queue that filled the disk delivers each event once when the broker is back, frees the space and stores again', async () => {
    const topics = buildTopics({ baseTopic: 'facegate', deviceId: 'door' });
    const broker = await startMosquitto({ persistence: true });
    // The operator's session outlives the outage (clean: false, broker persistence), so it gets the
    // replay however soon the device reconnects.
    const sub = await Subscriber.connect(broker.url, [topics.event], { clientId: 'operator', clean: false });
    await broker.stop();
    const dir = join(mountPoint, 'draining');
    const queue = await openSmallQueue(dir);
    const client = await startMqttClient({
      url: broker.url,
      topics,
      queue,
      reconnectPeriodMs: 200,
      log: silentLogger,
    });
    try {
      const freeAtStart = freeBytes();
      // What the device was told about each event: 'queued', 'published' or the error that refused it.
      const outcomes = new Map<string, string>();
      const publish = async (n: number) => {
        const e = event(n);
        const outcome = await client.publishEvent(e).catch((err: NodeJS.ErrnoException) => err.code ?? '');
        outcomes.set(e.id, outcome);
        return outcome;
      };
      let n = 0;
      while ((await publish(n++)) === 'queued') {}
      const filled = { stored: queue.size, refusal: [...outcomes.values()].at(-1), free: freeBytes() };
      expect(filled.refusal).toBe('ENOSPC');
      expect(filled.stored).toBeGreaterThan(100);

      await broker.start();
      // New events keep coming while the queue drains; each kicks a replay. Until acks free segments
      // they find the disk full.
      const deadline = Date.now() + 60_000;
      while (queue.size > 0 && Date.now() < deadline) {
        await publish(n++);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(queue.size).toBe(0);
      const stored = [...outcomes].filter(([, o]) => o === 'queued' || o === 'published').map(([id]) => id);
      await waitUntil('every stored event at the operator', () => {
        const received = new Set(sub.events(topics.event).map((e) => e.id));
        return stored.every((id) => received.has(id));
      });
      // Room for duplicates to show up, had any window been published twice.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const received = sub.events(topics.event).map((e) => e.id);
      const duplicates = received.length - new Set(received).size;
      const freeDrained = freeBytes();
      const { segments } = queue.stats();

      // Space again: with the broker away, a new event is stored, not refused.
      await broker.stop();
      await waitUntil('the device to notice the broker is gone', () => !client.connected);
      const again = await publish(n++);
      const refusedAll = [...outcomes.values()].filter((o) => o !== 'queued' && o !== 'published');
      console.log(
        `[disk-full] draining: ${filled.stored} events queued until ENOSPC (${filled.free} bytes left); broker back: ` +
          `${stored.length} stored events delivered, ${new Set(received).size} distinct ids received, ${duplicates} duplicates; ` +
          `${refusedAll.length} refused (${[...new Set(refusedAll)].join(', ')}); drained to ${segments} segments, ` +
          `free ${freeAtStart} -> ${filled.free} -> ${freeDrained} bytes; a new event then: ${again}`,
      );
      expect(duplicates).toBe(0);
      expect(new Set(received)).toEqual(new Set(stored));
      expect(segments).toBe(0);
      expect(freeDrained).toBeGreaterThanOrEqual(freeAtStart - 4096);
      expect(refusedAll.every((o) => o === 'ENOSPC')).toBe(true);
      expect(again).toBe('queued');
      expect(queue.size).toBe(1);
    } finally {
      await client.stop();
      await queue.close();
      await sub.end();
      await broker.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('enrolling: a person who does not fit is refused with the reason, the gallery stays whole', () => {
    const path = join(mountPoint, 'gallery.db');
    const gallery = Gallery.open(path);
    const sample = (seed: number) => {
      const v = Float32Array.from({ length: EMBEDDING_DIM }, (_, i) => Math.sin(seed + i));
      const norm = Math.hypot(...v);
      return {
        embedding: v.map((x) => x / norm),
        crop: new Uint8Array(CROP_BYTES).fill(seed),
        source: 'x.jpg',
      };
    };
    gallery.enroll('ann', [sample(1)], { name: 'facerec', version: '1' });
    const filler = fill(32 * 1024);
    let refused = '';
    let enrolled = 0;
    for (let i = 0; i < 20 && !refused; i++) {
      try {
        gallery.enroll(`p${i}`, [sample(i + 2), sample(i + 3)], { name: 'facerec', version: '1' });
        enrolled++;
      } catch (e) {
        refused = (e as Error).message;
      }
    }
    console.log(`[disk-full] enrolling: ${enrolled} enrolled, then refused: ${refused}`);
    expect(refused).toMatch(/full/i);
    const names = gallery.list().map((p) => [p.name, p.embeddings]);
    gallery.close();
    rmSync(filler);
    const reopened = Gallery.open(path);
    expect(reopened.list().map((p) => [p.name, p.embeddings])).toEqual(names);
    reopened.enroll('bob', [sample(99)], { name: 'facerec', version: '1' });
    expect(reopened.list().map((p) => p.name)).toContain('bob');
    reopened.close();
  });

  it('updating: a model version that does not fit is refused, the running one stays', () => {
    const slots = new ModelSlots({
      dataDir: join(mountPoint, 'data'),
      name: 'blazeface',
      bundledDir: MODELS_DIR,
      precision: 'int8',
    });
    const { signature: _, ...base } = loadModel(manifestPathFor(MODELS_DIR, 'blazeface', 'int8')).manifest;
    const release = (version: string, bytes: number) => {
      const onnx = new Uint8Array(bytes).fill(version.length);
      return { manifest: { ...base, version, sha256: sha256(onnx), bytes }, onnx };
    };
    const first = release('1.0.1', 100_000);
    slots.install(first.manifest, first.onnx);
    const filler = fill(50_000);
    const big = release('1.0.22', 200_000);
    expect(() => slots.install(big.manifest, big.onnx)).toThrow(/ENOSPC/);
    const active = slots.resolveActive();
    expect(active.model.manifest.version).toBe('1.0.1');
    expect(active.problems).toEqual([]);
    rmSync(filler);
    // The failed attempt left nothing behind that blocks the next one.
    slots.install(big.manifest, big.onnx);
    expect(slots.resolveActive().model.manifest.version).toBe('1.0.22');
    console.log(
      '[disk-full] updating: 200 KB version refused with ENOSPC on a full disk, 1.0.1 kept, installed once space was freed',
    );
  });
});
