// In-process MQTT broker for demos and single-box installs where no broker is configured. Nothing is
// persisted: retained messages and sessions live as long as the process. It runs in the device's own
// process, so a packet larger than `maxPacketBytes` ends its connection as its header arrives instead of
// being read into the device's memory; with `credentials`, every client must present them.

import { timingSafeEqual } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import { defaultLogger, type Logger } from '../util/log.ts';
import { limitPacketSize } from './packet-limit.ts';

export interface InProcessBrokerOptions {
  /** Loopback by default so the broker is not reachable from the network. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** The user name and password every client must give; anyone may connect without. */
  credentials?: { username: string; password: string };
  /** Largest packet a client may send. */
  maxPacketBytes?: number;
  /** Where refused clients are reported, at warn. */
  log?: Logger;
}

export interface InProcessBroker {
  readonly host: string;
  readonly port: number;
  /** `mqtt://<host>:<port>` */
  readonly url: string;
  stop(): Promise<void>;
}

export async function startInProcessBroker(opts: InProcessBrokerOptions = {}): Promise<InProcessBroker> {
  const host = opts.host ?? '127.0.0.1';
  const { credentials, maxPacketBytes, log = defaultLogger.child('broker') } = opts;
  const aedes = await Aedes.createBroker(
    credentials
      ? {
          authenticate: (client, username, password, done) => {
            const ok =
              username === credentials.username &&
              password !== undefined &&
              sameBytes(password, Buffer.from(credentials.password));
            if (!ok) log.warn(`refused client ${client.id}: wrong user name or password`);
            done(null, ok);
          },
        }
      : {},
  );
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (maxPacketBytes !== undefined)
      limitPacketSize(socket, {
        maxPacketBytes,
        onOversize: (bytes) =>
          log.warn(
            `closed a client connection that announced a packet of ${bytes} bytes (limit ${maxPacketBytes})`,
          ),
      });
    aedes.handle(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw err;
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (opts.port ?? 0);
  let stopped: Promise<void> | null = null;
  return {
    host,
    port,
    url: `mqtt://${host}:${port}`,
    stop() {
      stopped ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        // Clients that never completed CONNECT are not known to aedes; end them here.
        for (const socket of sockets) socket.destroy();
        await closed;
      })();
      return stopped;
    },
  };
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
