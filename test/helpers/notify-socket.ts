// A systemd-style NOTIFY_SOCKET for tests: a unix datagram socket bound at a path, recording every
// notification (READY=1, WATCHDOG=1, ...) with its arrival time, as systemd's manager would receive them.
import { createRequire } from 'node:module';
import { join } from 'node:path';

interface DgramSocket {
  bind(path: string): void;
  on(event: 'message', listener: (buf: Buffer) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  close(): void;
}

export interface Notification {
  at: number;
  fields: Record<string, string>;
}

export class NotifyListener {
  readonly messages: Notification[] = [];
  readonly path: string;
  private readonly socket: DgramSocket;

  constructor(dir: string) {
    this.path = join(dir, 'notify.sock');
    const { createSocket } = createRequire(import.meta.url)('unix-dgram') as {
      createSocket(type: 'unix_dgram', listener: (buf: Buffer) => void): DgramSocket;
    };
    this.socket = createSocket('unix_dgram', (buf) => {
      const fields = Object.fromEntries(
        buf
          .toString('utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
      );
      this.messages.push({ at: Date.now(), fields });
    });
    this.socket.on('error', (e) => {
      throw e;
    });
    this.socket.bind(this.path);
  }

  /** Notifications carrying `field` (e.g. WATCHDOG) received at or after `since`. */
  count(field: string, since = 0): number {
    return this.messages.filter((m) => m.at >= since && field in m.fields).length;
  }

  /** Resolves once a notification carries `field`; rejects after timeoutMs or when `gone` settles first. */
  async waitFor(field: string, timeoutMs: number, gone?: Promise<unknown>): Promise<Notification> {
    const deadline = Date.now() + timeoutMs;
    let over = false;
    gone?.then(() => {
      over = true;
    });
    for (;;) {
      const found = this.messages.find((m) => field in m.fields);
      if (found) return found;
      if (over) throw new Error(`the process ended before it sent ${field}`);
      if (Date.now() > deadline) throw new Error(`no ${field} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  close(): void {
    this.socket.close();
  }
}
