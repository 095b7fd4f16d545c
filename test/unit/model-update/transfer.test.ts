import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { collectChunks } from '../../../runtime/model-update/download.ts';
import { ChunkTransfer, modelChunks } from '../../../runtime/model-update/transfer.ts';
import { sha256 } from '../../../runtime/models/manifest.ts';
import { downloadFailure } from '../../helpers/model-update.ts';

const model = randomBytes(100_000);
const chunks = modelChunks(model, 'xfer-1', 10_000);
const assemble = (transfer: ChunkTransfer, timeoutMs = 5_000) =>
  collectChunks(transfer, { maxBytes: model.length, sha256: sha256(model), bytes: model.length, timeoutMs });
const open = (idleTimeoutMs = 5_000) =>
  new ChunkTransfer({ id: 'xfer-1', total: chunks.length, idleTimeoutMs });

describe('ChunkTransfer', () => {
  it('feeds the assembler chunks in any order, counting a redelivered one once', async () => {
    const transfer = open();
    const model$ = assemble(transfer);
    const order = [...chunks].reverse();
    order.splice(4, 0, chunks[8]);
    const receipts = order.map((chunk) => transfer.accept(chunk));
    expect(Buffer.from(await model$).equals(model)).toBe(true);
    expect(receipts.map((r) => r.received)).toEqual([1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10]);
    expect(receipts[4]).toEqual({ id: 'xfer-1', index: 8, received: 4, total: 10, duplicate: true });
    // A late redelivery of a chunk already in is still answered; it changes nothing.
    expect(transfer.accept(chunks[0])).toMatchObject({ duplicate: true, received: 10 });
  });

  it('refuses a malformed or foreign chunk with the reason, and goes on', async () => {
    const transfer = open();
    const model$ = assemble(transfer);
    const cases: [unknown, RegExp][] = [
      [{ ...chunks[1], id: 'other' }, /model chunk 1 belongs to transfer other, not xfer-1/],
      [{ ...chunks[1], total: 11 }, /model chunk 1 of xfer-1 says 11 chunks, the transfer has 10/],
      [{ ...chunks[1], index: 10 }, /model chunk of xfer-1 has index 10, outside 0..9/],
      [{ ...chunks[1], data: 'not base64!' }, /model chunk 1 of xfer-1 is not base64/],
      [{ ...chunks[1], data: '' }, /model chunk 1 of xfer-1 is not base64/],
      [null, /model chunk has no transfer id/],
    ];
    for (const [chunk, reason] of cases) {
      expect(() => transfer.accept(chunk)).toThrow(reason);
      expect(transfer.received).toBe(0);
    }
    for (const chunk of chunks) transfer.accept(chunk);
    expect(Buffer.from(await model$).equals(model)).toBe(true);
  });

  it('abandons a transfer that stops arriving, keeping nothing and refusing later chunks', async () => {
    const transfer = open(150);
    const model$ = assemble(transfer);
    // New chunks keep it alive past the idle timeout...
    for (const chunk of chunks.slice(0, 4)) {
      transfer.accept(chunk);
      await new Promise((r) => setTimeout(r, 60));
    }
    const started = performance.now();
    // ...then it stalls.
    const e = await downloadFailure(model$);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(e.code).toBe('timeout');
    expect(e.message).toBe('transfer xfer-1: no new chunk for 0.15 s, 4 of 10 received; abandoned');
    expect(() => transfer.accept(chunks[5])).toThrow(
      'transfer xfer-1 is over: transfer xfer-1: no new chunk for 0.15 s',
    );
    expect(() => transfer.accept(chunks[0])).toThrow(/is over/);
    expect((transfer as unknown as { queue: unknown[] }).queue).toEqual([]);
  });

  it('gives the reader the reason when cancelled, and drops chunks it had not taken', async () => {
    const transfer = open();
    transfer.accept(chunks[0]);
    transfer.accept(chunks[1]);
    transfer.cancel('facegate is stopping');
    const e = await downloadFailure(assemble(transfer));
    expect(e.code).toBe('cancelled');
    expect(e.message).toBe('transfer xfer-1 cancelled: facegate is stopping');
  });

  it('ends the assembler with the sha256 mismatch of a tampered model', async () => {
    const tampered = Buffer.from(model);
    tampered[500] ^= 0xff;
    const transfer = open();
    const model$ = assemble(transfer);
    for (const chunk of modelChunks(tampered, 'xfer-1', 10_000)) transfer.accept(chunk);
    const e = await downloadFailure(model$);
    expect(e.code).toBe('mismatch');
    expect(e.message).toMatch(/sha256 .* does not match the manifest's .* \(tampered or corrupt\)/);
  });
});

describe('modelChunks', () => {
  it('splits bytes into base64 chunks that add up to them', () => {
    const bytes = randomBytes(25);
    const split = modelChunks(bytes, 't', 10);
    expect(split.map(({ index, total }) => [index, total])).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
    expect(Buffer.concat(split.map((c) => Buffer.from(c.data, 'base64'))).equals(bytes)).toBe(true);
  });
});
