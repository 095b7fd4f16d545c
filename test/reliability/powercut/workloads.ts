// The durable operations the power-cut checker traces, each with what must hold after a cut:
//   node --import tsx workloads.ts <workload> setup|run <root>
// `setup` builds the starting state (not traced: it is on disk before the cut can happen); `run` is
// traced; check() runs the real start-up code on a crash state and returns what is wrong with it.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { loadConfig, saveConfigAtomic } from '../../../runtime/config/index.ts';
import { openEventQueue } from '../../../runtime/events/queue.ts';
import type { FaceEvent } from '../../../runtime/events/schema.ts';
import { Gallery } from '../../../runtime/matching/gallery/index.ts';
import { CROP_BYTES, EMBEDDING_DIM } from '../../../runtime/matching/gallery/records.ts';
import { ModelSlots } from '../../../runtime/model-update/slots.ts';
import { loadModel, manifestPathFor, sha256 } from '../../../runtime/models/manifest.ts';
import { seededRandom } from '../../../runtime/util/random.ts';
import { unknownEvent } from '../../helpers/events.ts';
import { MODELS_DIR } from '../../helpers/paths.ts';
import { mark } from './trace.ts';

export interface Workload {
  setup(root: string): Promise<void>;
  run(root: string): Promise<void>;
  /** Problems with the crash state in `root`, given the marks the workload had passed. */
  check(root: string, marks: string[]): Promise<string[]>;
}

// ---- offline event queue --------------------------------------------------------------------------

const QUEUE_OPTIONS = { maxEvents: 1000, policy: 'drop-oldest', segmentBytes: 900 } as const;

function queueEvent(n: number): FaceEvent {
  const event = unknownEvent(n, { time: new Date(Date.UTC(2026, 0, 1, 0, 0, n)) });
  return { ...event, id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}` };
}

const queue: Workload = {
  // Starts from the previous release's ack pointer (ack.json), so the run also traces its one-time
  // replacement by ack.ptr before the acks that overwrite ack.ptr's slots in place.
  async setup(root) {
    const dir = join(root, 'queue');
    const q = await openEventQueue(dir, QUEUE_OPTIONS);
    for (let n = 1; n <= 3; n++) await q.append(queueEvent(n));
    const ackedThrough = q.peek(1)[0].seq;
    await q.close();
    rmSync(join(dir, 'ack.ptr'));
    writeFileSync(join(dir, 'ack.json'), `${JSON.stringify({ ackedThrough })}\n`);
  },
  async run(root) {
    const q = await openEventQueue(join(root, 'queue'), QUEUE_OPTIONS);
    const ackThrough = async (trackId: number) => {
      const upTo = q.peek(q.size).find((e) => e.event.trackId === trackId);
      // The broker has acknowledged these: from here on they may go, even before ack() returns.
      mark(`delivered:${trackId}`);
      await q.ack(upTo?.seq as number);
      mark(`acked:${trackId}`);
    };
    for (let n = 4; n <= 8; n++) {
      await q.append(queueEvent(n));
      mark(`appended:${n}`);
    }
    await ackThrough(4);
    // Three appends in one group commit.
    await Promise.all(
      [9, 10, 11].map(async (n) => {
        await q.append(queueEvent(n));
        mark(`appended:${n}`);
      }),
    );
    await ackThrough(10);
    await q.append(queueEvent(12));
    mark('appended:12');
    await q.close();
  },
  async check(root, marks) {
    const problems: string[] = [];
    const q = await openEventQueue(join(root, 'queue'), QUEUE_OPTIONS);
    const events = q.peek(q.size).map((e) => e.event);
    const ids = events.map((e) => e.trackId);
    if (ids.some((id, i) => i > 0 && id <= ids[i - 1]))
      problems.push(`events out of order: ${ids.join(',')}`);
    for (const e of events)
      if (!isDeepStrictEqual(e, queueEvent(e.trackId)))
        problems.push(`event ${e.trackId} differs from what was appended`);
    const delivered = marks.filter((m) => m.startsWith('delivered:')).map((m) => Number(m.slice(10)));
    const acked = Math.max(1, ...delivered);
    // ack() returned (event 1: acknowledged in setup): those must not come back.
    const ackDone = Math.max(
      1,
      ...marks.filter((m) => m.startsWith('acked:')).map((m) => Number(m.slice(6))),
    );
    const back = ids.filter((id) => id <= ackDone);
    if (back.length > 0) problems.push(`acknowledged events came back: ${back.join(',')}`);
    const appended = [2, 3, ...marks.filter((m) => m.startsWith('appended:')).map((m) => Number(m.slice(9)))];
    const lost = appended.filter((n) => n > acked && !ids.includes(n));
    if (lost.length > 0) problems.push(`confirmed, unacknowledged events lost: ${lost.join(',')}`);
    // The recovered queue must accept new events (segment names not reused, no torn tail followed).
    await q.append(queueEvent(99));
    const last = q.peek(q.size).at(-1)?.event.trackId;
    if (last !== 99) problems.push(`an event appended after recovery is not last (got ${last})`);
    await q.close();
    return problems;
  },
};

// ---- config/set ----------------------------------------------------------------------------------

const CONFIG_NAMES = ['Door A', 'Door B', 'Door C'];

function configNamed(name: string) {
  const config = loadConfig({ env: {} });
  return { ...config, device: { ...config.device, name } };
}

const config: Workload = {
  async setup(root) {
    await saveConfigAtomic(join(root, 'config.yaml'), configNamed(CONFIG_NAMES[0]));
  },
  async run(root) {
    for (const name of CONFIG_NAMES.slice(1)) {
      await saveConfigAtomic(join(root, 'config.yaml'), configNamed(name));
      mark(`saved:${name}`);
    }
  },
  async check(root, marks) {
    let name: string;
    try {
      name = loadConfig({ file: join(root, 'config.yaml'), env: {} }).device.name;
    } catch (e) {
      return [`the configuration does not load: ${(e as Error).message.split('\n')[0]}`];
    }
    // The last save that returned, or the one in flight after it.
    const done = marks.length;
    const allowed = CONFIG_NAMES.slice(done, done + 2);
    return allowed.includes(name) ? [] : [`device.name is ${name}, expected one of ${allowed.join(', ')}`];
  },
};

// ---- gallery (SQLite WAL, synchronous=FULL) ------------------------------------------------------

const MODEL = { name: 'facerec', version: '1.0.0' };
const PEOPLE: Record<string, number> = { ann: 2, bob: 3 };

function samples(name: string) {
  const random = seededRandom(name.charCodeAt(0));
  return Array.from({ length: PEOPLE[name] }, (_, i) => {
    const v = Float32Array.from({ length: EMBEDDING_DIM }, () => random() - 0.5);
    const norm = Math.hypot(...v);
    const crop = Uint8Array.from({ length: CROP_BYTES }, () => Math.floor(random() * 256));
    return { embedding: v.map((x) => x / norm), crop, source: `${name}-${i}.jpg` };
  });
}

const gallery: Workload = {
  async setup() {},
  async run(root) {
    const g = Gallery.open(join(root, 'gallery.db'));
    mark('opened');
    for (const name of Object.keys(PEOPLE)) {
      g.enroll(name, samples(name), MODEL);
      mark(`enrolled:${name}`);
    }
    g.remove('ann');
    mark('removed:ann');
    g.close();
  },
  async check(root, marks) {
    let g: Gallery;
    try {
      g = Gallery.open(join(root, 'gallery.db'));
    } catch (e) {
      return [`the gallery does not open: ${(e as Error).message}`];
    }
    const problems: string[] = [];
    try {
      const people = new Map(g.list().map((p) => [p.name, p.embeddings]));
      for (const [name, count] of people)
        if (PEOPLE[name] !== count)
          problems.push(`${name} has ${count} embeddings, enrolled ${PEOPLE[name]}`);
      if (marks.includes('enrolled:bob') && !people.has('bob')) problems.push('bob was enrolled and is gone');
      if (marks.includes('enrolled:ann') && !marks.includes('enrolled:bob') && !people.has('ann'))
        problems.push('ann was enrolled and is gone');
      if (marks.includes('removed:ann') && people.has('ann')) problems.push('ann was removed and is back');
    } finally {
      g.close();
    }
    return problems;
  },
};

// ---- model update slots --------------------------------------------------------------------------

const SLOT_MODEL = 'blazeface';
const STEPS = [
  { mark: 'installed:1.0.1', active: '1.0.1' },
  { mark: 'installed:1.0.2', active: '1.0.2' },
  { mark: 'rolledback', active: '1.0.1' },
  { mark: 'installed:1.0.3', active: '1.0.3' },
];

function slots(root: string): ModelSlots {
  return new ModelSlots({
    dataDir: join(root, 'data'),
    name: SLOT_MODEL,
    bundledDir: MODELS_DIR,
    precision: 'int8',
  });
}

function release(version: string) {
  const { signature: _, ...base } = loadModel(manifestPathFor(MODELS_DIR, SLOT_MODEL, 'int8')).manifest;
  const random = seededRandom(version.length * 31 + version.charCodeAt(4));
  // The slot only checks size and sha256; a few KB keep the trace small.
  const onnx = Uint8Array.from({ length: 3000 }, () => Math.floor(random() * 256));
  return { manifest: { ...base, version, sha256: sha256(onnx), bytes: onnx.length }, onnx };
}

const modelSlots: Workload = {
  async setup(root) {
    mkdirSync(join(root, 'data'));
  },
  async run(root) {
    const s = slots(root);
    for (const step of STEPS) {
      if (step.mark === 'rolledback') s.rollback();
      else {
        const { manifest, onnx } = release(step.active);
        s.install(manifest, onnx);
      }
      mark(step.mark);
    }
  },
  async check(root, marks) {
    const s = slots(root);
    const done = marks.length;
    const allowed = [done === 0 ? 'bundled' : STEPS[done - 1].active, STEPS[done]?.active].filter(Boolean);
    try {
      const active = s.resolveActive();
      const version = active.source === 'bundled' ? 'bundled' : active.model.manifest.version;
      const problems = active.problems.map((p) => `fell back to ${active.source}: ${p}`);
      if (!allowed.includes(version)) problems.push(`runs ${version}, expected one of ${allowed.join(', ')}`);
      s.prune();
      const after = s.resolveActive();
      if (after.slot !== active.slot) problems.push(`prune changed the running slot to ${after.slot}`);
      return problems;
    } catch (e) {
      return [`no model starts: ${(e as Error).message}`];
    }
  },
};

// ---- negative control: the classic bug, which the checker must catch -----------------------------

const unsafe: Workload = {
  async setup(root) {
    writeFileSync(join(root, 'state.json'), '{"version":1}\n');
  },
  async run(root) {
    // Temp file and rename, but no fsync of the file nor of the directory.
    writeFileSync(join(root, 'state.json.tmp'), '{"version":2}\n');
    renameSync(join(root, 'state.json.tmp'), join(root, 'state.json'));
    mark('saved');
  },
  async check(root, marks) {
    let version: unknown;
    try {
      version = JSON.parse(readFileSync(join(root, 'state.json'), 'utf8')).version;
    } catch (e) {
      return [`state.json is unreadable: ${(e as Error).message}`];
    }
    if (marks.includes('saved') && version !== 2) return [`saved version 2, found ${version}`];
    return [];
  },
};

export const WORKLOADS: Record<string, Workload> = { queue, config, gallery, slots: modelSlots };
export const NEGATIVE_CONTROL = unsafe;

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [name, phase, root] = process.argv.slice(2);
  const workload = name === 'unsafe' ? unsafe : WORKLOADS[name];
  await (phase === 'setup' ? workload.setup(root) : workload.run(root));
}
