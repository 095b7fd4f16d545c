import { describe, expect, it } from 'vitest';
import { FrameSlot } from '../../../runtime/capture/slot.ts';
import type { Frame } from '../../../runtime/capture/types.ts';

const frame = (seq: number): Frame => ({
  camera: 'c',
  seq,
  capturedAt: 0,
  width: 1,
  height: 1,
  rgb: Buffer.alloc(3),
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('FrameSlot, newest frame wins', () => {
  it('overwrites an untaken frame and says so', async () => {
    const slot = new FrameSlot();
    expect([slot.put(frame(0)), slot.put(frame(1)), slot.put(frame(2))]).toEqual([0, 1, 1]);
    expect((await slot.take())?.seq).toBe(2);
    expect(slot.occupied).toBe(false);
  });

  it('hands a frame straight to a waiting consumer', async () => {
    const slot = new FrameSlot();
    const taken = slot.take();
    expect(slot.put(frame(7))).toBe(0);
    expect((await taken)?.seq).toBe(7);
    expect(slot.occupied).toBe(false);
  });

  it('keeps a slow consumer on fresh frames and counts every overwrite', async () => {
    const slot = new FrameSlot();
    let dropped = 0;
    let produced = 0;
    const producer = (async () => {
      for (; produced < 60; produced++) {
        dropped += slot.put(frame(produced));
        await sleep(2);
      }
      slot.close(false);
    })();
    const taken: number[] = [];
    for (let f = await slot.take(); f; f = await slot.take()) {
      taken.push(f.seq);
      await sleep(15);
    }
    await producer;
    expect(taken.length + dropped).toBe(60);
    expect(dropped).toBeGreaterThan(30);
    expect(taken).toEqual([...taken].sort((a, b) => a - b));
    expect(taken.at(-1)).toBe(59);
  });

  it('on close hands out the last frame, then null; on discard, null at once', async () => {
    const kept = new FrameSlot();
    kept.put(frame(1));
    kept.close(false);
    expect((await kept.take())?.seq).toBe(1);
    expect(await kept.take()).toBeNull();

    const discarded = new FrameSlot();
    discarded.put(frame(1));
    discarded.close(true);
    expect(await discarded.take()).toBeNull();
  });

  it('releases a waiting consumer with null when closed', async () => {
    const slot = new FrameSlot();
    const waiting = slot.take();
    slot.close(true);
    expect(await waiting).toBeNull();
    expect(slot.put(frame(1))).toBe(0);
    expect(await slot.take()).toBeNull();
  });
});

describe('FrameSlot keeping every frame', () => {
  it('queues in order and tells the producer when the consumer caught up', async () => {
    const slot = new FrameSlot(true);
    expect([slot.put(frame(0)), slot.put(frame(1))]).toEqual([0, 0]);
    let empty = false;
    const drained = slot.whenEmpty().then(() => {
      empty = true;
    });
    expect((await slot.take())?.seq).toBe(0);
    await sleep(0);
    expect(empty).toBe(false);
    expect((await slot.take())?.seq).toBe(1);
    await drained;
    expect(empty).toBe(true);
  });

  it('wakes a held-back producer when closed', async () => {
    const slot = new FrameSlot(true);
    slot.put(frame(0));
    const drained = slot.whenEmpty();
    slot.close(true);
    await drained;
  });
});
