// The enrolled people: one SQLite file, the device's only record of who may be recognised. This class is
// the gallery's public face; its parts are the file (store.ts, migrations.ts), what may be stored
// (records.ts), matching (matcher.ts), re-embedding (reembed.ts) and backups (backup.ts).
//
// Privacy: the aligned face crop behind each embedding is stored so the gallery can be re-embedded when
// the embedder changes without asking everyone to enrol again. A crop is biometric data, so it never
// leaves the device through this API: list() and embeddingsFor() do not return crops, reembed() hands them
// only to the local embedder, photo() serves only the local web page. remove() runs with secure_delete
// and a WAL truncation so an erased person's crop is not left in free pages of the file.

import type { Database } from 'better-sqlite3';
import type { ModelRef } from '../../events/schema.ts';
import { backupGallery } from './backup.ts';
import { type Identification, Matcher, type Ranking } from './matcher.ts';
import {
  CROP_BYTES,
  CROP_SIZE,
  checkEmbedding,
  checkModel,
  decodeVector,
  EMBEDDING_DIM,
  encodeVector,
  GalleryError,
  modelLabel,
  normalizePersonName,
} from './records.ts';
import { reembed } from './reembed.ts';
import { openGalleryDatabase } from './store.ts';

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

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(db: Database) {
  return {
    insertPerson: db.prepare<[name: string, createdAt: number]>(
      'INSERT INTO people (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
    ),
    personId: db.prepare<[name: string], number>('SELECT id FROM people WHERE name = ?').pluck(),
    insertEmbedding: db.prepare(
      `INSERT INTO embeddings (person_id, vector, model_name, model_version, created_at, source, crop)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteEmbeddings: db.prepare<[personId: number]>('DELETE FROM embeddings WHERE person_id = ?'),
    deletePerson: db.prepare<[personId: number]>('DELETE FROM people WHERE id = ?'),
    people: db.prepare<[], { name: string; created_at: number; embeddings: number }>(
      `SELECT p.name, p.created_at, count(e.id) AS embeddings
       FROM people p LEFT JOIN embeddings e ON e.person_id = p.id GROUP BY p.id ORDER BY p.name`,
    ),
    personModels: db.prepare<[], { name: string; model_name: string; model_version: string }>(
      `SELECT DISTINCT p.name, e.model_name, e.model_version
       FROM embeddings e JOIN people p ON p.id = e.person_id ORDER BY e.model_name, e.model_version`,
    ),
    vectors: db.prepare<
      [modelName: string, modelVersion: string],
      { id: number; name: string; vector: Buffer; source: string; created_at: number }
    >(
      `SELECT e.id, p.name, e.vector, e.source, e.created_at
       FROM embeddings e JOIN people p ON p.id = e.person_id
       WHERE e.model_name = ? AND e.model_version = ? ORDER BY p.name, e.id`,
    ),
  };
}

export class Gallery {
  private readonly sql: Statements;
  private readonly matcher: Matcher;

  private constructor(
    readonly path: string,
    private readonly db: Database,
  ) {
    this.sql = prepareStatements(db);
    this.matcher = new Matcher(db, this.sql.vectors);
  }

  /** Opens (creating when missing) the gallery at `path`, checking its integrity and migrating its schema. */
  static open(path: string): Gallery {
    return new Gallery(path, openGalleryDatabase(path));
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
    this.matcher.forget();
    return { personId, added: rows.length };
  }

  /** Deletes the person and all their embeddings and crops; false when there was nobody of that name. */
  remove(name: string): boolean {
    const person = normalizePersonName(name);
    const removed = this.db
      .transaction(() => {
        const id = this.sql.personId.get(person);
        if (id === undefined) return false;
        this.sql.deleteEmbeddings.run(id);
        this.sql.deletePerson.run(id);
        return true;
      })
      .immediate();
    if (removed) {
      this.matcher.forget();
      // The WAL still holds the pages as they were before the delete; fold it in and cut it off.
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    }
    return removed;
  }

  list(): PersonSummary[] {
    const models = new Map<string, string[]>();
    for (const row of this.sql.personModels.all()) {
      const label = modelLabel({ name: row.model_name, version: row.model_version });
      models.set(row.name, [...(models.get(row.name) ?? []), label]);
    }
    return this.sql.people.all().map((row) => ({
      name: row.name,
      embeddings: row.embeddings,
      models: models.get(row.name) ?? [],
      createdAt: new Date(row.created_at),
    }));
  }

  /** Embeddings made by exactly this model version: vectors of different embedders are not comparable. */
  embeddingsFor(model: ModelRef): StoredEmbedding[] {
    checkModel(model);
    return this.sql.vectors.all(model.name, model.version).map((row) => {
      const vector = new Float32Array(EMBEDDING_DIM);
      decodeVector(row.vector, vector, 0);
      return { id: row.id, name: row.name, vector, source: row.source, createdAt: new Date(row.created_at) };
    });
  }

  /** See Matcher.identify: the best person when their score is strictly above `threshold`. */
  identify(embedding: Float32Array, model: ModelRef, threshold: number): Identification {
    return this.matcher.identify(embedding, model, threshold);
  }

  /** See Matcher.rank: the two people enrolled with `model` who score highest. */
  rank(embedding: Float32Array, model: ModelRef): Ranking {
    return this.matcher.rank(embedding, model);
  }

  /** Re-computes every embedding not made by `model` from its stored crop; see reembed.ts. */
  reembed(model: ModelRef, embed: (crop: Buffer) => Promise<Float32Array>): Promise<number> {
    return reembed(this.db, this.matcher, model, embed);
  }

  /** A consistent copy of the gallery (SQLite online backup) that replaces `toPath` atomically. */
  backup(toPath: string): Promise<void> {
    return backupGallery(this.db, this.path, toPath);
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
    this.matcher.forget();
    return renamed;
  }

  /**
   * One stored face crop of the person (packed RGB, CROP_SIZE square), or null: for the device's local web
   * page, which shows who is enrolled. Nothing sends it anywhere else.
   */
  photo(name: string): Buffer | null {
    const row = this.db
      .prepare<[name: string], Buffer>(
        `SELECT e.crop FROM embeddings e JOIN people p ON p.id = e.person_id
         WHERE p.name = ? AND e.crop IS NOT NULL ORDER BY e.id LIMIT 1`,
      )
      .pluck()
      .get(name);
    return row ?? null;
  }

  /** The open connection, for the stores that keep their tables in this file (runtime/matching/unknowns.ts). */
  get database(): Database {
    return this.db;
  }

  close(): void {
    this.matcher.forget();
    if (this.db.open) this.db.close();
  }
}
