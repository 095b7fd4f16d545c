// systemd's readiness and watchdog protocol (sd_notify(3)): datagrams such as "READY=1" sent to the unix
// socket named by NOTIFY_SOCKET. Node has no unix datagram socket of its own; the unix-dgram addon sends
// them from this process, so systemd attributes them to the main PID (NotifyAccess=main). Spawning
// `systemd-notify` per message instead is racy: systemd drops a message whose sender exited before it
// looked the sender's unit up, and a lost READY=1 fails the start.
//
// READY=1 goes out once the first frame went through a camera pipeline; WATCHDOG=1 every half watchdog
// period, but only while frames keep going through, so a stalled pipeline stops the pings and systemd
// restarts facegate (WatchdogSec in firmware-scripts/facegate.service).
import { createRequire } from 'node:module';
import type { Logger } from '../util/log.ts';

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, callback?: (err?: Error) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  close(): void;
}

/** Where the datagrams go. */
export interface NotifyTransport {
  send(message: string): void;
  close(): void;
}

export interface ServiceNotifierOptions {
  /** Where send failures are reported (once each kind); they never stop the runtime. */
  log: Logger;
  /** Called once, right after READY=1 was sent. */
  onReady?: () => void;
  now?: () => number;
}

export class ServiceNotifier {
  private readySent = false;
  private stopped = false;
  private lastFrameAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;
  private readonly onReady?: () => void;

  /**
   * The notifier systemd asked for through the environment, or null when facegate is not run as a
   * Type=notify service (no NOTIFY_SOCKET).
   */
  static fromEnv(env: NodeJS.ProcessEnv, opts: ServiceNotifierOptions): ServiceNotifier | null {
    const socket = env.NOTIFY_SOCKET;
    if (!socket) return null;
    if (socket.startsWith('@'))
      throw new Error(
        `NOTIFY_SOCKET ${socket} is an abstract socket; facegate needs a socket path (systemd's is /run/systemd/notify)`,
      );
    // WATCHDOG_PID names the process the watchdog is meant for; another process's setting is not ours.
    const forUs = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === process.pid;
    const watchdogUsec = forUs ? Number(env.WATCHDOG_USEC ?? 0) : 0;
    return new ServiceNotifier(dgramSender(socket, opts.log), watchdogUsec / 1000, opts);
  }

  constructor(
    private readonly transport: NotifyTransport,
    /** systemd's watchdog period (WATCHDOG_USEC), in ms; 0 = no watchdog. */
    readonly watchdogMs: number,
    opts: ServiceNotifierOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.onReady = opts.onReady;
    if (watchdogMs > 0) {
      this.timer = setInterval(() => this.pingIfLive(), watchdogMs / 2);
      this.timer.unref();
    }
  }

  /** A frame went through a camera pipeline: the first one makes the service ready. */
  frame(): void {
    this.lastFrameAt = this.now();
    if (this.readySent || this.stopped) return;
    this.readySent = true;
    this.transport.send('READY=1\nSTATUS=cameras delivering frames');
    this.onReady?.();
  }

  get ready(): boolean {
    return this.readySent;
  }

  /** Tells systemd facegate is shutting down, and closes the socket (it would keep Node running). Once. */
  stopping(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.transport.send('STOPPING=1');
    this.transport.close();
  }

  /** One ping when a frame went through within the last watchdog period. */
  private pingIfLive(): void {
    if (this.now() - this.lastFrameAt < this.watchdogMs) this.transport.send('WATCHDOG=1');
  }
}

function dgramSender(path: string, log: Logger): NotifyTransport {
  // unix-dgram is CommonJS with a native binding; createRequire keeps its load failure a clear error.
  const require = createRequire(import.meta.url);
  let socket: UnixDgramSocket;
  try {
    const { createSocket } = require('unix-dgram') as {
      createSocket(type: 'unix_dgram'): UnixDgramSocket;
    };
    socket = createSocket('unix_dgram');
  } catch (e) {
    throw new Error(
      `NOTIFY_SOCKET is set but the unix-dgram addon does not load (${(e as Error).message}): reinstall the release`,
    );
  }
  const warned = new Set<string>();
  const report = (err: Error) => {
    if (warned.has(err.message)) return;
    warned.add(err.message);
    log.warn(`systemd notification to ${path} failed: ${err.message}`);
  };
  socket.on('error', report);
  return {
    send: (message) => {
      const buf = Buffer.from(message);
      socket.send(buf, 0, buf.length, path, (err) => err && report(err));
    },
    close: () => socket.close(),
  };
}
