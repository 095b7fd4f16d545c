import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type EventQueue,
  openEventQueue,
  QueueClosedError,
  type QueueOptions,
} from '../../../runtime/events/queue.ts';
import type { FaceEvent } from '../../../runtime/events/schema.ts';
import { unknownEvent } from '../../helpers/events.ts';
import { runWriterUntilKilled as runUntilKilled } from '../../helpers/kill-writer.ts';

const WRITER = fileURLToPath(new URL('./fixtures/queue-writer.ts', import.meta.url));

let dir: string;
const opened: EventQueue[] = [];

async function openQueue(opts: Partial<QueueOptions> = {}): Promise<EventQueue> {
  const queue = await openEventQueue(dir, { maxEvents: 1000, policy: 'drop-oldest', ...opts });
  opened.push(queue);
  return queue;
}

async function fill(queue: EventQueue, from: number, to: number): Promise<FaceEvent[]> {
  const events = [];
  for (let i = from; i < to; i++) {
    const e = unknownEvent(i);
    await queue.append(e);
    events.push(e);
  }
  return events;
}

const trackIds = (queue: EventQueue) => queue.peek(queue.size).map((q) => q.event.trackId);

async function segmentFiles(): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.seg')).sort();
}

/** Writes `count` events and closes the queue; the path of the one segment they fill, to damage. */
async function closedSegment(count: number): Promise<string> {
  const queue = await openQueue();
  await fill(queue, 0, count);
  await queue.close();
  const [segment] = await segmentFiles();
  return join(dir, segment);
}

/** Rewrites the segment of `count` same-size records after `damage` changed its bytes. */
async function damageSegment(count: number, damage: (bytes: Buffer, recordSize: number) => void) {
  const path = await closedSegment(count);
  const bytes = await readFile(path);
  damage(bytes, bytes.length / count);
  await writeFile(path, bytes);
}

// The ack pointer's layout (runtime/events/queue.ts header): two 16-byte slots, magic, CRC, seq u64le.
const ACK_FILE = 'ack.ptr';
const ACK_SLOT_STRIDE = 4096;
const ACK_FILE_BYTES = 2 * ACK_SLOT_STRIDE;

interface AckSlot {
  offset: number;
  seq: number;
}

async function ackSlots(): Promise<AckSlot[]> {
  const file = await readFile(join(dir, ACK_FILE));
  return [0, ACK_SLOT_STRIDE].map((offset) => ({ offset, seq: Number(file.readBigUInt64LE(offset + 8)) }));
}

async function damageAckFile(damage: (file: Buffer) => void): Promise<void> {
  const file = await readFile(join(dir, ACK_FILE));
  damage(file);
  await writeFile(join(dir, ACK_FILE), file);
}

/** Paths under `root` this process has open (Linux /proc). */
function openFilesUnder(root: string): string[] {
  return readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return ''; // closed meanwhile (the fd readdir itself used)
      }
    })
    .filter((path) => path.startsWith(`${root}/`));
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'facegate-queue-'));
});

afterEach(async () => {
  for (const q of opened.splice(0)) await q.close();
  await rm(dir, { recursive: true, force: true });
});

describe('EventQueue', () => {
  it('keeps events in FIFO order and removes them when acknowledged', async () => {
    const queue = await openQueue();
    const events = await fill(queue, 0, 10);
    expect(queue.size).toBe(10);
    const head = queue.peek(3);
    expect(head.map((q) => q.event)).toEqual(events.slice(0, 3));
    expect(queue.peek(3)).toEqual(head); // peek does not consume
    await queue.ack(head[2].seq);
    expect(queue.size).toBe(7);
    expect(trackIds(queue)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    await queue.ack(head[1].seq); // already acknowledged: no-op
    expect(queue.size).toBe(7);
    expect(queue.stats()).toMatchObject({ appended: 10, acked: 3, size: 7 });
  });

  it('refuses to ack what was never appended', async () => {
    const queue = await openQueue();
    await fill(queue, 0, 2);
    await expect(queue.ack(3)).rejects.toThrow(RangeError);
  });

  it('drop-oldest keeps the newest maxEvents and counts the dropped ones', async () => {
    const queue = await openQueue({ maxEvents: 5, policy: 'drop-oldest' });
    await fill(queue, 0, 12);
    expect(trackIds(queue)).toEqual([7, 8, 9, 10, 11]);
    expect(queue.stats()).toMatchObject({ size: 5, appended: 12, droppedOldest: 7, droppedNewest: 0 });
  });

  it('drop-newest keeps the oldest maxEvents and counts the refused ones', async () => {
    const queue = await openQueue({ maxEvents: 5, policy: 'drop-newest' });
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await queue.append(unknownEvent(i)));
    expect(results).toEqual([...Array(5).fill(true), ...Array(7).fill(false)]);
    expect(trackIds(queue)).toEqual([0, 1, 2, 3, 4]);
    expect(queue.stats()).toMatchObject({ size: 5, appended: 5, droppedOldest: 0, droppedNewest: 7 });
  });

  it('an ack of events dropped meanwhile acknowledges only what is left', async () => {
    const queue = await openQueue({ maxEvents: 3, policy: 'drop-oldest' });
    await fill(queue, 0, 3);
    const head = queue.peek(2); // 0, 1 being published ...
    await fill(queue, 3, 5); // ... while 0 and 1 are dropped to make room
    await queue.ack(head[1].seq);
    expect(trackIds(queue)).toEqual([2, 3, 4]);
  });

  it('survives close and reopen, including the ack pointer', async () => {
    let queue = await openQueue();
    const events = await fill(queue, 0, 6);
    await queue.ack(queue.peek(2)[1].seq);
    await queue.close();
    await expect(queue.append(unknownEvent(99))).rejects.toThrow(QueueClosedError);
    expect(() => queue.peek(1)).toThrow(QueueClosedError);

    queue = await openQueue();
    expect(queue.peek(10).map((q) => q.event)).toEqual(events.slice(2));
    await fill(queue, 6, 8);
    expect(trackIds(queue)).toEqual([2, 3, 4, 5, 6, 7]);
    const seqs = queue.peek(10).map((q) => q.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('rolls segments and deletes the fully acknowledged ones', async () => {
    const queue = await openQueue({ segmentBytes: 2048 });
    await fill(queue, 0, 40);
    const before = await segmentFiles();
    expect(before.length).toBeGreaterThan(3);
    await queue.ack(queue.peek(20)[19].seq);
    const after = await segmentFiles();
    expect(after.length).toBeLessThan(before.length);
    expect(trackIds(queue)).toEqual(Array.from({ length: 20 }, (_, i) => 20 + i));
  });

  it('compacts to nothing when everything is acknowledged, and keeps counting seqs afterwards', async () => {
    let queue = await openQueue();
    await fill(queue, 0, 5);
    const last = queue.peek(5)[4].seq;
    await queue.ack(last);
    expect(await segmentFiles()).toEqual([]);
    expect(queue.stats()).toMatchObject({ size: 0, segments: 0, bytes: 0 });
    await fill(queue, 5, 7);
    expect(queue.peek(1)[0].seq).toBe(last + 1);
    await queue.close();

    queue = await openQueue();
    expect(trackIds(queue)).toEqual([5, 6]);
    expect(queue.peek(1)[0].seq).toBe(last + 1);
  });

  it('bounds disk use with drop-oldest while nothing is acknowledged', async () => {
    const queue = await openQueue({ maxEvents: 10, segmentBytes: 2048 });
    await fill(queue, 0, 300);
    const { bytes, segments } = queue.stats();
    expect(segments).toBeLessThanOrEqual(4);
    expect(bytes).toBeLessThan(4 * 2048 + 1024);
    expect(trackIds(queue)).toEqual(Array.from({ length: 10 }, (_, i) => 290 + i));
  });

  it('truncates a torn last record on recovery', async () => {
    const path = await closedSegment(5);
    const { size } = await stat(path);
    await truncate(path, size - 17); // the last write was cut short

    let queue = await openQueue();
    expect(trackIds(queue)).toEqual([0, 1, 2, 3]);
    expect(queue.stats().truncatedBytes).toBeGreaterThan(0);
    expect(queue.stats().corrupt).toBe(0);
    expect((await stat(path)).size).toBeLessThan(size - 17);
    await fill(queue, 5, 6);
    await queue.close();

    queue = await openQueue();
    expect(trackIds(queue)).toEqual([0, 1, 2, 3, 5]);
    expect(queue.stats()).toMatchObject({ truncatedBytes: 0, corrupt: 0 });
  });

  it('truncates a torn header (only part of the length prefix written)', async () => {
    const path = await closedSegment(3);
    const one = (await stat(path)).size / 3;
    await truncate(path, 2 * one + 6);

    const queue = await openQueue();
    expect(trackIds(queue)).toEqual([0, 1]);
    expect(queue.stats().truncatedBytes).toBe(6);
  });

  it('skips and counts a corrupt record in the middle', async () => {
    await damageSegment(5, (bytes, one) => {
      bytes[Math.floor(2 * one + one / 2)] ^= 0x5a; // inside the payload of record 2
    });

    const queue = await openQueue();
    expect(trackIds(queue)).toEqual([0, 1, 3, 4]);
    expect(queue.stats()).toMatchObject({ corrupt: 1, truncatedBytes: 0 });
  });

  it('resynchronises after a corrupt length prefix', async () => {
    await damageSegment(5, (bytes, one) => {
      bytes.writeUInt32LE(3, one + 8); // record 1 now claims to be 3 bytes long
    });

    const queue = await openQueue();
    expect(trackIds(queue)).toEqual([0, 2, 3, 4]);
    expect(queue.stats().corrupt).toBe(1);
  });

  it('skips a record damaged after it was recovered', async () => {
    const queue = await openQueue();
    await fill(queue, 0, 3);
    const [segment] = await segmentFiles();
    const handle = await open(join(dir, segment), 'r+');
    const one = (await handle.stat()).size / 3;
    await handle.write(Buffer.from('X'), 0, 1, one + 40);
    await handle.close();
    expect(queue.peek(3).map((q) => q.event.trackId)).toEqual([0, 2]);
    expect(queue.stats().corrupt).toBe(1);
  });

  it('acknowledges in place: ack.ptr keeps its inode and size, and no other file appears', async () => {
    const queue = await openQueue();
    await fill(queue, 0, 6);
    const before = await stat(join(dir, ACK_FILE));
    const files = await readdir(dir);
    for (const { seq } of queue.peek(5)) await queue.ack(seq);
    const after = await stat(join(dir, ACK_FILE));
    expect([after.ino, after.size]).toEqual([before.ino, ACK_FILE_BYTES]);
    expect(await readdir(dir)).toEqual(files);
    expect(trackIds(queue)).toEqual([5]);
  });

  it('recovers from the other slot when the newest ack slot is torn (re-delivery, never loss)', async () => {
    let queue = await openQueue();
    await fill(queue, 0, 6);
    const seqs = queue.peek(6).map((q) => q.seq);
    await queue.ack(seqs[1]);
    await queue.ack(seqs[3]);
    await queue.close();
    const slots = await ackSlots();
    expect(slots.map((s) => s.seq).sort()).toEqual([seqs[1], seqs[3]]);
    // A torn write of the newest slot: its first half reached the disk, the seq did not.
    const newest = slots.find((s) => s.seq === seqs[3]) as AckSlot;
    await damageAckFile((file) => file.fill(0, newest.offset + 8, newest.offset + 16));

    queue = await openQueue();
    expect(trackIds(queue)).toEqual([2, 3, 4, 5]);
    expect(queue.stats().damagedAckSlots).toBe(1);
    // The next ack overwrites the damaged slot, not the one it recovered from.
    await queue.ack(seqs[2]);
    await queue.close();
    expect((await ackSlots()).map((s) => s.seq).sort()).toEqual([seqs[1], seqs[2]]);
    queue = await openQueue();
    expect(trackIds(queue)).toEqual([3, 4, 5]);
    expect(queue.stats().damagedAckSlots).toBe(0);
  });

  it('with both ack slots damaged falls back to "nothing acknowledged" and delivers again', async () => {
    let queue = await openQueue();
    await fill(queue, 0, 4);
    await queue.ack(queue.peek(2)[1].seq);
    await queue.close();
    await damageAckFile((file) => {
      file[4] ^= 0x5a; // slot 0's CRC
      file.fill(0, ACK_SLOT_STRIDE, ACK_SLOT_STRIDE + 16);
    });
    queue = await openQueue();
    expect(trackIds(queue)).toEqual([0, 1, 2, 3]);
    expect(queue.stats().damagedAckSlots).toBe(2);
  });

  it('upgrades a queue acknowledged by ack.json (previous release) without losing the pointer', async () => {
    let queue = await openQueue();
    await fill(queue, 0, 5);
    await queue.close();
    // The directory as the previous release left it.
    await rm(join(dir, ACK_FILE));
    await writeFile(
      join(dir, 'ack.json'),
      `${JSON.stringify({ ackedThrough: queue.stats().appended - 3 })}\n`,
    );

    queue = await openQueue();
    expect(trackIds(queue)).toEqual([2, 3, 4]);
    expect(await readdir(dir)).not.toContain('ack.json');
    expect((await stat(join(dir, ACK_FILE))).size).toBe(ACK_FILE_BYTES);
    await queue.ack(queue.peek(1)[0].seq);
    await queue.close();
    queue = await openQueue();
    expect(trackIds(queue)).toEqual([3, 4]);
  });

  it('treats a damaged ack.json (previous release) as "nothing acknowledged"', async () => {
    let queue = await openQueue();
    await fill(queue, 0, 4);
    await queue.close();
    await rm(join(dir, ACK_FILE));
    await writeFile(join(dir, 'ack.json'), '{"acked');
    queue = await openQueue();
    expect(trackIds(queue)).toEqual([0, 1, 2, 3]);
  });

  it('closes every file when the final sync fails, and reports the failure', async () => {
    // A segment per record, so each append also syncs the directory, which is then gone.
    const queue = await openQueue({ segmentBytes: 1 });
    const appends = Promise.allSettled([queue.append(unknownEvent(0)), queue.append(unknownEvent(1))]);
    const moved = `${dir}-moved`;
    await rename(dir, moved);
    try {
      expect(openFilesUnder(moved).length).toBeGreaterThanOrEqual(2); // the segments and ack.ptr
      await expect(queue.close()).rejects.toThrow(/ENOENT/);
      expect(openFilesUnder(moved)).toEqual([]);
      expect((await appends).map((r) => r.status)).toEqual(['rejected', 'rejected']);
    } finally {
      await rm(moved, { recursive: true, force: true });
    }
  });

  it('refuses a bad maxEvents and oversized events', async () => {
    await expect(openQueue({ maxEvents: 0 })).rejects.toThrow(RangeError);
    const queue = await openQueue({ maxEvents: 1, maxRecordBytes: 400 });
    await queue.append(unknownEvent(0));
    const big = { ...unknownEvent(1), snapshot: `/9j/${'A'.repeat(400)}` };
    await expect(queue.append(big)).rejects.toThrow(/maxRecordBytes/);
    expect(trackIds(queue)).toEqual([0]); // nothing was dropped for it
    expect(queue.stats().droppedOldest).toBe(0);
  });

  it('keeps order for concurrent appends (group commit)', async () => {
    const queue = await openQueue({ maxEvents: 10_000 });
    const events = Array.from({ length: 200 }, (_, i) => unknownEvent(i));
    await Promise.all(events.map((e) => queue.append(e)));
    expect(queue.peek(200).map((q) => q.event.id)).toEqual(events.map((e) => e.id));
  });
});

interface WriterLog {
  appended: number[];
  /** Highest trackId an ack was started for (may have survived the kill). */
  ackStarted: number;
  /** Highest trackId an ack completed for (must have survived). */
  ackDone: number;
}

async function runWriterUntilKilled(queueDir: string, killAfterMs: number): Promise<WriterLog> {
  const log: WriterLog = { appended: [], ackStarted: -1, ackDone: -1 };
  await runUntilKilled(WRITER, [queueDir], killAfterMs, (tag, n) => {
    if (tag === 'A') log.appended.push(n);
    else if (tag === 'K') log.ackStarted = Math.max(log.ackStarted, n);
    else if (tag === 'k') log.ackDone = Math.max(log.ackDone, n);
  });
  return log;
}

describe('EventQueue kill safety', () => {
  it('keeps every fsync-confirmed event, in order, without duplicates, across SIGKILLs', async () => {
    let totalAppended = 0;
    for (let round = 0; round < 4; round++) {
      const roundDir = join(dir, `round-${round}`);
      const log = await runWriterUntilKilled(roundDir, 150 + Math.floor(Math.random() * 600));
      expect(log.appended.length).toBeGreaterThan(0);
      totalAppended += log.appended.length;

      const queue = await openEventQueue(roundDir, { maxEvents: 1_000_000, policy: 'drop-newest' });
      opened.push(queue);
      const recovered = queue.peek(queue.size);
      const ids = recovered.map((q) => q.event.trackId);
      const seqs = recovered.map((q) => q.seq);

      // In order, no duplicates.
      for (let i = 1; i < ids.length; i++) {
        expect(ids[i]).toBeGreaterThan(ids[i - 1]);
        expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
      }
      expect(new Set(recovered.map((q) => q.event.id)).size).toBe(recovered.length);
      // A completed ack is durable: nothing at or before it comes back.
      if (log.ackDone >= 0 && ids.length > 0) expect(ids[0]).toBeGreaterThan(log.ackDone);
      // Every confirmed append not covered by an ack is there.
      const present = new Set(ids);
      const missing = log.appended.filter((n) => n > log.ackStarted && !present.has(n));
      expect(missing).toEqual([]);
      // The corpse must not look like damage: at most the torn tail is cut.
      expect(queue.stats().corrupt).toBe(0);
    }
    expect(totalAppended).toBeGreaterThan(20);
  }, 120_000);
});
