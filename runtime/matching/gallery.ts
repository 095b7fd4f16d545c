// The enrolled people: one SQLite file, the device's only record of who may be recognised.
//
// Durability: WAL with synchronous=FULL, so a write is on disk when its call returns (a power cut keeps
// it, not just a process crash), and every write is one IMMEDIATE transaction, so a crash leaves a person
// wholly enrolled or absent. IMMEDIATE takes the write lock up front: a second process (the CLI enrolling
// while the daemon runs) then waits on busy_timeout instead of failing a lock upgrade half-way.
//
// Privacy: the aligned face crop behind each embedding is stored so the gallery can be re-embedded when
// the embedder changes (vectors of different models are not comparable) without asking everyone to
// enrol again. A crop is biometric data, so it never leaves the device through this API: list() and
// embeddingsFor() do not return crops, reembed() hands them only to the local embedder. New gallery files
// are created 0600 (SQLite gives its -wal/-shm files the database's mode), and remove() runs with
// secure_delete and a WAL truncation so an erased person's crop is not left in free pages of the file.

import { closeSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import type { ModelRef } from '../events/schema.ts';
import { commitTempFile, tempPathFor } from '../util/atomic-file.ts';

export const EMBEDDING_DIM = 128;
/** Side of the aligned RGB face crop (FaceRecognitionNet's 150x150 dlib chip). */
export const CROP_SIZE = 150;
export const CROP_BYTES = CROP_SIZE * CROP_SIZE * 3;
export const MAX_NAME_LENGTH = 64;

export class GalleryError extends Error {
  override readonly name = 'GalleryError';
}

export interface EnrollEntry {
  /** Unit-length embedding of `crop` (or of the photo it came from). */
  embedding: Float32Array;
  /** CROP_BYTES of packed RGB; without it this embedding cannot be re-embedded for another model. */
  crop?: Uint8Array;
  /** Where the sample came from, e.g. a file name or 'mqtt'. */
  source: string;
}

export interface EnrollResult {
  personId: number;
  added: number;
}

export interface PersonSummary {
  name: string;
  embeddings: number;
  /** `name@version` of every model this person has embeddings for, sorted. */
  models: string[];
  createdAt: Date;
}

export interface StoredEmbedding {
  id: number;
  name: string;
  vector: Float32Array;
  source: string;
  createdAt: Date;
}

export interface Identification {
  /** Best-matching person, or null when their score is not above the threshold. */
  identity: string | null;
  /** Best person's cosine similarity (max over their embeddings); 0 when nobody is enrolled for the model. */
  score: number;
  /** Second-best person, whatever their score. */
  runnerUp?: { identity: string; score: number };
}

export interface PersonMatch {
  identity: string;
  /** Best cosine over this person's embeddings. */
  score: number;
  /** How many embeddings this person has for the model: few means a weak enrolment. */
  embeddings: number;
}

/** The best and second-best enrolled person for a face; both absent when nobody is enrolled. */
export interface Ranking {
  best?: PersonMatch;
  runnerUp?: PersonMatch;
}

// better-sqlite3 ships no type declarations and @types/better-sqlite3 is not a dependency, so the part
// used here is typed locally.
export interface Statement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  pluck(): Statement;
}

export interface Database {
  readonly open: boolean;
  prepare(sql: string): Statement;
  exec(sql: string): void;
  pragma(source: string, options?: { simple: boolean }): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): { immediate(...args: A): R };
  backup(destination: string): Promise<unknown>;
  close(): void;
}

const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (
  path: string,
  options?: { timeout?: number },
) => Database;

// Migration i takes the schema from version i to i + 1; each runs in one transaction with its bump.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE people (
     id INTEGER PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE embeddings (
     id INTEGER PRIMARY KEY,
     person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
     vector BLOB NOT NULL CHECK (length(vector) = ${EMBEDDING_DIM * 4}),
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     source TEXT NOT NULL,
     crop BLOB CHECK (crop IS NULL OR length(crop) = ${CROP_BYTES})
   );
   CREATE INDEX embeddings_by_model ON embeddings(model_name, model_version);
   CREATE INDEX embeddings_by_person ON embeddings(person_id);`,
  // Unknown visitors (runtime/matching/unknowns.ts): clusters of faces nobody recognised, a few of their best
  // crops, and faces an operator rejected as a person (negative examples the decision uses).
  `CREATE TABLE unknowns (
     id INTEGER PRIMARY KEY,
     centroid BLOB NOT NULL CHECK (length(centroid) = ${EMBEDDING_DIM * 4}),
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     first_seen INTEGER NOT NULL,
     last_seen INTEGER NOT NULL,
     visits INTEGER NOT NULL,
     last_camera TEXT NOT NULL
   );
   CREATE TABLE unknown_faces (
     id INTEGER PRIMARY KEY,
     unknown_id INTEGER NOT NULL REFERENCES unknowns(id) ON DELETE CASCADE,
     vector BLOB NOT NULL CHECK (length(vector) = ${EMBEDDING_DIM * 4}),
     crop BLOB NOT NULL CHECK (length(crop) = ${CROP_BYTES}),
     quality REAL NOT NULL,
     seen_at INTEGER NOT NULL
   );
   CREATE INDEX unknown_faces_by_unknown ON unknown_faces(unknown_id);
   CREATE TABLE negatives (
     id INTEGER PRIMARY KEY,
     person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
     vector BLOB NOT NULL CHECK (length(vector) = ${EMBEDDING_DIM * 4}),
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     source TEXT NOT NULL
   );
   CREATE INDEX negatives_by_person ON negatives(person_id);`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** The stored form of a person's name (NFC), or a GalleryError saying why it is not acceptable. */
export function normalizePersonName(name: unknown): string {
  if (typeof name !== 'string') throw new GalleryError('person name must be a string');
  const nfc = name.normalize('NFC');
  const length = [...nfc].length;
  if (length < 1 || length > MAX_NAME_LENGTH)
    throw new GalleryError(`person name must be 1-${MAX_NAME_LENGTH} characters, got ${length}`);
  // Names travel as MQTT topic levels and in events: same rules as device and camera ids.
  if (/[+#/]/.test(nfc)) throw new GalleryError(`person name ${JSON.stringify(nfc)} contains + # or /`);
  if (/[\p{Cc}\p{Cs}\u2028\u2029]/u.test(nfc))
    throw new GalleryError(`person name ${JSON.stringify(nfc)} contains control characters`);
  if (nfc.trim() !== nfc)
    throw new GalleryError(`person name ${JSON.stringify(nfc)} has leading or trailing whitespace`);
  return nfc;
}

function checkModel(model: ModelRef): void {
  for (const field of ['name', 'version'] as const) {
    const value = model?.[field];
    if (typeof value !== 'string' || value.length < 1 || value.length > 128)
      throw new GalleryError(`model ${field} must be a string of 1-128 characters`);
  }
}

function modelLabel(model: ModelRef): string {
  return `${model.name}@${model.version}`;
}

export function checkEmbedding(v: unknown, what: string): asserts v is Float32Array {
  if (!(v instanceof Float32Array) || v.length !== EMBEDDING_DIM)
    throw new GalleryError(`${what}: expected a Float32Array of ${EMBEDDING_DIM} values`);
  let sum = 0;
  for (const x of v) sum += x * x;
  // Cosine similarity is a plain dot product only between unit vectors.
  if (!(Math.abs(Math.sqrt(sum) - 1) < 1e-3))
    throw new GalleryError(`${what}: embedding is not unit length (norm ${Math.sqrt(sum)})`);
}

// Explicit little-endian, so a gallery file (or backup) means the same on any host.
export function encodeVector(v: Float32Array): Buffer {
  const buf = Buffer.allocUnsafe(EMBEDDING_DIM * 4);
  for (let i = 0; i < EMBEDDING_DIM; i++) buf.writeFloatLE(v[i], i * 4);
  return buf;
}

export function decodeVector(buf: Buffer, into: Float32Array, offset: number): void {
  for (let i = 0; i < EMBEDDING_DIM; i++) into[offset + i] = buf.readFloatLE(i * 4);
}

function clampCosine(x: number): number {
  // Float32 rounding can push the dot product of identical unit vectors just past 1.
  return Math.max(-1, Math.min(1, x));
}

interface MatrixCache {
  model: ModelRef;
  dataVersion: number;
  names: string[];
  /** Rows of person p are starts[p] .. starts[p + 1] - 1. */
  starts: Int32Array;
  matrix: Float32Array;
}

function prepareStatements(db: Database) {
  return {
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
    insertPerson: db.prepare(
      'INSERT INTO people (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
    ),
    personId: db.prepare('SELECT id FROM people WHERE name = ?').pluck(),
    insertEmbedding: db.prepare(
      `INSERT INTO embeddings (person_id, vector, model_name, model_version, created_at, source, crop)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteEmbeddings: db.prepare('DELETE FROM embeddings WHERE person_id = ?'),
    deletePerson: db.prepare('DELETE FROM people WHERE id = ?'),
    people: db.prepare(
      `SELECT p.name, p.created_at, count(e.id) AS embeddings
       FROM people p LEFT JOIN embeddings e ON e.person_id = p.id GROUP BY p.id ORDER BY p.name`,
    ),
    personModels: db.prepare(
      `SELECT DISTINCT p.name, e.model_name, e.model_version
       FROM embeddings e JOIN people p ON p.id = e.person_id ORDER BY e.model_name, e.model_version`,
    ),
    vectors: db.prepare(
      `SELECT e.id, p.name, e.vector, e.source, e.created_at
       FROM embeddings e JOIN people p ON p.id = e.person_id
       WHERE e.model_name = ? AND e.model_version = ? ORDER BY p.name, e.id`,
    ),
    pending: db.prepare(
      `SELECT e.id, p.name, e.model_name, e.model_version, e.crop IS NOT NULL AS has_crop
       FROM embeddings e JOIN people p ON p.id = e.person_id
       WHERE NOT (e.model_name = ? AND e.model_version = ?) ORDER BY p.name, e.id`,
    ),
    crop: db.prepare('SELECT crop FROM embeddings WHERE id = ?').pluck(),
    reembedRow: db.prepare(
      `UPDATE embeddings SET vector = ?, model_name = ?, model_version = ?
       WHERE id = ? AND model_name = ? AND model_version = ?`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

interface PendingRow {
  id: number;
  name: string;
  model_name: string;
  model_version: string;
  has_crop: number;
}

export class Gallery {
  private cache: MatrixCache | null = null;
  private readonly sql: Statements;

  private constructor(
    readonly path: string,
    private readonly db: Database,
  ) {
    this.sql = prepareStatements(db);
  }

  /** Opens (creating when missing) the gallery at `path`, checking its integrity and migrating its schema. */
  static open(path: string): Gallery {
    let db: Database | undefined;
    try {
      if (!existsSync(path)) {
        mkdirSync(dirname(path), { recursive: true });
        closeSync(openSync(path, 'a', 0o600));
      }
      db = new Sqlite(path, { timeout: 5000 });
      if (db.pragma('journal_mode = WAL', { simple: true }) !== 'wal')
        throw new GalleryError(`gallery ${path}: cannot use WAL journaling on this filesystem`);
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('secure_delete = ON');
      const check = String(db.pragma('quick_check', { simple: true }));
      if (check !== 'ok') {
        // The report lists every damaged page; the first findings are enough to say what happened.
        const findings = check.split('\n').filter((line) => !line.startsWith('***'));
        throw new GalleryError(
          `gallery ${path} is corrupt (${findings.slice(0, 2).join('; ')}); restore a backup`,
        );
      }
      migrate(db, path);
      return new Gallery(path, db);
    } catch (e) {
      db?.close();
      if (e instanceof GalleryError) throw e;
      const reason = (e as Error).message;
      const code = String((e as { code?: unknown }).code);
      if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'))
        throw new GalleryError(
          `gallery ${path} is not a readable SQLite database (${reason}); restore a backup`,
        );
      throw new GalleryError(`cannot open gallery ${path}: ${reason}`);
    }
  }

  /** Adds embeddings to `name`, creating the person when new; all or nothing. */
  enroll(name: string, entries: readonly EnrollEntry[], model: ModelRef): EnrollResult {
    const person = normalizePersonName(name);
    checkModel(model);
    if (!Array.isArray(entries) || entries.length === 0)
      throw new GalleryError(`enroll ${person}: no embeddings given`);
    const rows = entries.map((entry, i) => {
      const what = `enroll ${person}: entry ${i}`;
      checkEmbedding(entry.embedding, what);
      const { crop, source } = entry;
      if (crop !== undefined && (!(crop instanceof Uint8Array) || crop.length !== CROP_BYTES))
        throw new GalleryError(`${what}: crop must be ${CROP_BYTES} bytes (${CROP_SIZE}x${CROP_SIZE} RGB)`);
      if (typeof source !== 'string' || source.length < 1 || source.length > 256)
        throw new GalleryError(`${what}: source must be a string of 1-256 characters`);
      return { vector: encodeVector(entry.embedding), crop: crop ?? null, source };
    });
    const now = Date.now();
    const personId = this.db
      .transaction(() => {
        this.sql.insertPerson.run(person, now);
        const id = this.sql.personId.get(person) as number;
        for (const r of rows)
          this.sql.insertEmbedding.run(id, r.vector, model.name, model.version, now, r.source, r.crop);
        return id;
      })
      .immediate();
    this.cache = null;
    return { personId, added: rows.length };
  }

  /** Deletes the person and all their embeddings and crops; false when there was nobody of that name. */
  remove(name: string): boolean {
    const person = normalizePersonName(name);
    const removed = this.db
      .transaction(() => {
        const id = this.sql.personId.get(person) as number | undefined;
        if (id === undefined) return false;
        this.sql.deleteEmbeddings.run(id);
        this.sql.deletePerson.run(id);
        return true;
      })
      .immediate();
    if (removed) {
      this.cache = null;
      // The WAL still holds the pages as they were before the delete; fold it in and cut it off.
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    }
    return removed;
  }

  list(): PersonSummary[] {
    const models = new Map<string, string[]>();
    for (const row of this.sql.personModels.all() as {
      name: string;
      model_name: string;
      model_version: string;
    }[]) {
      const label = modelLabel({ name: row.model_name, version: row.model_version });
      models.set(row.name, [...(models.get(row.name) ?? []), label]);
    }
    return (this.sql.people.all() as { name: string; created_at: number; embeddings: number }[]).map(
      (row) => ({
        name: row.name,
        embeddings: row.embeddings,
        models: models.get(row.name) ?? [],
        createdAt: new Date(row.created_at),
      }),
    );
  }

  /** Embeddings made by exactly this model version: vectors of different embedders are not comparable. */
  embeddingsFor(model: ModelRef): StoredEmbedding[] {
    checkModel(model);
    return (
      this.sql.vectors.all(model.name, model.version) as {
        id: number;
        name: string;
        vector: Buffer;
        source: string;
        created_at: number;
      }[]
    ).map((row) => {
      const vector = new Float32Array(EMBEDDING_DIM);
      decodeVector(row.vector, vector, 0);
      return { id: row.id, name: row.name, vector, source: row.source, createdAt: new Date(row.created_at) };
    });
  }

  /**
   * 1:N identification against the people enrolled with `model`: each person scores the best cosine
   * over their embeddings, and the best person is the identity when that score is strictly above
   * `threshold` (the rule the manifest thresholds were measured with).
   */
  identify(embedding: Float32Array, model: ModelRef, threshold: number): Identification {
    if (!Number.isFinite(threshold))
      throw new GalleryError(`identify: threshold ${threshold} is not a number`);
    const { best, runnerUp } = this.rank(embedding, model);
    if (!best) return { identity: null, score: 0 };
    const result: Identification = {
      identity: best.score > threshold ? best.identity : null,
      score: best.score,
    };
    if (runnerUp) result.runnerUp = { identity: runnerUp.identity, score: runnerUp.score };
    return result;
  }

  /**
   * The two people enrolled with `model` who score highest (best cosine over each one's embeddings),
   * with how many embeddings each has: what the open-set rules of runtime/matching/match.ts decide on.
   */
  rank(embedding: Float32Array, model: ModelRef): Ranking {
    if (!(embedding instanceof Float32Array) || embedding.length !== EMBEDDING_DIM)
      throw new GalleryError(`identify: expected a Float32Array of ${EMBEDDING_DIM} values`);
    const { names, starts, matrix } = this.matrixFor(model);
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    let second = -1;
    let secondScore = Number.NEGATIVE_INFINITY;
    for (let p = 0; p < names.length; p++) {
      let personScore = Number.NEGATIVE_INFINITY;
      for (let row = starts[p]; row < starts[p + 1]; row++) {
        const base = row * EMBEDDING_DIM;
        let dot = 0;
        for (let i = 0; i < EMBEDDING_DIM; i++) dot += matrix[base + i] * embedding[i];
        if (dot > personScore) personScore = dot;
      }
      if (personScore > bestScore) {
        second = best;
        secondScore = bestScore;
        best = p;
        bestScore = personScore;
      } else if (personScore > secondScore) {
        second = p;
        secondScore = personScore;
      }
    }
    const match = (p: number, score: number): PersonMatch => ({
      identity: names[p],
      score: clampCosine(score),
      embeddings: starts[p + 1] - starts[p],
    });
    const ranking: Ranking = {};
    if (best >= 0) ranking.best = match(best, bestScore);
    if (second >= 0) ranking.runnerUp = match(second, secondScore);
    return ranking;
  }

  /**
   * Re-computes every embedding not made by `model` from its stored crop with `embed`, in place, and
   * returns how many were converted. All or nothing: it refuses to start while any of them lacks a crop,
   * and writes only after `embed` succeeded for all of them.
   */
  async reembed(model: ModelRef, embed: (crop: Buffer) => Promise<Float32Array>): Promise<number> {
    checkModel(model);
    let converted = 0;
    // Another pass picks up embeddings enrolled with an old model while the embedder was running.
    for (;;) {
      const pending = this.sql.pending.all(model.name, model.version) as PendingRow[];
      if (pending.length === 0) return converted;
      const cropless = pending.filter((row) => !row.has_crop);
      if (cropless.length > 0) {
        const who = [...new Set(cropless.map((row) => row.name))].join(', ');
        throw new GalleryError(
          `cannot re-embed for ${modelLabel(model)}: ${cropless.length} embedding(s) have no stored face crop ` +
            `(${who}); enrol these people again from photos, or remove them, then retry`,
        );
      }
      const vectors: (Buffer | null)[] = [];
      for (const row of pending) {
        // One crop in memory at a time: a large gallery's crops need not fit in RAM together.
        const crop = this.sql.crop.get(row.id) as Buffer | null | undefined;
        if (!crop) {
          vectors.push(null);
          continue;
        }
        const vector = await embed(crop);
        checkEmbedding(vector, `reembed ${row.name}: embedder output`);
        vectors.push(encodeVector(vector));
      }
      converted += this.db
        .transaction(() => {
          let changed = 0;
          pending.forEach((row, i) => {
            const vector = vectors[i];
            if (vector === null) return;
            changed += this.sql.reembedRow.run(
              vector,
              model.name,
              model.version,
              row.id,
              row.model_name,
              row.model_version,
            ).changes;
          });
          return changed;
        })
        .immediate();
      this.cache = null;
    }
  }

  /** A consistent copy of the gallery (SQLite online backup) that replaces `toPath` atomically. */
  async backup(toPath: string): Promise<void> {
    const target = resolve(toPath);
    if (target === resolve(this.path)) throw new GalleryError('backup: target is the gallery itself');
    const tmp = tempPathFor(target);
    try {
      rmSync(tmp, { force: true });
      // Created here so the copy of everyone's face crops is private from its first byte.
      closeSync(openSync(tmp, 'wx', 0o600));
      await this.db.backup(tmp);
      // A -wal left beside an older file of that name would be replayed into the new one.
      rmSync(`${target}-wal`, { force: true });
      rmSync(`${target}-shm`, { force: true });
      commitTempFile(tmp, target);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new GalleryError(`backup of gallery ${this.path} to ${toPath} failed: ${(e as Error).message}`);
    }
  }

  /** Gives a person another name (embeddings, crops and negatives stay theirs); false when there was none. */
  rename(from: string, to: string): boolean {
    const source = normalizePersonName(from);
    const target = normalizePersonName(to);
    const renamed = this.db
      .transaction(() => {
        if (source !== target && this.sql.personId.get(target) !== undefined)
          throw new GalleryError(`cannot rename ${source} to ${target}: ${target} is already enrolled`);
        return this.db.prepare('UPDATE people SET name = ? WHERE name = ?').run(target, source).changes > 0;
      })
      .immediate();
    this.cache = null;
    return renamed;
  }

  /**
   * One stored face crop of the person (packed RGB, CROP_SIZE square), or null: for the device's local web
   * page, which shows who is enrolled. Nothing sends it anywhere else.
   */
  photo(name: string): Buffer | null {
    const row = this.db
      .prepare(
        `SELECT e.crop FROM embeddings e JOIN people p ON p.id = e.person_id
         WHERE p.name = ? AND e.crop IS NOT NULL ORDER BY e.id LIMIT 1`,
      )
      .pluck()
      .get(name) as Buffer | undefined;
    return row ?? null;
  }

  /** The open connection, for the stores that keep their tables in this file (runtime/matching/unknowns.ts). */
  get database(): Database {
    return this.db;
  }

  close(): void {
    this.cache = null;
    if (this.db.open) this.db.close();
  }

  private matrixFor(model: ModelRef): MatrixCache {
    // data_version moves when another connection (e.g. the CLI) commits; our own writes reset the cache.
    const dataVersion = this.sql.dataVersion.get() as number;
    const cached = this.cache;
    if (
      cached &&
      cached.dataVersion === dataVersion &&
      cached.model.name === model.name &&
      cached.model.version === model.version
    )
      return cached;
    checkModel(model);
    const rows = this.sql.vectors.all(model.name, model.version) as { name: string; vector: Buffer }[];
    const matrix = new Float32Array(rows.length * EMBEDDING_DIM);
    const names: string[] = [];
    const starts: number[] = [];
    rows.forEach((row, i) => {
      if (names.at(-1) !== row.name) {
        names.push(row.name);
        starts.push(i);
      }
      decodeVector(row.vector, matrix, i * EMBEDDING_DIM);
    });
    starts.push(rows.length);
    this.cache = {
      model: { name: model.name, version: model.version },
      dataVersion,
      names,
      starts: Int32Array.from(starts),
      matrix,
    };
    return this.cache;
  }
}

function migrate(db: Database, path: string): void {
  db.transaction(() => {
    const tables = db
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all() as string[];
    if (!tables.includes('schema_version')) {
      if (tables.length > 0)
        throw new GalleryError(
          `${path} is a SQLite database but not a facegate gallery (tables: ${tables.join(', ')})`,
        );
      db.exec(
        'CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, migrated_at INTEGER NOT NULL);' +
          'INSERT INTO schema_version VALUES (1, 0, 0)',
      );
    }
    const version = db.prepare('SELECT version FROM schema_version').pluck().get() as number;
    if (version > SCHEMA_VERSION)
      throw new GalleryError(
        `gallery ${path} has schema version ${version}, newer than this facegate understands (${SCHEMA_VERSION})`,
      );
    for (let v = version; v < SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v]);
      db.prepare('UPDATE schema_version SET version = ?, migrated_at = ?').run(v + 1, Date.now());
    }
  }).immediate();
}
