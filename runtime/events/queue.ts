// Durable, bounded FIFO of events that could not be published, kept in a directory:
//
//   <16-digit first seq>.seg   append-only segments of records
//   ack.ptr                    the ack pointer: two slots, each overwritten in place (8 KiB, made once)
//   ack.json                   the previous release's ack pointer, read once and replaced by ack.ptr
//
// Record: magic FF 46 47 51 | crc32 u32le | length u32le | seq u64le | JSON payload (length bytes).
// The CRC covers length, seq and payload. 0xFF never occurs in UTF-8, so the magic cannot appear inside a
// payload and recovery can resynchronise after a damaged record by searching for it.
//
// Ack slot, at offset 0 and 4096: magic FF 46 47 41 | crc32 u32le of seq | seq u64le. Acks go to the two
// slots in turn, so the slot being written never holds the newest acknowledgement on disk: a torn write
// damages only itself and recovery takes the higher seq of the valid slots. The slots are 4 KiB apart,
// in different blocks, so a torn block or sector cannot reach both. If both are damaged (the disk, not a
// power cut, can do that), recovery falls back to ack.json if still there, else to 0: what is left in the
// segments is delivered again, never lost (counted in stats().damagedAckSlots).
//
// Durability contract:
// - append() resolves only after the record (and, for a new segment, its directory entry) is fdatasync'd.
//   Concurrent appends share one fdatasync (group commit), so batching costs no durability.
// - ack() resolves only after its slot is written and fdatasync'd. A crash between publishing and that
//   point re-delivers those events: delivery is at-least-once.
// - Acknowledging needs no free space: the ack file is written whole (temp file, fsync, rename) when the
//   queue is created or upgraded, and afterwards only overwritten in place (this holds on file systems
//   that overwrite in place: ext4, xfs, tmpfs; copy-on-write ones such as btrfs need space for any write).
//   So a queue that filled the disk can still drain: acks land, then fully acknowledged segments are
//   deleted and their space is free again. Only creating ack.ptr needs space; when open() finds no room
//   for it, the queue works and the next ack retries.
// - Events discarded by drop-oldest are persisted with the next sync; after a crash before that they may
//   come back once and are discarded again by later appends.
// - close() closes every descriptor even when its final sync fails, then rejects with the failure.
// - One process per directory; nothing guards against two writers.

import { closeSync, fdatasync, ftruncateSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { writeFileAtomic } from '../util/atomic-file.ts';
import type { FaceEvent } from './schema.ts';

export type OverflowPolicy = 'drop-oldest' | 'drop-newest';

export interface QueueOptions {
  /** Most unacknowledged events kept. */
  maxEvents: number;
  /** Which event is discarded when an append finds the queue full. */
  policy: OverflowPolicy;
  /** A segment is sealed once it reaches this size; fully acknowledged sealed segments are deleted. */
  segmentBytes?: number;
  /** Larger payloads are refused on append and treated as corruption on recovery. */
  maxRecordBytes?: number;
}

export interface QueuedEvent {
  /** Position in the queue; pass the last one handled to ack(). */
  seq: number;
  event: FaceEvent;
}

/** Counters are since open(), except size, segments and bytes which describe the queue now. */
export interface QueueStats {
  size: number;
  appended: number;
  acked: number;
  droppedOldest: number;
  droppedNewest: number;
  /** Damaged records skipped (on recovery or when read back). */
  corrupt: number;
  /** Bytes of torn records cut from segment tails on recovery. */
  truncatedBytes: number;
  /** Ack slots found damaged on open: one after a power cut during an ack, two only if the disk failed. */
  damagedAckSlots: number;
  segments: number;
  bytes: number;
}

export class QueueClosedError extends Error {
  override readonly name = 'QueueClosedError';
}

const MAGIC = Buffer.from([0xff, 0x46, 0x47, 0x51]);
const HEADER = 20;
const SEGMENT_NAME = /^(\d{16})\.seg$/;
const ACK_FILE = 'ack.ptr';
const LEGACY_ACK_FILE = 'ack.json';
const ACK_MAGIC = Buffer.from([0xff, 0x46, 0x47, 0x41]);
const ACK_SLOT_BYTES = 16;
const ACK_SLOT_STRIDE = 4096;
const ACK_FILE_BYTES = 2 * ACK_SLOT_STRIDE;
/** writeFileAtomic's temp files of the ack pointers, left behind by a crash while writing one. */
const ACK_TEMP_NAME = /^\.ack\.(ptr|json)\.\d+\.tmp$/;
const DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024;
const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;

const fdatasyncAsync = promisify(fdatasync);

interface Segment {
  firstSeq: number;
  path: string;
  /** Highest seq written to it (firstSeq - 1 while empty). */
  lastSeq: number;
  size: number;
  /** Open for appending: only the active (newest) segment of this session. */
  fd: number | null;
}

interface Entry {
  seq: number;
  segment: Segment;
  offset: number;
  length: number;
}

function encodeRecord(seq: number, payload: Buffer): Buffer {
  const record = Buffer.allocUnsafe(HEADER + payload.length);
  MAGIC.copy(record, 0);
  record.writeUInt32LE(payload.length, 8);
  record.writeBigUInt64LE(BigInt(seq), 12);
  payload.copy(record, HEADER);
  record.writeUInt32LE(crc32(record.subarray(8)), 4);
  return record;
}

type Parsed = { ok: true; seq: number; length: number; payload: Buffer } | { ok: false };

function parseRecord(buf: Buffer, offset: number, maxRecordBytes: number): Parsed {
  if (offset + HEADER > buf.length || buf.compare(MAGIC, 0, 4, offset, offset + 4) !== 0)
    return { ok: false };
  const len = buf.readUInt32LE(offset + 8);
  if (len > maxRecordBytes || offset + HEADER + len > buf.length) return { ok: false };
  if (crc32(buf.subarray(offset + 8, offset + HEADER + len)) !== buf.readUInt32LE(offset + 4))
    return { ok: false };
  const seq = Number(buf.readBigUInt64LE(offset + 12));
  return {
    ok: true,
    seq,
    length: HEADER + len,
    payload: buf.subarray(offset + HEADER, offset + HEADER + len),
  };
}

function encodeAckSlot(seq: number): Buffer {
  const slot = Buffer.alloc(ACK_SLOT_BYTES);
  ACK_MAGIC.copy(slot, 0);
  slot.writeBigUInt64LE(BigInt(seq), 8);
  slot.writeUInt32LE(crc32(slot.subarray(8)), 4);
  return slot;
}

/** The seq held by slot `index` of an ack file, or null when the slot is damaged (torn, zeroed). */
function decodeAckSlot(file: Buffer, index: number): number | null {
  const at = index * ACK_SLOT_STRIDE;
  if (file.length < at + ACK_SLOT_BYTES || file.compare(ACK_MAGIC, 0, 4, at, at + 4) !== 0) return null;
  const body = file.subarray(at + 8, at + ACK_SLOT_BYTES);
  if (crc32(body) !== file.readUInt32LE(at + 4)) return null;
  const seq = Number(body.readBigUInt64LE(0));
  return Number.isSafeInteger(seq) ? seq : null;
}

/** Writes all of `data` at `position`. */
function pwriteAll(fd: number, data: Buffer, position: number): void {
  let written = 0;
  while (written < data.length) {
    written += writeSync(fd, data, written, data.length - written, position + written);
  }
}

function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(16, '0')}.seg`;
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class EventQueue {
  readonly dir: string;
  private readonly maxEvents: number;
  private readonly policy: OverflowPolicy;
  private readonly segmentBytes: number;
  private readonly maxRecordBytes: number;

  private segments: Segment[] = [];
  private active: Segment | null = null;
  /** Unacknowledged records in seq order, starting at `head`. */
  private entries: Entry[] = [];
  private head = 0;
  private nextSeq = 1;
  private ackedThrough = 0;
  private persistedAck = 0;
  /** ack.ptr, open for writing its slots; null until it could be created (the disk was full). */
  private ackFd: number | null = null;
  /** The slot the next ack goes to: never the one holding the newest acknowledgement on disk. */
  private nextAckSlot = 0;
  private closed = false;

  private readonly dirty = new Set<Segment>();
  private readonly retired: Segment[] = [];
  private dirDirty = false;
  private syncRunning: Promise<void> | null = null;
  private syncQueued: Promise<void> | null = null;

  private readonly counters = {
    appended: 0,
    acked: 0,
    droppedOldest: 0,
    droppedNewest: 0,
    corrupt: 0,
    truncatedBytes: 0,
    damagedAckSlots: 0,
  };

  private constructor(dir: string, opts: QueueOptions) {
    if (!Number.isInteger(opts.maxEvents) || opts.maxEvents < 1) {
      throw new RangeError(`maxEvents must be a positive integer, got ${opts.maxEvents}`);
    }
    this.dir = dir;
    this.maxEvents = opts.maxEvents;
    this.policy = opts.policy;
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  }

  static async open(dir: string, opts: QueueOptions): Promise<EventQueue> {
    const queue = new EventQueue(dir, opts);
    await mkdir(dir, { recursive: true });
    await queue.recover();
    return queue;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  stats(): QueueStats {
    return {
      size: this.size,
      ...this.counters,
      segments: this.segments.length,
      bytes: this.segments.reduce((sum, s) => sum + s.size, 0),
    };
  }

  /**
   * Stores `event` durably behind everything already queued. Resolves false when the queue is full and
   * the policy is drop-newest (the event is discarded); with drop-oldest the oldest events make room.
   * The record is written synchronously, so calls made in a given order are queued in that order.
   */
  append(event: FaceEvent): Promise<boolean> {
    if (this.closed) return Promise.reject(new QueueClosedError('queue is closed'));
    const payload = Buffer.from(JSON.stringify(event));
    if (payload.length > this.maxRecordBytes) {
      return Promise.reject(new RangeError(`event of ${payload.length} bytes exceeds maxRecordBytes`));
    }
    if (this.size >= this.maxEvents) {
      if (this.policy === 'drop-newest') {
        this.counters.droppedNewest++;
        return Promise.resolve(false);
      }
      while (this.size >= this.maxEvents) {
        this.ackedThrough = this.entries[this.head].seq;
        this.head++;
        this.counters.droppedOldest++;
      }
      this.trimEntries();
    }
    const seq = this.nextSeq;
    const record = encodeRecord(seq, payload);
    try {
      const segment = this.writableSegment(record.length);
      this.writeAll(segment, record);
      this.entries.push({ seq, segment, offset: segment.size, length: record.length });
      segment.size += record.length;
      segment.lastSeq = seq;
      this.dirty.add(segment);
    } catch (err) {
      return Promise.reject(err);
    }
    this.nextSeq++;
    this.counters.appended++;
    return this.sync().then(() => true);
  }

  /** Up to `n` of the oldest unacknowledged events, oldest first, without removing them. */
  peek(n: number): QueuedEvent[] {
    this.assertOpen();
    const out: QueuedEvent[] = [];
    const fds = new Map<Segment, number>();
    try {
      let i = this.head;
      while (out.length < n && i < this.entries.length) {
        const entry = this.entries[i];
        const event = this.read(entry, fds);
        if (event === null) {
          // Damaged after recovery (bad disk): skip it rather than block the queue forever.
          this.counters.corrupt++;
          this.entries.splice(i, 1);
          continue;
        }
        out.push({ seq: entry.seq, event });
        i++;
      }
    } finally {
      for (const fd of fds.values()) closeSync(fd);
    }
    return out;
  }

  /** Acknowledges every event up to and including `seq` (events already dropped are skipped). */
  async ack(seq: number): Promise<void> {
    this.assertOpen();
    if (seq >= this.nextSeq)
      throw new RangeError(`cannot ack seq ${seq}: last appended is ${this.nextSeq - 1}`);
    if (seq <= this.ackedThrough) return;
    while (this.head < this.entries.length && this.entries[this.head].seq <= seq) {
      this.head++;
      this.counters.acked++;
    }
    this.ackedThrough = seq;
    this.trimEntries();
    await this.sync();
  }

  /** Syncs what is pending and closes every file, also when the sync fails; rejects with what failed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const failures: unknown[] = [];
    const attempt = (step: () => void) => {
      try {
        step();
      } catch (err) {
        failures.push(err);
      }
    };
    await this.sync().catch((err: unknown) => failures.push(err));
    for (const segment of [...this.segments, ...this.retired]) attempt(() => this.closeSegment(segment));
    this.active = null;
    const ackFd = this.ackFd;
    this.ackFd = null;
    if (ackFd !== null) attempt(() => closeSync(ackFd));
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1)
      throw new AggregateError(
        failures,
        `closing the event queue in ${this.dir}: ${failures.length} failures`,
      );
  }

  private assertOpen(): void {
    if (this.closed) throw new QueueClosedError('queue is closed');
  }

  private closeSegment(segment: Segment): void {
    const fd = segment.fd;
    if (fd === null) return;
    segment.fd = null;
    closeSync(fd);
  }

  private trimEntries(): void {
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  private writableSegment(recordLength: number): Segment {
    if (this.active && this.active.size > 0 && this.active.size + recordLength > this.segmentBytes) {
      // Closed by the next sync, after its last records are flushed.
      this.retired.push(this.active);
      this.active = null;
    }
    if (!this.active) {
      const path = join(this.dir, segmentName(this.nextSeq));
      // 'wx': a name is never reused (recovery deletes empty segments), so an existing file is a bug.
      const fd = openSync(path, 'wx');
      this.active = { firstSeq: this.nextSeq, path, lastSeq: this.nextSeq - 1, size: 0, fd };
      this.segments.push(this.active);
      this.dirDirty = true;
    }
    return this.active;
  }

  private writeAll(segment: Segment, record: Buffer): void {
    const fd = segment.fd as number;
    try {
      pwriteAll(fd, record, segment.size);
    } catch (err) {
      // Leave no partial record behind for the next append to follow (e.g. after ENOSPC).
      ftruncateSync(fd, segment.size);
      throw err;
    }
  }

  private read(entry: Entry, fds: Map<Segment, number>): FaceEvent | null {
    let fd = fds.get(entry.segment);
    if (fd === undefined) {
      fd = openSync(entry.segment.path, 'r');
      fds.set(entry.segment, fd);
    }
    const buf = Buffer.allocUnsafe(entry.length);
    if (readSync(fd, buf, 0, entry.length, entry.offset) !== entry.length) return null;
    const parsed = parseRecord(buf, 0, this.maxRecordBytes);
    if (!parsed.ok || parsed.seq !== entry.seq) return null;
    try {
      return JSON.parse(parsed.payload.toString('utf8')) as FaceEvent;
    } catch {
      return null;
    }
  }

  /** Group commit: joins the next sync that has not started yet, or starts one. */
  private sync(): Promise<void> {
    if (this.syncQueued) return this.syncQueued;
    if (!this.syncRunning) return this.startSync();
    const next = () => {
      this.syncQueued = null;
      return this.startSync();
    };
    this.syncQueued = this.syncRunning.then(next, next);
    return this.syncQueued;
  }

  private startSync(): Promise<void> {
    const run = this.syncOnce().finally(() => {
      if (this.syncRunning === run) this.syncRunning = null;
    });
    this.syncRunning = run;
    return run;
  }

  private async syncOnce(): Promise<void> {
    const dirty = [...this.dirty];
    this.dirty.clear();
    const retired = this.retired.splice(0);
    const dirDirty = this.dirDirty;
    this.dirDirty = false;

    for (const segment of dirty) if (segment.fd !== null) await fdatasyncAsync(segment.fd);
    for (const segment of retired) this.closeSegment(segment);
    if (dirDirty) await fsyncPath(this.dir);

    if (this.ackedThrough > this.persistedAck) {
      const ackedThrough = this.ackedThrough;
      await this.writeAck(ackedThrough);
      this.persistedAck = ackedThrough;
    }
    await this.deleteAckedSegments();
  }

  /** In place, into the slot not holding the newest acknowledgement: needs no free space. */
  private async writeAck(ackedThrough: number): Promise<void> {
    this.ackFd ??= this.createAckFile();
    pwriteAll(this.ackFd, encodeAckSlot(ackedThrough), this.nextAckSlot * ACK_SLOT_STRIDE);
    await fdatasyncAsync(this.ackFd);
    this.nextAckSlot = 1 - this.nextAckSlot;
  }

  /**
   * Writes ack.ptr whole with `persistedAck` in both slots (the one write that needs space), retires
   * ack.json once the new file is durable, and opens ack.ptr for in-place writes.
   */
  private createAckFile(): number {
    const file = Buffer.alloc(ACK_FILE_BYTES);
    const slot = encodeAckSlot(this.persistedAck);
    slot.copy(file, 0);
    slot.copy(file, ACK_SLOT_STRIDE);
    writeFileAtomic(join(this.dir, ACK_FILE), file);
    rmSync(join(this.dir, LEGACY_ACK_FILE), { force: true });
    return openSync(join(this.dir, ACK_FILE), 'r+');
  }

  /** Compaction: a segment goes once every record in it is acknowledged on disk. */
  private async deleteAckedSegments(): Promise<void> {
    const dead = this.segments.filter((s) => s.lastSeq <= this.persistedAck);
    if (dead.length === 0) return;
    this.segments = this.segments.filter((s) => s.lastSeq > this.persistedAck);
    for (const segment of dead) {
      // The active segment is dead only when everything is acknowledged; the next append starts a new one.
      if (segment === this.active) this.active = null;
      this.dirty.delete(segment);
      this.closeSegment(segment);
      await rm(segment.path, { force: true });
    }
  }

  private async recover(): Promise<void> {
    const ackFileWhole = await this.readAck();
    const entries = await readdir(this.dir);
    for (const name of entries.filter((n) => ACK_TEMP_NAME.test(n))) await rm(join(this.dir, name));
    const names = entries
      .map((name) => SEGMENT_NAME.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ name: m[0], firstSeq: Number(m[1]) }))
      .sort((a, b) => a.firstSeq - b.firstSeq);

    let maxSeq = this.ackedThrough;
    for (const { name, firstSeq } of names) {
      const path = join(this.dir, name);
      const segment: Segment = { firstSeq, path, lastSeq: firstSeq - 1, size: 0, fd: null };
      const live = await this.scanSegment(segment);
      maxSeq = Math.max(maxSeq, segment.lastSeq);
      if (live.length === 0) {
        await rm(path, { force: true });
        continue;
      }
      this.segments.push(segment);
      this.entries.push(...live);
    }
    this.nextSeq = maxSeq + 1;
    if (ackFileWhole) {
      this.ackFd = openSync(join(this.dir, ACK_FILE), 'r+');
      // Left by a crash between writing ack.ptr and removing ack.json.
      await rm(join(this.dir, LEGACY_ACK_FILE), { force: true });
    } else {
      // Made now, while the queue is (nearly) empty, so it exists before the queue can fill the disk.
      try {
        this.ackFd = this.createAckFile();
      } catch (err) {
        if (!isOutOfSpace(err)) throw err;
      }
    }
  }

  /**
   * Sets the ack pointer from the newest valid slot of ack.ptr or from ack.json, whichever is higher
   * (each is an acknowledgement that was on disk), and picks the slot the next ack overwrites.
   * Returns whether ack.ptr is there with its full size, ready for in-place writes.
   */
  private async readAck(): Promise<boolean> {
    const file = await readOrNull(join(this.dir, ACK_FILE));
    let fromSlots = 0;
    if (file !== null) {
      const slots = [decodeAckSlot(file, 0), decodeAckSlot(file, 1)];
      this.counters.damagedAckSlots = slots.filter((s) => s === null).length;
      const newest = (slots[1] ?? -1) > (slots[0] ?? -1) ? 1 : 0;
      fromSlots = slots[newest] ?? 0;
      this.nextAckSlot = 1 - newest;
    }
    this.ackedThrough = this.persistedAck = Math.max(fromSlots, await this.readLegacyAck());
    return file !== null && file.length === ACK_FILE_BYTES;
  }

  private async readLegacyAck(): Promise<number> {
    const text = await readOrNull(join(this.dir, LEGACY_ACK_FILE));
    try {
      const parsed = JSON.parse(text?.toString('utf8') ?? '{}') as { ackedThrough?: unknown };
      return Number.isSafeInteger(parsed.ackedThrough) ? (parsed.ackedThrough as number) : 0;
    } catch {
      // Unreadable: replaying from the start re-delivers, never loses.
      return 0;
    }
  }

  /** Reads a segment, skips damaged records, truncates a torn tail; returns its unacknowledged records. */
  private async scanSegment(segment: Segment): Promise<Entry[]> {
    const buf = await readFile(segment.path);
    const live: Entry[] = [];
    let offset = 0;
    while (offset < buf.length) {
      const parsed = parseRecord(buf, offset, this.maxRecordBytes);
      if (parsed.ok && parsed.seq > segment.lastSeq && this.isJson(parsed.payload)) {
        if (parsed.seq > this.ackedThrough)
          live.push({ seq: parsed.seq, segment, offset, length: parsed.length });
        segment.lastSeq = parsed.seq;
        offset += parsed.length;
        continue;
      }
      const next = this.findNextRecord(buf, offset + 1, segment.lastSeq);
      if (next === -1) {
        // Nothing valid follows: an interrupted write. Cut it so the file ends on a record boundary.
        this.counters.truncatedBytes += buf.length - offset;
        const handle = await open(segment.path, 'r+');
        try {
          await handle.truncate(offset);
          await handle.sync();
        } finally {
          await handle.close();
        }
        break;
      }
      this.counters.corrupt++;
      offset = next;
    }
    segment.size = offset;
    return live;
  }

  private findNextRecord(buf: Buffer, from: number, lastSeq: number): number {
    for (let at = buf.indexOf(MAGIC, from); at !== -1; at = buf.indexOf(MAGIC, at + 1)) {
      const parsed = parseRecord(buf, at, this.maxRecordBytes);
      if (parsed.ok && parsed.seq > lastSeq) return at;
    }
    return -1;
  }

  private isJson(payload: Buffer): boolean {
    try {
      JSON.parse(payload.toString('utf8'));
      return true;
    } catch {
      return false;
    }
  }
}

/** A file's bytes, or null when it is missing or unreadable (for the ack pointers: re-delivery, never loss). */
async function readOrNull(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch {
    return null;
  }
}

function isOutOfSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function openEventQueue(dir: string, opts: QueueOptions): Promise<EventQueue> {
  return EventQueue.open(dir, opts);
}
