// The hand-over point between a source and its consumer.
import type { Frame } from './types.ts';

/**
 * Newest-frame-wins by default: one slot, a new frame overwrites an untaken one, so a slow consumer
 * gets fresh frames and memory stays flat. With keepAll every frame is queued instead; the producer
 * must then hold back while the slot is `occupied` (see whenEmpty), which bounds the queue to what
 * one read produced.
 */
export class FrameSlot {
  private readonly queue: Frame[] = [];
  private readonly takers: ((frame: Frame | null) => void)[] = [];
  private emptyWaiters: (() => void)[] = [];
  private closed = false;

  constructor(private readonly keepAll = false) {}

  /** Offers a frame; returns how many untaken frames it overwrote (0 or 1). */
  put(frame: Frame): number {
    if (this.closed) return 0;
    const taker = this.takers.shift();
    if (taker) {
      taker(frame);
      return 0;
    }
    if (this.keepAll || this.queue.length === 0) {
      this.queue.push(frame);
      return 0;
    }
    this.queue[0] = frame;
    return 1;
  }

  get occupied(): boolean {
    return this.queue.length > 0;
  }

  /** The next frame, waiting for one if needed; null once closed and drained. */
  take(): Promise<Frame | null> {
    const frame = this.queue.shift();
    if (frame) {
      if (this.queue.length === 0) this.notifyEmpty();
      return Promise.resolve(frame);
    }
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => this.takers.push(resolve));
  }

  /** Resolves once every queued frame has been taken, or the slot is closed. */
  whenEmpty(): Promise<void> {
    if (!this.occupied || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  /** Ends the stream. With discard the queued frames go too; otherwise they are still handed out. */
  close(discard: boolean): void {
    this.closed = true;
    if (discard) this.queue.length = 0;
    for (const taker of this.takers.splice(0)) taker(null);
    this.notifyEmpty();
  }

  private notifyEmpty(): void {
    const waiters = this.emptyWaiters;
    this.emptyWaiters = [];
    for (const wake of waiters) wake();
  }
}
