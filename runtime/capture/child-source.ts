// One supervisor for every source that is a child process writing frames to stdout.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { CameraConfig } from './config.ts';
import { decodeImage } from './decode.ts';
import { CaptureSource, type FrameStamp } from './source.ts';
import { MjpegSplitter, RawFrameSplitter } from './splitters.ts';

export interface ChildSpec {
  /** Looked up at every spawn, so a binary installed while the source retries is picked up. */
  command: () => string;
  args: readonly string[];
  /** rgb24: packed frames of exactly width×height; mjpeg: concatenated JPEGs. */
  output: 'rgb24' | 'mjpeg';
  /** A clean exit is the end of the stream (a video file played once), not a failure. */
  finite: boolean;
  /** Hand over every frame, pausing stdout while one waits (rgb24 only; see SourceConfig.realtime). */
  lossless: boolean;
  /** Whatever the running program writes to stderr is a problem to report (ffmpeg at -loglevel error). */
  stderrReportsProblems?: boolean;
}

const KILL_TIMEOUT_MS = 2000;
const STDERR_LINES = 10;
/** A running decoder's complaints (a corrupt frame it concealed) are reported at most this often. */
const STDERR_REPORT_INTERVAL_MS = 5_000;

/** SIGTERM, then SIGKILL if the child is still there after KILL_TIMEOUT_MS. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), KILL_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

export class ChildProcessSource extends CaptureSource {
  private child: ChildProcess | undefined;
  /** The failed child still being terminated, if any. */
  private exiting: Promise<void> = Promise.resolve();
  private started = false;
  private watchdog: NodeJS.Timeout | undefined;
  /** Last stderr lines of the current child, for its failure report. */
  private stderrTail: string[] = [];
  private decoding = false;
  private lastStderrReport = 0;
  private unreportedStderr = 0;
  private pendingJpeg: { stamp: FrameStamp; jpeg: Buffer } | undefined;

  constructor(
    config: CameraConfig,
    private readonly spec: ChildSpec,
  ) {
    super(config, spec.lossless);
  }

  async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    this.spawnChild();
  }

  override async stop(): Promise<void> {
    await super.stop();
    clearTimeout(this.watchdog);
    const child = this.child;
    this.child = undefined;
    await Promise.all([child && terminate(child), this.exiting]);
  }

  /**
   * ffmpeg says on stderr when it decodes a damaged frame (and then conceals it or skips it); a camera
   * sending such frames is reported, rate-limited, rather than only in the next failure's report.
   */
  private reportStderr(line: string): void {
    const now = Date.now();
    if (now - this.lastStderrReport < STDERR_REPORT_INTERVAL_MS) {
      this.unreportedStderr++;
      return;
    }
    const more = this.unreportedStderr > 0 ? ` (and ${this.unreportedStderr} more messages)` : '';
    this.report(`stream error: ${line}${more}`);
    this.lastStderrReport = now;
    this.unreportedStderr = 0;
  }

  private spawnChild(): void {
    const command = this.spec.command();
    const child = spawn(command, this.spec.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stderrTail: string[] = [];
    this.child = child;
    this.stderrTail = stderrTail;
    const { width, height } = this.config;
    const splitter =
      this.spec.output === 'rgb24'
        ? new RawFrameSplitter(width * height * 3, (rgb) =>
            this.onFrame(child, this.stamp(), rgb, width, height),
          )
        : new MjpegSplitter(
            (jpeg) => this.onJpeg(child, jpeg),
            (reason) => this.report(`corrupt MJPEG data skipped: ${reason}`),
          );
    // Until the first frame, stderr explains a failure to start, which the failure report carries.
    let streaming = false;
    child.stdout?.on('data', (chunk: Buffer) => {
      if (child !== this.child) return;
      streaming = true;
      splitter.write(chunk);
      if (this.spec.lossless && this.slot.occupied) void this.holdUntilTaken(child);
    });
    if (child.stderr) {
      createInterface({ input: child.stderr }).on('line', (line) => {
        stderrTail.push(line);
        if (stderrTail.length > STDERR_LINES) stderrTail.shift();
        if (child === this.child && streaming && this.spec.stderrReportsProblems) this.reportStderr(line);
      });
    }
    child.on('error', (error) => this.onFailure(child, `cannot run ${command}: ${error.message}`));
    // 'close' rather than 'exit': every byte of stdout has been read by then.
    child.on('close', (code, signal) => {
      if (this.spec.finite && code === 0 && child === this.child) {
        this.child = undefined;
        clearTimeout(this.watchdog);
        this.endOfStream();
      } else this.onFailure(child, `${command} exited with ${signal ?? `code ${code}`}`);
    });
    this.armWatchdog(child);
  }

  private onFrame(child: ChildProcess, stamp: FrameStamp, rgb: Buffer, width: number, height: number): void {
    this.deliver(stamp, rgb, width, height);
    if (child === this.child) this.armWatchdog(child);
  }

  /** JPEG decoding can be slower than the camera: decode one at a time, newest pending JPEG wins. */
  private onJpeg(child: ChildProcess, jpeg: Buffer): void {
    const stamp = this.stamp();
    if (this.decoding) {
      if (this.pendingJpeg) this.dropped();
      this.pendingJpeg = { stamp, jpeg };
      return;
    }
    this.decoding = true;
    void this.decodeFrom(child, { stamp, jpeg });
  }

  private async decodeFrom(child: ChildProcess, first: { stamp: FrameStamp; jpeg: Buffer }): Promise<void> {
    for (let job: typeof first | undefined = first; job && !this.stopped; job = this.pendingJpeg) {
      this.pendingJpeg = undefined;
      try {
        const image = await decodeImage(job.jpeg, this.config.width, this.config.height);
        this.onFrame(child, job.stamp, image.rgb, image.width, image.height);
      } catch (error) {
        this.report(`corrupt JPEG frame ${job.stamp.seq} skipped: ${(error as Error).message}`);
      }
    }
    this.decoding = false;
  }

  /** Lossless mode: stop reading while the consumer has not taken the frames already read. */
  private async holdUntilTaken(child: ChildProcess): Promise<void> {
    if (child.stdout?.isPaused()) return;
    child.stdout?.pause();
    // Waiting on the consumer is not a stall.
    clearTimeout(this.watchdog);
    await this.slot.whenEmpty();
    if (child !== this.child) return;
    child.stdout?.resume();
    this.armWatchdog(child);
  }

  private armWatchdog(child: ChildProcess): void {
    clearTimeout(this.watchdog);
    const ms = this.config.restart.stallTimeoutMs;
    this.watchdog = setTimeout(() => this.onFailure(child, `stalled: no frame for ${ms} ms`), ms);
  }

  private onFailure(child: ChildProcess, reason: string): void {
    if (child !== this.child || this.stopped) return;
    this.child = undefined;
    clearTimeout(this.watchdog);
    const stderr = this.stderrTail.join(' | ');
    const delayMs = this.failed(stderr ? `${reason}; stderr: ${stderr}` : reason);
    const restartAt = Date.now() + delayMs;
    // The old child must be gone first: a camera device or CSI sensor only opens once.
    this.exiting = terminate(child);
    void this.exiting
      .then(() => this.sleep(restartAt - Date.now()))
      .then(() => {
        if (!this.stopped) this.spawnChild();
      });
  }
}
