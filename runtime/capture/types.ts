// The contract between camera sources and the rest of the pipeline.

/** One decoded video frame, packed RGB (3 bytes per pixel, row-major, no padding). */
export interface Frame {
  /** Camera id from config. */
  camera: string;
  /** Monotonic sequence number per source, counting from 0 at source start. */
  seq: number;
  /** Capture time: wall clock in ms since epoch (Date.now()) when the frame was read. */
  capturedAt: number;
  width: number;
  height: number;
  rgb: Buffer;
}

export interface SourceStats {
  framesIn: number;
  /** Frames overwritten before the consumer took them (newest-frame-wins). */
  framesDropped: number;
  restarts: number;
  lastError?: string;
}

export interface FrameSource {
  readonly camera: string;
  start(): Promise<void>;
  /** Resolves with the newest frame not yet taken, waiting for one if needed; null once stopped. */
  next(): Promise<Frame | null>;
  stop(): Promise<void>;
  stats(): SourceStats;
}
