// Runs a real mosquitto for integration tests: loopback only, generated config, optional password file
// (mosquitto_passwd), optional TLS listener with a CA and server certificate made by openssl at test
// time, optional persistence so sessions survive a restart. Ports are chosen once, so a broker can be
// killed and started again on the same address.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const MOSQUITTO = '/usr/sbin/mosquitto';
const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';

export interface MosquittoOptions {
  /** Require these credentials (password_file, no anonymous access). */
  auth?: { username: string; password: string };
  /** Add a TLS listener with a server certificate for 127.0.0.1/localhost signed by a fresh CA. */
  tls?: boolean;
  /** Save sessions and queued messages to disk every second and on exit. */
  persistence?: boolean;
  /** More accounts in the password file (with or without `auth`); anonymous access is then off. */
  users?: { username: string; password: string }[];
  /** The text of an acl_file (mosquitto.conf(5)): who may read and write which topics. */
  acl?: string;
  /**
   * TLS listener only: demand a client certificate signed by the test CA and take its CN as the user
   * name (require_certificate, use_identity_as_username); `clientCertificate()` issues them.
   */
  requireClientCertificate?: boolean;
  /**
   * mosquitto's `max_queued_messages`: QoS 1 and 2 messages held per client beyond the 20 in flight
   * (1000 by default); more are dropped. An operator that hears from more devices at once needs more.
   */
  maxQueuedMessages?: number;
}

export interface Mosquitto {
  readonly dir: string;
  readonly port: number;
  readonly url: string;
  /** Set when started with `tls`. */
  readonly tlsPort?: number;
  readonly tlsUrl?: string;
  readonly caFile?: string;
  /** mosquitto's persistence file, when started with `persistence`. */
  readonly dbFile?: string;
  /** A client certificate and key (PEM files) for `commonName`, signed by the test CA (needs `tls`). */
  clientCertificate(commonName: string): Promise<{ cert: string; key: string }>;
  readonly running: boolean;
  /** Starts (again) with the same ports and configuration; resolves once the port accepts connections. */
  start(): Promise<void>;
  /** SIGTERM, which lets mosquitto save its persistence file. */
  stop(): Promise<void>;
  /** SIGKILL: a crash, nothing saved. */
  kill(): Promise<void>;
  /** Stops the broker and deletes its directory. */
  dispose(): Promise<void>;
  /** Everything mosquitto logged, for failure messages. */
  log(): string;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** openssl req options for a new P-256 key, unencrypted. */
const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A test CA and a server certificate for localhost, signed by it, in `dir`. */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = join(dir, 'ca.crt');
  await run('openssl', [
    'req',
    '-x509',
    ...NEW_EC_KEY,
    '-keyout',
    join(dir, 'ca.key'),
    '-out',
    ca,
    '-days',
    '2',
    '-subj',
    '/CN=facegate test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const server = await issueCertificate(
    dir,
    'server',
    'localhost',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  return { ca, ...server };
}

/** A certificate for `commonName` with the given extensions (an openssl extfile), signed by the CA
 * makeCertificates() made in `dir`; its files are named after `name`. */
async function issueCertificate(
  dir: string,
  name: string,
  commonName: string,
  extensions: string,
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  await run('openssl', ['req', ...NEW_EC_KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${commonName}`]);
  await writeFile(ext, extensions);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    join(dir, 'ca.crt'),
    '-CAkey',
    join(dir, 'ca.key'),
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    '2',
    '-extfile',
    ext,
  ]);
  return { cert, key };
}

/** Prepares configuration, ports and files; call start(). */
export async function createMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'facegate-mosquitto-'));
  const port = await freePort();
  const accounts = [...(opts.auth ? [opts.auth] : []), ...(opts.users ?? [])];
  const lines = [
    'per_listener_settings false',
    `allow_anonymous ${accounts.length > 0 || opts.requireClientCertificate ? 'false' : 'true'}`,
    // As root, mosquitto would switch to the mosquitto user, which cannot read files made by the tests.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
  ];
  if (accounts.length > 0) {
    const passwordFile = join(dir, 'passwd');
    for (const [i, { username, password }] of accounts.entries())
      await run(MOSQUITTO_PASSWD, ['-b', ...(i === 0 ? ['-c'] : []), passwordFile, username, password]);
    lines.push(`password_file ${passwordFile}`);
  }
  if (opts.acl !== undefined) {
    const aclFile = join(dir, 'acl');
    await writeFile(aclFile, opts.acl);
    lines.push(`acl_file ${aclFile}`);
  }
  let dbFile: string | undefined;
  if (opts.persistence) {
    dbFile = join(dir, 'mosquitto.db');
    lines.push('persistence true', `persistence_location ${dir}/`, 'autosave_interval 1');
  } else {
    lines.push('persistence false');
  }
  if (opts.maxQueuedMessages !== undefined) lines.push(`max_queued_messages ${opts.maxQueuedMessages}`);
  lines.push(`listener ${port} 127.0.0.1`);
  let tlsPort: number | undefined;
  let caFile: string | undefined;
  if (opts.tls) {
    tlsPort = await freePort();
    const files = await makeCertificates(dir);
    caFile = files.ca;
    lines.push(
      `listener ${tlsPort} 127.0.0.1`,
      `cafile ${files.ca}`,
      `certfile ${files.cert}`,
      `keyfile ${files.key}`,
      ...(opts.requireClientCertificate ? ['require_certificate true', 'use_identity_as_username true'] : []),
    );
  }
  const confFile = join(dir, 'mosquitto.conf');
  await writeFile(confFile, `${lines.join('\n')}\n`);

  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  async function signal(sig: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (!proc) return;
    proc.kill(sig);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  const broker: Mosquitto = {
    dir,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    tlsPort,
    tlsUrl: tlsPort ? `mqtts://127.0.0.1:${tlsPort}` : undefined,
    caFile,
    dbFile,
    async clientCertificate(commonName: string) {
      if (!caFile) throw new Error('client certificates need a broker started with tls');
      return issueCertificate(
        dir,
        commonName,
        commonName,
        'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n',
      );
    },
    get running() {
      return child !== null;
    },
    async start() {
      if (child) throw new Error('mosquitto is already running');
      const proc = spawn(MOSQUITTO, ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      proc.stdout.on('data', (d) => {
        output += d;
      });
      proc.stderr.on('data', (d) => {
        output += d;
      });
      exited = new Promise((resolve) =>
        proc.once('exit', () => {
          if (child === proc) child = null;
          resolve();
        }),
      );
      const deadline = Date.now() + 10_000;
      for (const p of [port, tlsPort].filter((x): x is number => x !== undefined)) {
        while (!(await portAccepts(p))) {
          if (child !== proc || Date.now() > deadline) {
            await signal('SIGKILL');
            throw new Error(`mosquitto did not start listening on ${p}:\n${output}`);
          }
          await new Promise((r) => setTimeout(r, 25));
        }
      }
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async dispose() {
      await signal('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
    log: () => output,
  };
  return broker;
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const broker = await createMosquitto(opts);
  try {
    await broker.start();
  } catch (err) {
    await broker.dispose();
    throw err;
  }
  return broker;
}
