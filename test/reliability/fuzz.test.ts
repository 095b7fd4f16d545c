// 10,000 hostile requests per run against the real device (App on a real mosquitto, real gallery, config
// file and model slots), several in flight at once but never two answered on the same topic, so each
// response is the answer to one case: nothing crashes, every request is answered once, every refusal
// names its problem (never a raw TypeError), state-changing commands change nothing, and RSS stays
// bounded. Then mutated config files and model manifests go through the loaders. FACEGATE_FUZZ_SEED and FACEGATE_FUZZ_CASES reproduce or extend a run.
//
// The device requires signed state-changing commands with a test operator key: the fuzzed requests are
// unsigned (or carry forged signatures), so a mutation that happens to be a valid request is still refused
// at the signature step, after the size, JSON, schema and identifier checks it is meant to exercise. To fuzz
// with signed requests instead, sign `payload` with OPERATOR in send().
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../runtime/config/index.ts';
import { isPrivileged, isRequestName } from '../../runtime/control/api.ts';
import { MAX_QUEUED_REQUESTS } from '../../runtime/control/router.ts';
import { signCommand } from '../../runtime/control/signing.ts';
import { loadModel, ManifestError, manifestPathFor } from '../../runtime/models/manifest.ts';
import { buildTopics } from '../../runtime/mqtt/topics.ts';
import { seededRandom } from '../../runtime/util/random.ts';
import { keyIdOf } from '../../runtime/util/signing.ts';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.ts';
import { FACES_DIR, MODELS_DIR } from '../helpers/paths.ts';
import { DEVICE, LIN, type RunningApp, startApp } from '../integration/app/harness.ts';
import { Subscriber } from '../integration/mqtt/support.ts';
import { type FuzzCase, fuzzCases, hostileImages } from './fuzz/generate.ts';

const SEED = Number(process.env.FACEGATE_FUZZ_SEED ?? 20261206);
const CASES = Number(process.env.FACEGATE_FUZZ_CASES ?? 10_000);
const FILE_CASES = 1000;
/**
 * Requests sent without waiting for the answers before them. Below the router's MAX_QUEUED_REQUESTS per
 * lane, so no request is refused as busy because of the test's own pace (judge() fails any that is).
 */
const IN_FLIGHT = MAX_QUEUED_REQUESTS / 2;
/** A refusal that leaked an internal error instead of naming the problem. */
const RAW_ERROR =
  /TypeError|ReferenceError|Cannot read prop|is not a function|undefined is not|Maximum call stack|\[object Object\]/;

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const OPERATOR = {
  privateKey,
  keyId: keyIdOf(publicKey),
  pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
};

let broker: Mosquitto;
let device: RunningApp;
let operator: Subscriber;
const dir = mkdtempSync(join(tmpdir(), 'facegate-fuzz-'));
const topics = buildTopics({ baseTopic: 'facegate', deviceId: DEVICE });

beforeAll(async () => {
  broker = await startMosquitto();
  device = await startApp(dir, broker.url, {
    cameras: [
      {
        id: 'door',
        source: {
          kind: 'images',
          path: join(FACES_DIR, 'face_recognition_examples', 'knn_examples', 'test'),
          loop: true,
        },
        width: 640,
        height: 480,
        fps: 1,
        restart: { initialDelayMs: 200, maxDelayMs: 1000, stallTimeoutMs: 10000, healthyAfterMs: 5000 },
      },
    ],
    control: { requireSignedCommands: true, commandPublicKeys: [OPERATOR.pem] },
  });
  operator = await Subscriber.connect(broker.url, [`facegate/${DEVICE}/response/#`]);
  requests = new InFlight(operator.client);
});

afterAll(async () => {
  await operator?.end();
  await device?.app.stop();
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Requests in flight, at most one per response topic, so each answer belongs to exactly one request.
 * A message on a response topic nobody waits on (a second answer, or one on the wrong topic) is kept in
 * `strays`, which must stay empty.
 */
class InFlight {
  private readonly waiting = new Map<string, (payload: Buffer) => void>();
  readonly strays: string[] = [];

  constructor(private readonly client: Subscriber['client']) {
    client.on('message', (topic, payload) => {
      const resolve = this.waiting.get(topic);
      if (!resolve) {
        this.strays.push(`${topic}: ${payload.toString().slice(0, 200)}`);
        return;
      }
      this.waiting.delete(topic);
      resolve(payload);
    });
  }

  /** Whether a request answered on `command`'s response topic is still waiting for its answer. */
  busy(command: string): boolean {
    return this.waiting.has(topics.response(command));
  }

  /** Publishes one request and waits for its answer on the command's response topic. */
  async send(command: string, payload: Buffer): Promise<{ topic: string; body: Record<string, unknown> }> {
    const topic = topics.response(command);
    if (this.waiting.has(topic)) throw new Error(`a ${command} request is already in flight`);
    const answer = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(topic);
        reject(new Error(`no response to ${command} within 15 s`));
      }, 15_000);
      this.waiting.set(topic, (body) => {
        clearTimeout(timer);
        resolve(body);
      });
    });
    await this.client.publishAsync(topics.request(command), payload, { qos: 1 });
    return { topic, body: JSON.parse((await answer).toString()) };
  }
}

let requests: InFlight;

function send(command: string, payload: Buffer) {
  return requests.send(command, payload);
}

async function signed(command: string, body: object): Promise<Record<string, unknown>> {
  const request = signCommand(body, OPERATOR.privateKey, OPERATOR.keyId, topics.request(command));
  return (await send(command, Buffer.from(JSON.stringify(request)))).body;
}

/** What a request must never change: the config file, the people, the models. */
async function deviceState() {
  const faces = (await send('face/list', Buffer.from('{}'))).body;
  const models = (await send('model/status', Buffer.from('{}'))).body;
  return { config: readFileSync(device.file, 'utf8'), faces, models };
}

describe('fuzzing the control plane', () => {
  it(`answers ${CASES} hostile requests with errors naming the problem and changes nothing`, {
    timeout: 3_600_000,
  }, async () => {
    const enrolled = await signed('face/enroll', {
      name: 'lin',
      images: [readFileSync(LIN).toString('base64')],
    });
    expect(enrolled).toMatchObject({ status: 'ok' });
    const before = await deviceState();
    const images = await hostileImages(readFileSync(LIN));
    const rssStart = process.memoryUsage().rss;
    let peakRss = rssStart;
    const failures: string[] = [];
    const kinds = new Map<string, number>();
    let n = 0;
    let acceptedReadOnly = 0;
    const started = Date.now();
    const judged = (c: IndexedCase, topic: string, body: Record<string, unknown>) => {
      const problem = judge(c, topic, body);
      if (problem === 'read-only ok') acceptedReadOnly++;
      else if (problem && failures.length < 20)
        failures.push(`case ${c.index} (${c.kind}, ${c.command}): ${problem}`);
      kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
      if (++n % 1000 === 0) {
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
        operator.messages.length = 0;
        console.log(
          `[fuzz] ${n}/${CASES} cases, ${((Date.now() - started) / 1000).toFixed(0)} s, RSS ${(peakRss / 2 ** 20).toFixed(0)} MB`,
        );
      }
    };
    // Up to IN_FLIGHT requests at once, one per response topic; cases whose topic is taken wait in `ready`
    // (generation order is kept per topic, so a chunk flood still arrives in order).
    const cases = indexed(fuzzCases(SEED, CASES, images));
    const ready: IndexedCase[] = [];
    const running = new Set<Promise<void>>();
    for (let next = cases.next(); !next.done || ready.length > 0 || running.size > 0; ) {
      while (!next.done && ready.length < 4 * IN_FLIGHT) {
        ready.push(next.value);
        next = cases.next();
      }
      for (let i = 0; i < ready.length && running.size < IN_FLIGHT; ) {
        const c = ready[i];
        if (requests.busy(c.command)) {
          i++;
          continue;
        }
        ready.splice(i, 1);
        const run: Promise<void> = send(c.command, c.payload)
          .then(({ topic, body }) => judged(c, topic, body))
          .finally(() => running.delete(run));
        running.add(run);
      }
      if (running.size > 0) await Promise.race(running);
    }
    const after = await deviceState();
    const health = (await send('health', Buffer.from('{}'))).body;
    console.log(
      `[fuzz] seed ${SEED}: ${n} cases, ${failures.length} failures, ${acceptedReadOnly} valid read-only requests, ` +
        `RSS ${(rssStart / 2 ** 20).toFixed(0)} -> peak ${(peakRss / 2 ** 20).toFixed(0)} MB; ` +
        `kinds ${JSON.stringify(Object.fromEntries(kinds))}`,
    );
    expect(failures).toEqual([]);
    expect(requests.strays).toEqual([]);
    expect(after).toEqual(before);
    expect(health).toMatchObject({ status: 'ok' });
    expect(n).toBe(CASES);
    // The device and the test share this process: hostile input may cost working memory, not a leak per request.
    expect(peakRss - rssStart).toBeLessThan(512 * 2 ** 20);
  });
});

type IndexedCase = FuzzCase & { index: number };

function* indexed(cases: Iterable<FuzzCase>): Generator<IndexedCase, void> {
  let index = 0;
  for (const c of cases) yield { ...c, index: index++ };
}

/** Why a response is wrong for the case, 'read-only ok' for an accepted harmless request, or null. */
function judge(c: FuzzCase, topic: string, body: Record<string, unknown>): string | null {
  if (!topic.endsWith(`/response/${c.command}`)) return `answered on ${topic}`;
  if (body.status === 'ok') {
    const readOnly = isRequestName(c.command) && !isPrivileged(c.command);
    return readOnly
      ? 'read-only ok'
      : `a state-changing request was accepted: ${JSON.stringify(body).slice(0, 200)}`;
  }
  if (body.status !== 'error' || typeof body.error !== 'string' || body.error.length < 8)
    return `not an error naming a problem: ${JSON.stringify(body).slice(0, 200)}`;
  if (RAW_ERROR.test(body.error)) return `internal error leaked: ${body.error.slice(0, 200)}`;
  if (body.error.startsWith('busy:')) return `refused as busy, never checked: ${body.error}`;
  return null;
}

/** Byte-level and structural mutations of a text file. */
function mutateText(text: string, random: () => number): string {
  const at = Math.floor(random() * text.length);
  switch (Math.floor(random() * 5)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return text.slice(0, at) + String.fromCharCode(Math.floor(random() * 256)) + text.slice(at + 1);
    case 2:
      return text.slice(0, at) + text.slice(at + Math.floor(random() * 40));
    case 3:
      return `${text.slice(0, at)}\n  - [}{\n${text.slice(at)}`;
    default:
      return text.slice(0, at) + text.slice(at, at + 30).repeat(3) + text.slice(at + 30);
  }
}

describe('fuzzing configuration files and model manifests', () => {
  const files = mkdtempSync(join(tmpdir(), 'facegate-fuzz-files-'));
  afterAll(() => rmSync(files, { recursive: true, force: true }));

  it('loads a mutated config file or refuses it with a ConfigError', () => {
    const random = seededRandom(SEED);
    const base = stringify(parse(readFileSync(device.file, 'utf8')));
    const file = join(files, 'config.yaml');
    const leaks: string[] = [];
    let refused = 0;
    for (let i = 0; i < FILE_CASES; i++) {
      writeFileSync(file, mutateText(base, random));
      try {
        loadConfig({ file, env: {} });
      } catch (e) {
        refused++;
        if (!(e instanceof ConfigError) || RAW_ERROR.test((e as Error).message))
          leaks.push(`case ${i}: ${(e as Error).name}: ${(e as Error).message.slice(0, 200)}`);
      }
    }
    console.log(
      `[fuzz] ${FILE_CASES} mutated config files: ${refused} refused, ${leaks.length} unclear errors`,
    );
    expect(leaks.slice(0, 10)).toEqual([]);
  });

  it('refuses every mutated model manifest with a ManifestError, or loads an unchanged model', () => {
    const random = seededRandom(SEED + 1);
    const source = manifestPathFor(MODELS_DIR, 'blazeface', 'int8');
    const text = readFileSync(source, 'utf8');
    const model = loadModel(source);
    const manifest = join(files, 'blazeface.int8.json');
    writeFileSync(join(files, model.manifest.file), model.onnx);
    const leaks: string[] = [];
    for (let i = 0; i < FILE_CASES; i++) {
      writeFileSync(manifest, mutateText(text, random));
      try {
        const loaded = loadModel(manifest);
        if (!Buffer.from(loaded.onnx).equals(Buffer.from(model.onnx)))
          leaks.push(`case ${i}: loaded different bytes`);
      } catch (e) {
        if (!(e instanceof ManifestError) || RAW_ERROR.test((e as Error).message))
          leaks.push(`case ${i}: ${(e as Error).name}: ${(e as Error).message.slice(0, 200)}`);
      }
    }
    console.log(`[fuzz] ${FILE_CASES} mutated manifests: ${leaks.length} unclear errors`);
    expect(leaks.slice(0, 10)).toEqual([]);
  });
});
