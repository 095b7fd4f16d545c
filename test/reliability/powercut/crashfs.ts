// The file system a power cut leaves behind, ALICE/CrashMonkey style. A traced workload becomes a list of
// operations on inodes; a crash state is "the first k operations happened, of which these reached the
// disk". What must have reached the disk follows the POSIX rules the code relies on, no stronger:
//
// - a write or truncate of a file is durable once that file is fsynced (fsync or fdatasync) after it;
// - a directory entry (create, mkdir, unlink, rename) is durable once its directory is fsynced after it;
//   a rename is one atomic entry change, durable once the destination directory is fsynced;
// - anything not yet durable may or may not have reached the disk, in any combination (un-synced writes
//   are reordered freely), and a write may be torn: only its first half, or its new length with zeros;
// - a file no persisted entry leads to is gone (e.g. a new file whose directory was never fsynced).
//
// Real file systems (ext4 data=ordered, the journal) keep more than this; code that survives this model
// survives them. Memory-mapped writes (SQLite's -shm index) are not seen, which is sound: SQLite rebuilds
// the index from the WAL when the first connection opens after a crash.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { seededRandom } from '../../../runtime/util/random.ts';
import type { TraceOp } from './trace.ts';

type ModelOp =
  | { kind: 'write'; ino: number; offset: number; data: Buffer }
  | { kind: 'truncate'; ino: number; size: number }
  | { kind: 'entry'; changes: { dir: number; name: string; ino: number | null }[]; syncDir: number }
  | { kind: 'fsync'; ino: number }
  | { kind: 'mark'; label: string };

/** How one not-yet-durable operation ended up: absent, whole, or (writes only) torn. */
export type Fate = 'lost' | 'kept' | 'half' | 'zeros';

export interface CrashState {
  /** Operations 0..prefix-1 were issued before the power went. */
  prefix: number;
  /** Fate of each not-yet-durable operation in the prefix; unlisted ones were kept. */
  fates: Map<number, Fate>;
  /** Workload marks passed before the cut: results it had reported. */
  marks: string[];
  /** Path -> content of every reachable file, and every reachable directory with a trailing "/". */
  files: Map<string, Buffer>;
  /** Identifies the state together with its marks, for de-duplication. */
  key: string;
}

/** A directory's entries: a file's bytes or a sub-directory. */
export type Tree = Map<string, Buffer | Tree>;

/** The files under `path`, read now: taken before the traced run, it is what the disk held durably. */
export function readTree(path: string): Tree {
  const tree: Tree = new Map();
  for (const name of readdirSync(path).sort()) {
    const full = join(path, name);
    tree.set(name, statSync(full).isDirectory() ? readTree(full) : readFileSync(full));
  }
  return tree;
}

interface Inode {
  dir: boolean;
  base: Buffer;
}

const ROOT = 0;

export class CrashModel {
  private readonly inodes: Inode[] = [];
  private readonly baseEntries = new Map<number, Map<string, number>>();
  readonly ops: ModelOp[] = [];
  /** For each op: the index of the first later fsync that makes it durable, or Infinity. */
  private durableAt: number[] = [];

  /** `before` (the tree at `root` before the traced run, all of it durable), then the traced operations. */
  constructor(
    private readonly root: string,
    before: Tree,
    trace: TraceOp[],
  ) {
    this.inodes.push({ dir: true, base: Buffer.alloc(0) });
    this.baseEntries.set(ROOT, new Map());
    this.load(before, ROOT);
    this.translate(trace);
    this.computeDurability();
  }

  private load(tree: Tree, dirIno: number): void {
    for (const [name, node] of tree) {
      const isDir = node instanceof Map;
      const ino = this.inodes.push({ dir: isDir, base: isDir ? Buffer.alloc(0) : node }) - 1;
      this.baseEntries.get(dirIno)?.set(name, ino);
      if (isDir) {
        this.baseEntries.set(ino, new Map());
        this.load(node, ino);
      }
    }
  }

  private inRoot(path: string): boolean {
    return path === this.root || path.startsWith(this.root + sep);
  }

  private translate(trace: TraceOp[]): void {
    // The volatile view: what the running process saw.
    const entries = new Map([...this.baseEntries].map(([d, m]) => [d, new Map(m)]));
    const sizes = this.inodes.map((i) => i.base.length);
    const fds = new Map<number, { ino: number; pos: number; append: boolean }>();
    const parts = (path: string) => relative(this.root, path).split(sep).filter(Boolean);
    const lookup = (path: string): number | undefined => {
      let ino: number | undefined = ROOT;
      for (const name of parts(path)) ino = ino === undefined ? undefined : entries.get(ino)?.get(name);
      return ino;
    };
    const parentOf = (path: string): { dir: number; name: string } => {
      const names = parts(path);
      const dir = lookup(join(this.root, ...names.slice(0, -1)));
      if (dir === undefined || names.length === 0) throw new Error(`trace: no parent directory for ${path}`);
      return { dir, name: names[names.length - 1] };
    };
    const entry = (changes: { dir: number; name: string; ino: number | null }[], syncDir: number) => {
      for (const c of changes) {
        const map = entries.get(c.dir) as Map<string, number>;
        if (c.ino === null) map.delete(c.name);
        else map.set(c.name, c.ino);
      }
      this.ops.push({ kind: 'entry', changes, syncDir });
    };
    const newInode = (dir: boolean) => {
      sizes.push(0);
      const ino = this.inodes.push({ dir, base: Buffer.alloc(0) }) - 1;
      if (dir) entries.set(ino, new Map());
      return ino;
    };

    for (const op of trace) {
      switch (op.kind) {
        case 'open': {
          fds.delete(op.fd);
          if (!this.inRoot(op.path)) break;
          let ino = lookup(op.path);
          if (ino === undefined) {
            if (!op.create) throw new Error(`trace: opened ${op.path}, which the model does not have`);
            const { dir, name } = parentOf(op.path);
            ino = newInode(false);
            entry([{ dir, name, ino }], dir);
          } else if (op.truncate && sizes[ino] > 0) {
            this.ops.push({ kind: 'truncate', ino, size: 0 });
            sizes[ino] = 0;
          }
          fds.set(op.fd, { ino, pos: 0, append: op.append });
          break;
        }
        case 'write': {
          const file = fds.get(op.fd);
          if (!file) break;
          const offset = op.offset ?? (file.append ? sizes[file.ino] : file.pos);
          this.ops.push({ kind: 'write', ino: file.ino, offset, data: op.data });
          sizes[file.ino] = Math.max(sizes[file.ino], offset + op.data.length);
          if (op.offset === undefined) file.pos = offset + op.data.length;
          break;
        }
        case 'ftruncate': {
          const file = fds.get(op.fd);
          if (!file) break;
          this.ops.push({ kind: 'truncate', ino: file.ino, size: op.size });
          sizes[file.ino] = op.size;
          break;
        }
        case 'fsync': {
          const file = fds.get(op.fd);
          if (file) this.ops.push({ kind: 'fsync', ino: file.ino });
          break;
        }
        case 'close':
          fds.delete(op.fd);
          break;
        case 'rename': {
          if (!this.inRoot(op.from) && !this.inRoot(op.to)) break;
          if (!this.inRoot(op.from) || !this.inRoot(op.to))
            throw new Error(`trace: rename across the workload's root: ${op.from} -> ${op.to}`);
          const ino = lookup(op.from);
          if (ino === undefined) throw new Error(`trace: renamed ${op.from}, which the model does not have`);
          const from = parentOf(op.from);
          const to = parentOf(op.to);
          entry(
            [
              { dir: from.dir, name: from.name, ino: null },
              { dir: to.dir, name: to.name, ino },
            ],
            to.dir,
          );
          break;
        }
        case 'unlink': {
          if (!this.inRoot(op.path)) break;
          const { dir, name } = parentOf(op.path);
          entry([{ dir, name, ino: null }], dir);
          break;
        }
        case 'mkdir': {
          if (!this.inRoot(op.path)) break;
          const { dir, name } = parentOf(op.path);
          entry([{ dir, name, ino: newInode(true) }], dir);
          break;
        }
        case 'mark':
          this.ops.push(op);
          break;
        case 'unmodelled':
          if (op.paths.some((p) => this.inRoot(p)))
            throw new Error(`trace: ${op.name} on ${op.paths.join(', ')} is not modelled`);
          break;
      }
    }
  }

  private computeDurability(): void {
    this.durableAt = this.ops.map(() => Number.POSITIVE_INFINITY);
    const pending = new Map<number, number[]>();
    this.ops.forEach((op, i) => {
      if (op.kind === 'write' || op.kind === 'truncate' || op.kind === 'entry') {
        const target = op.kind === 'entry' ? op.syncDir : op.ino;
        pending.set(target, [...(pending.get(target) ?? []), i]);
      } else if (op.kind === 'fsync') {
        for (const j of pending.get(op.ino) ?? []) this.durableAt[j] = i;
        pending.delete(op.ino);
      }
    });
  }

  /** Operations issued before `prefix` that may still be lost at that point. */
  volatileAt(prefix: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < prefix; i++) {
      const kind = this.ops[i].kind;
      if ((kind === 'write' || kind === 'truncate' || kind === 'entry') && this.durableAt[i] >= prefix)
        out.push(i);
    }
    return out;
  }

  /** Positions just before each fsync and mark, and the end. */
  crashPoints(): number[] {
    const points = this.ops.flatMap((op, i) => (op.kind === 'fsync' || op.kind === 'mark' ? [i] : []));
    return [...points, this.ops.length];
  }

  isWrite(i: number): boolean {
    return this.ops[i].kind === 'write';
  }

  /** The disk after a power cut at `prefix` with the given fates of the volatile operations. */
  state(prefix: number, fates: Map<number, Fate>): CrashState {
    const contents = this.inodes.map((i) => Buffer.from(i.base));
    const entries = new Map([...this.baseEntries].map(([d, m]) => [d, new Map(m)]));
    const marks: string[] = [];
    for (let i = 0; i < prefix; i++) {
      const op = this.ops[i];
      const fate = fates.get(i) ?? 'kept';
      if (fate === 'lost') continue;
      if (op.kind === 'mark') marks.push(op.label);
      else if (op.kind === 'write') {
        const data =
          fate === 'half'
            ? op.data.subarray(0, op.data.length >> 1)
            : fate === 'zeros'
              ? Buffer.alloc(op.data.length)
              : op.data;
        const end = op.offset + data.length;
        let buf = contents[op.ino];
        if (buf.length < end) buf = Buffer.concat([buf, Buffer.alloc(end - buf.length)]);
        data.copy(buf, op.offset);
        contents[op.ino] = buf;
      } else if (op.kind === 'truncate') {
        const buf = contents[op.ino];
        contents[op.ino] =
          op.size <= buf.length
            ? buf.subarray(0, op.size)
            : Buffer.concat([buf, Buffer.alloc(op.size - buf.length)]);
      } else if (op.kind === 'entry') {
        for (const c of op.changes) {
          // An entry in a directory no persisted entry leads to still changes that directory.
          const map = entries.get(c.dir) ?? new Map<string, number>();
          entries.set(c.dir, map);
          if (c.ino === null) map.delete(c.name);
          else map.set(c.name, c.ino);
        }
      }
    }
    const files = new Map<string, Buffer>();
    const visit = (dir: number, path: string, seen: Set<number>) => {
      for (const [name, ino] of [...(entries.get(dir) ?? [])].sort()) {
        const child = path ? `${path}/${name}` : name;
        if (this.inodes[ino].dir) {
          if (seen.has(ino)) continue;
          files.set(`${child}/`, Buffer.alloc(0));
          visit(ino, child, new Set([...seen, ino]));
        } else files.set(child, contents[ino]);
      }
    };
    visit(ROOT, '', new Set([ROOT]));
    const hash = createHash('sha256');
    for (const [path, data] of files) hash.update(`${path}\0${data.length}\0`).update(data);
    hash.update(`marks\0${marks.join('\0')}`);
    return { prefix, fates, marks, files, key: hash.digest('hex') };
  }
}

/** Writes a crash state's files under `dir` (which must exist and be empty). */
export function materialize(state: CrashState, dir: string): void {
  for (const [path, data] of state.files) {
    if (path.endsWith('/')) mkdirSync(join(dir, path), { recursive: true });
    else {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), data);
    }
  }
}

export interface EnumerateOptions {
  seed: number;
  /** Every combination is tried when this many or fewer operations are volatile. */
  exhaustiveUpTo: number;
  /** Random combinations per crash point beyond the systematic ones. */
  randomPerPoint: number;
  /** Writes (the most recent volatile ones) also tried torn, per crash point. */
  tornPerPoint: number;
}

/**
 * The power can go at any point, but a cut between two barriers (fsyncs, marks) leaves nothing a cut just
 * before the next barrier cannot leave with the operations in between lost: those are still volatile there.
 * So the crash points are the positions before each barrier and the end, and at each: every in-order
 * prefix of the volatile operations (a cut at each operation), every combination when there are few,
 * otherwise each one alone lost and alone kept and seeded random combinations (reordering), and the most
 * recent writes torn. Distinct states only.
 */
export function* crashStates(model: CrashModel, opts: EnumerateOptions): Generator<CrashState> {
  const random = seededRandom(opts.seed);
  const seen = new Set<string>();
  for (const prefix of model.crashPoints()) {
    const volatile = model.volatileAt(prefix);
    const choices: Map<number, Fate>[] = [];
    const fatesOf = (pick: (i: number, k: number) => Fate) =>
      new Map(volatile.map((i, k) => [i, pick(i, k)]));
    for (let kept = 0; kept <= volatile.length; kept++)
      choices.push(fatesOf((_i, k) => (k < kept ? 'kept' : 'lost')));
    if (volatile.length <= opts.exhaustiveUpTo) {
      for (let mask = 1; mask < (1 << volatile.length) - 1; mask++)
        choices.push(fatesOf((_i, k) => (mask & (1 << k) ? 'kept' : 'lost')));
    } else {
      for (let k = 0; k < volatile.length; k++) {
        choices.push(fatesOf((_i, j) => (j === k ? 'lost' : 'kept')));
        choices.push(fatesOf((_i, j) => (j === k ? 'kept' : 'lost')));
      }
      for (let r = 0; r < opts.randomPerPoint; r++)
        choices.push(fatesOf(() => (random() < 0.5 ? 'kept' : 'lost')));
    }
    const writes = volatile.filter((i) => model.isWrite(i)).slice(-opts.tornPerPoint);
    for (const w of writes)
      for (const torn of ['half', 'zeros'] as const) choices.push(fatesOf((i) => (i === w ? torn : 'kept')));
    for (const fates of choices) {
      const state = model.state(prefix, fates);
      if (seen.has(state.key)) continue;
      seen.add(state.key);
      yield state;
    }
  }
}
