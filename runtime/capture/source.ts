// What every source shares: the frame slot, stats, events, and waits that stop() cuts short.
import { EventEmitter } from 'node:events';
import { RestartBackoff } from './backoff.ts';
import type { CameraConfig } from './config.ts';
import { FrameSlot } from './slot.ts';
import type { Frame, FrameSource, SourceStats } from './types.ts';

export interface RestartInfo {
  /** Consecutive failures so far, this one included. */
  attempt: number;
  /** How long the source waits before starting again. */
  delayMs: number;
  reason: string;
}

export interface SourceEvents {
  /** A problem the source survives: a failure before a restart, a skipped corrupt frame or image. */
  error: [error: Error];
  restart: [info: RestartInfo];
  /** A finite source (video file or image pass without loop) ran out; next() returns null once drained. */
  eof: [];
}

/** Stamp taken when a frame is read, so seq and capturedAt do not include decode time. */
export interface FrameStamp {
  seq: number;
  capturedAt: number;
}

export abstract class CaptureSource extends EventEmitter<SourceEvents> implements FrameSource {
  readonly camera: string;
  protected readonly slot: FrameSlot;
  protected readonly backoff: RestartBackoff;
  protected stopped = false;
  private readonly counters: SourceStats = { framesIn: 0, framesDropped: 0, restarts: 0 };
  private readonly sleepers = new Set<() => void>();

  constructor(
    protected readonly config: CameraConfig,
    keepAll: boolean,
  ) {
    super();
    this.camera = config.id;
    this.slot = new FrameSlot(keepAll);
    this.backoff = new RestartBackoff(config.restart);
  }

  abstract start(): Promise<void>;

  next(): Promise<Frame | null> {
    return this.slot.take();
  }

  stats(): SourceStats {
    return { ...this.counters };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.slot.close(true);
    for (const wake of this.sleepers) wake();
  }

  protected stamp(): FrameStamp {
    return { seq: this.counters.framesIn++, capturedAt: Date.now() };
  }

  protected deliver(stamp: FrameStamp, rgb: Buffer, width: number, height: number): void {
    this.backoff.frame();
    this.counters.framesDropped += this.slot.put({ camera: this.camera, ...stamp, width, height, rgb });
  }

  protected dropped(): void {
    this.counters.framesDropped += 1;
  }

  protected report(message: string): void {
    this.counters.lastError = message;
    // EventEmitter throws an 'error' nobody listens to; a dying source must never take the process down.
    if (this.listenerCount('error') > 0) this.emit('error', new Error(`camera ${this.camera}: ${message}`));
  }

  /** Reports a failure and returns how long to wait before trying again. */
  protected failed(reason: string): number {
    this.report(reason);
    const { attempt, delayMs } = this.backoff.failure();
    this.counters.restarts += 1;
    this.emit('restart', { attempt, delayMs, reason });
    return delayMs;
  }

  protected endOfStream(): void {
    this.emit('eof');
    this.slot.close(false);
  }

  /** Resolves after ms, or at once when the source stops. */
  protected sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}
