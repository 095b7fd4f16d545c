// A model sent over MQTT in chunks: model/update announces the transfer (id, number of chunks), then each
// model/chunk message hands one chunk over. Each chunk is checked against the announced transfer as it
// arrives, so a malformed or foreign one is answered with the reason while the transfer goes on. The
// transfer is the async iterable the updater assembles the model from (collectChunks(): any order,
// redeliveries, the size limit, sha256). It gives up when no new chunk arrives within idleTimeoutMs or
// when cancelled, and from then on holds no chunk.
import { checkChunk, chunkError, DownloadError, type ModelChunk } from './download.ts';

/** The answer to one accepted chunk. */
export interface ChunkReceipt {
  id: string;
  index: number;
  /** Distinct chunks received so far. */
  received: number;
  total: number;
  /** This index had arrived before (an MQTT redelivery or a resend); it is not counted again. */
  duplicate: boolean;
}

export interface ChunkTransferOptions {
  id: string;
  /** Number of chunks. */
  total: number;
  /** Abandon the transfer when no new chunk arrived for this long. */
  idleTimeoutMs: number;
}

type Waiter = { resolve(result: IteratorResult<ModelChunk>): void; reject(error: Error): void };

export class ChunkTransfer implements AsyncIterable<ModelChunk> {
  readonly id: string;
  readonly total: number;
  private readonly idleTimeoutMs: number;
  /** 1 for each index received. */
  private readonly seen: Uint8Array;
  private count = 0;
  /** Accepted chunks the reader has not taken yet. */
  private queue: ModelChunk[] = [];
  private waiter?: Waiter;
  /** Set once the transfer is over: `error` when it failed, absent when it was closed. */
  private ended?: { error?: Error };
  private timer?: NodeJS.Timeout;

  constructor(opts: ChunkTransferOptions) {
    if (!Number.isInteger(opts.total) || opts.total < 1)
      throw new RangeError(`a transfer needs at least one chunk, not ${opts.total}`);
    this.id = opts.id;
    this.total = opts.total;
    this.idleTimeoutMs = opts.idleTimeoutMs;
    this.seen = new Uint8Array(opts.total);
    this.armIdleTimer();
  }

  /** Distinct chunks received so far. */
  get received(): number {
    return this.count;
  }

  /** Checks `message` and queues it for assembly; throws a DownloadError with the reason otherwise. */
  accept(message: unknown): ChunkReceipt {
    const chunk = checkChunk(message);
    const { id, index, total } = chunk;
    if (id !== this.id) throw chunkError(`${index} belongs to transfer ${id}, not ${this.id}`);
    if (total !== this.total)
      throw chunkError(`${index} of ${id} says ${total} chunks, the transfer has ${this.total}`);
    const duplicate = this.seen[index] === 1;
    if (this.ended) {
      // A late redelivery of a chunk already in changes nothing; anything else comes too late.
      if (duplicate && !this.ended.error) return this.receipt(index, true);
      throw new DownloadError(
        'chunk',
        `transfer ${id} is over${this.ended.error ? `: ${this.ended.error.message}` : ''}`,
      );
    }
    if (!duplicate) {
      this.seen[index] = 1;
      this.count++;
      this.armIdleTimer();
    }
    // Duplicates go on too: the assembler ignores an identical one and refuses one with other contents.
    if (this.waiter) {
      this.waiter.resolve({ value: chunk, done: false });
      this.waiter = undefined;
    } else {
      this.queue.push(chunk);
    }
    return this.receipt(index, duplicate);
  }

  /** Ends the transfer with `reason`: the reader gets it as an error, later chunks are refused. */
  cancel(reason: string): void {
    this.finish({ error: new DownloadError('cancelled', `transfer ${this.id} cancelled: ${reason}`) });
  }

  /** Ends the transfer without an error (the reader has what it needs, or gave up). */
  close(): void {
    this.finish({});
  }

  [Symbol.asyncIterator](): AsyncIterator<ModelChunk> {
    return {
      next: () => this.next(),
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }

  private next(): Promise<IteratorResult<ModelChunk>> {
    const chunk = this.queue.shift();
    if (chunk) return Promise.resolve({ value: chunk, done: false });
    if (this.ended?.error) return Promise.reject(this.ended.error);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private finish(how: { error?: Error }): void {
    if (this.ended) return;
    this.ended = how;
    clearTimeout(this.timer);
    // Nothing is kept for a transfer that is over: what the reader did not take is dropped.
    this.queue = [];
    const waiter = this.waiter;
    this.waiter = undefined;
    if (how.error) waiter?.reject(how.error);
    else waiter?.resolve({ value: undefined, done: true });
  }

  /** (Re)starts the wait for the next new chunk; none once every chunk is in. */
  private armIdleTimer(): void {
    clearTimeout(this.timer);
    if (this.count === this.total) return;
    this.timer = setTimeout(() => {
      this.finish({
        error: new DownloadError(
          'timeout',
          `transfer ${this.id}: no new chunk for ${this.idleTimeoutMs / 1000} s, ${this.count} of ${this.total} received; abandoned`,
        ),
      });
    }, this.idleTimeoutMs);
    this.timer.unref();
  }

  private receipt(index: number, duplicate: boolean): ChunkReceipt {
    return { id: this.id, index, received: this.count, total: this.total, duplicate };
  }
}

/** The sender's side: `bytes` as the model/chunk messages of transfer `id`, `chunkBytes` bytes each. */
export function modelChunks(bytes: Uint8Array, id: string, chunkBytes: number): ModelChunk[] {
  const total = Math.max(1, Math.ceil(bytes.length / chunkBytes));
  return Array.from({ length: total }, (_, index) => ({
    id,
    index,
    total,
    data: Buffer.from(bytes.subarray(index * chunkBytes, (index + 1) * chunkBytes)).toString('base64'),
  }));
}
