// docs/decisions.md, "Event queue": the hand-written offline queue (runtime/events/queue.ts) against the
// same contract on a SQLite table (better-sqlite3 as the gallery opens it: WAL, synchronous=FULL).
// Each round runs both, in alternating order, on fresh folders of the same file system:
//   npx tsx tools/decisions/queue.ts [--rounds 3] [--events 10000] [--dir DIR] [--full-disk DIR]
// --full-disk names a small mounted file system (e.g. a 1 MiB tmpfs) to fill until appends fail.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { integerFlag } from '../../runtime/cli/flags.ts';
import { openEventQueue } from '../../runtime/events/queue.ts';
import { buildEvent, type FaceEvent } from '../../runtime/events/schema.ts';
import { median, percentile } from '../../runtime/util/timing.ts';

/** What the MQTT client uses of a queue (runtime/mqtt/client.ts). */
interface Queue {
  readonly size: number;
  append(event: FaceEvent): Promise<boolean>;
  peek(n: number): { seq: number; event: FaceEvent }[];
  ack(seq: number): Promise<void>;
  close(): Promise<void>;
}

interface Statement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface Database {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  pragma(source: string): unknown;
  close(): void;
}
const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => Database;

/** The candidate: one row per event, each append its own durable transaction, drop-oldest. */
class SqliteQueue implements Queue {
  size: number;
  private readonly insert: Statement;
  private readonly select: Statement;
  private readonly remove: Statement;
  private readonly dropOldest: Statement;

  constructor(
    private readonly db: Database,
    private readonly maxEvents: number,
  ) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL)');
    this.insert = db.prepare('INSERT INTO events (json) VALUES (?)');
    this.select = db.prepare('SELECT seq, json FROM events ORDER BY seq LIMIT ?');
    this.remove = db.prepare('DELETE FROM events WHERE seq <= ?');
    this.dropOldest = db.prepare('DELETE FROM events WHERE seq = (SELECT MIN(seq) FROM events)');
    this.size = (db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  }

  static open(dir: string, maxEvents: number): SqliteQueue {
    return new SqliteQueue(new Sqlite(join(dir, 'queue.db')), maxEvents);
  }

  async append(event: FaceEvent): Promise<boolean> {
    if (this.size >= this.maxEvents) {
      this.dropOldest.run();
      this.size--;
    }
    this.insert.run(JSON.stringify(event));
    this.size++;
    return true;
  }

  peek(n: number): { seq: number; event: FaceEvent }[] {
    return (this.select.all(n) as { seq: number; json: string }[]).map((r) => ({
      seq: r.seq,
      event: JSON.parse(r.json) as FaceEvent,
    }));
  }

  async ack(seq: number): Promise<void> {
    const { changes } = this.remove.run(seq) as { changes: number };
    this.size -= changes;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

const KINDS = {
  'files (queue.ts)': (dir: string, max: number): Promise<Queue> =>
    openEventQueue(dir, { maxEvents: max, policy: 'drop-oldest' }),
  'sqlite (WAL, FULL)': async (dir: string, max: number): Promise<Queue> => SqliteQueue.open(dir, max),
};
type Kind = keyof typeof KINDS;

function event(n: number): FaceEvent {
  return buildEvent({
    camera: 'door',
    type: 'unknown',
    score: 0.5,
    box: [10, 20, 110, 140],
    trackId: n,
    model: { name: 'facerec', version: '1.0.0' },
  });
}

function diskBytes(dir: string): { bytes: number; allocated: number } {
  let bytes = 0;
  let allocated = 0;
  for (const name of readdirSync(dir)) {
    const st = statSync(join(dir, name));
    bytes += st.size;
    allocated += st.blocks * 512;
  }
  return { bytes, allocated };
}

async function timed<T>(run: () => Promise<T> | T): Promise<[T, number]> {
  const start = performance.now();
  const value = await run();
  return [value, performance.now() - start];
}

interface Round {
  appendMs: number[];
  burst100Ms: number;
  fillMs: number;
  bytesOpen: number;
  bytesClosed: number;
  allocatedClosed: number;
  recoverMs: number;
  peek16Ms: number;
  peekAllMs: number;
  drainMs: number;
  acks: number;
}

/** One impl through the client's life: appends while offline, restart, replay in windows of 16. */
async function round(kind: Kind, base: string, events: number): Promise<Round> {
  const dir = mkdtempSync(join(base, 'q-'));
  const open = () => KINDS[kind](dir, events);
  let q = await open();
  const appendMs: number[] = [];
  for (let i = 0; i < 200; i++) appendMs.push((await timed(() => q.append(event(i))))[1]);
  const [, burst100Ms] = await timed(() =>
    Promise.all(Array.from({ length: 100 }, (_, i) => q.append(event(i)))),
  );
  const [, fillMs] = await timed(async () => {
    while (q.size < events) {
      const n = Math.min(100, events - q.size);
      await Promise.all(Array.from({ length: n }, (_, i) => q.append(event(i))));
    }
  });
  const bytesOpen = diskBytes(dir).bytes;
  await q.close();
  const closed = diskBytes(dir);
  const [reopened, recoverMs] = await timed(open);
  q = reopened;
  if (q.size !== events) throw new Error(`${kind}: ${q.size} events after reopening, expected ${events}`);
  const [, peek16Ms] = await timed(() => q.peek(16));
  const [, peekAllMs] = await timed(() => q.peek(events));
  let acks = 0;
  const [, drainMs] = await timed(async () => {
    while (q.size > 0) {
      const batch = q.peek(16);
      await q.ack(batch[batch.length - 1].seq);
      acks++;
    }
  });
  await q.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    appendMs,
    burst100Ms,
    fillMs,
    bytesOpen,
    bytesClosed: closed.bytes,
    allocatedClosed: closed.allocated,
    recoverMs,
    peek16Ms,
    peekAllMs,
    drainMs,
    acks,
  };
}

function outcome(err: unknown): string {
  return (err as { code?: string }).code ?? String(err);
}

/** Runs `step`; says `ok` or the error's code (a full disk is expected to fail some steps). */
async function attempt(step: () => Promise<unknown>): Promise<string> {
  try {
    await step();
    return 'ok';
  } catch (err) {
    return outcome(err);
  }
}

/** Appends until the file system is full, then checks what is left: reads, acks, room after acks, restart. */
async function fullDisk(kind: Kind, base: string): Promise<string> {
  const dir = mkdtempSync(join(base, 'q-'));
  let q = await KINDS[kind](dir, 1_000_000);
  let stored = 0;
  let failure = '';
  while (!failure) {
    try {
      await q.append(event(stored));
      stored++;
    } catch (err) {
      failure = outcome(err);
    }
  }
  const readable = q.peek(stored).length;
  const ack = await attempt(() => q.ack(q.peek(stored >> 1).at(-1)?.seq ?? 0));
  const append = await attempt(() => q.append(event(0)));
  const close = await attempt(() => q.close());
  q = await KINDS[kind](dir, 1_000_000);
  const afterRestart = q.size;
  await q.close();
  rmSync(dir, { recursive: true, force: true });
  return `${kind}: ${stored} stored, then ${failure}; ${readable} readable; ack half: ${ack}; append: ${append}; close: ${close}; ${afterRestart} after restart`;
}

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    events: { type: 'string', default: '10000' },
    dir: { type: 'string', default: tmpdir() },
    'full-disk': { type: 'string' },
  },
});
const events = integerFlag('events', values.events);
// 0 rounds: only the --full-disk check.
const roundCount = integerFlag('rounds', values.rounds, 0);
const base = mkdtempSync(join(values.dir, 'facegate-decide-queue-'));
const kinds = Object.keys(KINDS) as Kind[];
const rounds = new Map<Kind, Round[]>(kinds.map((k) => [k, []]));
for (let r = 0; r < roundCount; r++) {
  for (const kind of r % 2 === 0 ? kinds : [...kinds].reverse()) {
    rounds.get(kind)?.push(await round(kind, base, events));
  }
}
rmSync(base, { recursive: true, force: true });

const f = (v: number, d = 2) => v.toFixed(d).padStart(9);
console.log(
  `${roundCount} rounds, ${events} events of ${Buffer.byteLength(JSON.stringify(event(0)))} bytes JSON; medians over rounds`,
);
console.log(
  'kind                 append p50/p99 ms  burst 100 ms  fill ms  reopen ms  peek16 ms  peekAll ms  drain ms (acks)  bytes open/closed/allocated',
);
for (const [kind, rs] of rounds) {
  const all = rs.flatMap((r) => r.appendMs).sort((a, b) => a - b);
  const m = (key: keyof Omit<Round, 'appendMs'>) => median(rs.map((r) => r[key]));
  console.log(
    `${kind.padEnd(20)} ${f(percentile(all, 50), 3)}/${f(percentile(all, 99), 3).trim()} ${f(m('burst100Ms'))} ${f(m('fillMs'), 0)} ${f(m('recoverMs'))} ${f(m('peek16Ms'), 3)} ${f(m('peekAllMs'))} ${f(m('drainMs'), 0)} (${m('acks')})  ${m('bytesOpen')}/${m('bytesClosed')}/${m('allocatedClosed')}`,
  );
}
// SQLite first, so a files queue that leaves space taken cannot starve the other's check.
if (values['full-disk'])
  for (const kind of [...kinds].reverse()) console.log(await fullDisk(kind, values['full-disk']));
