// A device as firmware-scripts/provision.sh sets one up, for the security tests: the operator's key made
// and installed with `facegate keys`, a config file like the one provision.sh writes, and
// `node bin/facegate.js run --config FILE` as a child process (what facegate.service runs), plus MQTT
// clients that speak the request/response API, signed or not.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { IClientOptions } from 'mqtt';
import { signCommand } from '../../../runtime/control/signing.ts';
import { buildTopics } from '../../../runtime/mqtt/topics.ts';
import { keyIdOf } from '../../../runtime/util/signing.ts';
import { Subscriber, waitUntil } from '../mqtt/support.ts';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FACEGATE = join(ROOT, 'bin', 'facegate.js');
export const DEVICE_ID = 'front-door';
export const topics = buildTopics({ baseTopic: 'facegate', deviceId: DEVICE_ID });

/** `facegate <args>` as an operator runs it; resolves with its standard output. */
export async function facegate(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [FACEGATE, ...args], { cwd: ROOT });
  return stdout;
}

/** The operator's key pair, made by `facegate keys generate` and installed by `facegate keys add`. */
export async function provisionOperatorKey(
  dir: string,
  keysFile: string,
): Promise<{ privateKeyPem: string }> {
  await facegate('keys', 'generate', '--out', join(dir, 'operator'));
  await facegate('keys', 'add', join(dir, 'operator.pub'), '--keys-file', keysFile);
  return { privateKeyPem: readFileSync(join(dir, 'operator.key'), 'utf8') };
}

export interface DeviceProcess {
  child: ChildProcess;
  /** Everything it wrote to stderr (its log). */
  log(): string;
  /** Resident set size now, bytes, from /proc. */
  rss(): number;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Writes `config` as YAML-compatible JSON and starts `facegate run --config FILE`. */
export function startDeviceProcess(configFile: string, config: object): DeviceProcess {
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FACEGATE_')));
  const child = spawn(process.execPath, [FACEGATE, 'run', '--config', configFile], {
    cwd: ROOT,
    env: { ...env, MALLOC_ARENA_MAX: '2' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    log: () => stderr,
    rss: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
    },
    exited,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export type Response = {
  status: 'ok' | 'error';
  data?: Record<string, unknown>;
  error?: string;
  transaction?: string;
};

/** Someone on the broker: sends requests (signed when it has a key) and reads the device's responses. */
export class BrokerClient {
  private sent = 0;

  private constructor(
    readonly sub: Subscriber,
    private readonly name: string,
    private readonly privateKeyPem?: string,
  ) {}

  static async connect(
    url: string,
    name: string,
    privateKeyPem?: string,
    opts: IClientOptions = {},
  ): Promise<BrokerClient> {
    const sub = await Subscriber.connect(url, [`facegate/${DEVICE_ID}/response/#`], {
      protocolVersion: 5,
      ...opts,
    });
    return new BrokerClient(sub, name, privateKeyPem);
  }

  /** Publishes `body` as `command` (signed with its key unless `unsigned`) and waits for the answer. */
  async ask(
    command: string,
    body: object = {},
    opts: { unsigned?: boolean; timeoutMs?: number; key?: string } = {},
  ): Promise<Response> {
    const transaction = `${this.name}-${++this.sent}`;
    await this.publish(command, { ...body, transaction }, opts);
    return this.answer(command, transaction, opts.timeoutMs);
  }

  async publish(
    command: string,
    body: object,
    opts: { unsigned?: boolean; key?: string } = {},
  ): Promise<void> {
    const topic = topics.request(command);
    const key = opts.key ?? this.privateKeyPem;
    const payload = key && !opts.unsigned ? signCommand(body, key, keyIdOf(key), topic) : body;
    await this.sub.client.publishAsync(topic, JSON.stringify(payload), { qos: 1 });
  }

  async answer(command: string, transaction: string, timeoutMs = 30_000): Promise<Response> {
    const find = () =>
      this.sub
        .on(topics.response(command))
        .map((m) => JSON.parse(m.payload) as Response)
        .find((r) => r.transaction === transaction);
    await waitUntil(`the answer to ${command} ${transaction}`, () => find() !== undefined, timeoutMs);
    return find() as Response;
  }

  end(): Promise<void> {
    return this.sub.end();
  }
}
