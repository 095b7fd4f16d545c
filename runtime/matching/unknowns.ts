// Faces nobody recognised, grouped and kept, and faces an operator rejected, in the gallery's database.
//
// Unknown visitors: the face of every track that ends `unknown` joins the nearest unknown visitor whose
// centroid it matches above the recognition threshold, or becomes a new one (`unknown-17`), so the same
// stranger keeps one id across visits and restarts. Each keeps its `facesPerUnknown` best crops (by
// quality) so an operator can look at them and enrol the visitor under a name; the embeddings go with the
// crops, so the gallery can re-embed them for a new model like any enrolled face.
//
// Bounded: at most `maxUnknowns` visitors of `facesPerUnknown` crops (67.5 KB each), and a visitor not seen
// for `retentionDays` is forgotten. When full, the least-seen visitor goes first, the longest unseen among
// equals. Like the gallery's crops, none of this leaves the device through this API except to the local
// web page and the embedder; deletions run with secure_delete (set by Gallery.open).
//
// Negatives: a face rejected as person P (face/reject of an event) is stored against P; the decision then
// treats it as a competitor of P (runtime/matching/match.ts: P must beat it by the margin), so that face, and
// faces like it, are no longer taken for P.
import type { Database } from 'better-sqlite3';
import type { ModelRef } from '../events/schema.ts';
import { normalize } from '../vision/embedder.ts';
import type { Gallery } from './gallery/index.ts';
import {
  CROP_BYTES,
  checkEmbedding,
  decodeVector,
  EMBEDDING_DIM,
  encodeVector,
  GalleryError,
  normalizePersonName,
} from './gallery/records.ts';

export interface UnknownOptions {
  maxUnknowns: number;
  facesPerUnknown: number;
  retentionDays: number;
}

export interface Sighting {
  /** Unit-length embedding of `crop`. */
  embedding: Float32Array;
  /** CROP_BYTES of packed RGB: the aligned face. */
  crop: Uint8Array;
  /** 0..1 (runtime/vision/quality.ts qualityScore); the best crops are kept. */
  quality: number;
  camera: string;
  /** Date.now() clock. */
  timeMs: number;
}

export interface UnknownSummary {
  id: string;
  /** ISO 8601. */
  firstSeen: string;
  lastSeen: string;
  /** Tracks announced as this visitor. */
  visits: number;
  /** Crops kept. */
  faces: number;
  lastCamera: string;
}

const PREFIX = 'unknown-';
/** Most sightings a centroid averages over: later faces still move it, a long history does not freeze it. */
const CENTROID_MEMORY = 10;

/** `unknown-17` -> 17, or a GalleryError naming what is wrong. */
export function parseUnknownId(id: unknown): number {
  const match = typeof id === 'string' ? /^unknown-([1-9][0-9]{0,15})$/.exec(id) : null;
  if (!match) throw new GalleryError(`${JSON.stringify(id)} is not an unknown visitor id (unknown-<number>)`);
  return Number(match[1]);
}

interface Centroid {
  id: number;
  vector: Float32Array;
  visits: number;
}

interface UnknownRow {
  id: number;
  first_seen: number;
  last_seen: number;
  visits: number;
  faces: number;
  last_camera: string;
}

function prepare(db: Database) {
  return {
    centroids: db.prepare(
      'SELECT id, centroid, visits FROM unknowns WHERE model_name = ? AND model_version = ? ORDER BY id',
    ),
    insert: db.prepare(
      `INSERT INTO unknowns (centroid, model_name, model_version, first_seen, last_seen, visits, last_camera)
       VALUES (?, ?, ?, ?, ?, 1, ?)`,
    ),
    update: db.prepare(
      'UPDATE unknowns SET centroid = ?, last_seen = ?, visits = visits + 1, last_camera = ? WHERE id = ?',
    ),
    insertFace: db.prepare(
      'INSERT INTO unknown_faces (unknown_id, vector, crop, quality, seen_at) VALUES (?, ?, ?, ?, ?)',
    ),
    trimFaces: db.prepare(
      `DELETE FROM unknown_faces WHERE unknown_id = ? AND id NOT IN
         (SELECT id FROM unknown_faces WHERE unknown_id = ? ORDER BY quality DESC, seen_at DESC LIMIT ?)`,
    ),
    expired: db.prepare('DELETE FROM unknowns WHERE last_seen < ?'),
    overflow: db.prepare(
      `DELETE FROM unknowns WHERE id IN
         (SELECT id FROM unknowns ORDER BY visits ASC, last_seen ASC LIMIT max(0, (SELECT count(*) FROM unknowns) - ?))`,
    ),
    list: db.prepare(
      `SELECT u.id, u.first_seen, u.last_seen, u.visits, u.last_camera, count(f.id) AS faces
       FROM unknowns u LEFT JOIN unknown_faces f ON f.unknown_id = u.id GROUP BY u.id ORDER BY u.last_seen DESC`,
    ),
    faces: db.prepare(
      `SELECT f.vector, f.crop, u.model_name, u.model_version FROM unknown_faces f JOIN unknowns u ON u.id = f.unknown_id
       WHERE f.unknown_id = ? ORDER BY f.quality DESC, f.seen_at DESC`,
    ),
    remove: db.prepare('DELETE FROM unknowns WHERE id = ?'),
    personId: db.prepare('SELECT id FROM people WHERE name = ?').pluck(),
    insertNegative: db.prepare(
      `INSERT INTO negatives (person_id, vector, model_name, model_version, created_at, source)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    negatives: db.prepare(
      `SELECT n.vector FROM negatives n JOIN people p ON p.id = n.person_id
       WHERE p.name = ? AND n.model_name = ? AND n.model_version = ?`,
    ),
  };
}

export class UnknownVisitors {
  private readonly db: Database;
  private readonly sql: ReturnType<typeof prepare>;
  private centroids: { model: ModelRef; list: Centroid[] } | null = null;

  constructor(private readonly gallery: Gallery) {
    this.db = gallery.database;
    this.sql = prepare(this.db);
  }

  /** Files the face of a track nobody recognised under its visitor (new or seen before); returns the id. */
  observe(sighting: Sighting, model: ModelRef, threshold: number, options: UnknownOptions): string {
    checkEmbedding(sighting.embedding, 'unknown visitor');
    if (!(sighting.crop instanceof Uint8Array) || sighting.crop.length !== CROP_BYTES)
      throw new GalleryError(`unknown visitor: crop must be ${CROP_BYTES} bytes`);
    const nearest = this.nearest(sighting.embedding, model);
    const vector = encodeVector(sighting.embedding);
    const id = this.db
      .transaction(() => {
        let id: number;
        if (nearest && nearest.score > threshold) {
          const { centroid } = nearest;
          const weight = Math.min(centroid.visits, CENTROID_MEMORY);
          const moved = normalize(centroid.vector.map((v, i) => v * weight + sighting.embedding[i]));
          this.sql.update.run(encodeVector(moved), sighting.timeMs, sighting.camera, centroid.id);
          id = centroid.id;
        } else {
          const { timeMs, camera } = sighting;
          const inserted = this.sql.insert.run(vector, model.name, model.version, timeMs, timeMs, camera);
          id = Number(inserted.lastInsertRowid);
        }
        this.sql.insertFace.run(id, vector, sighting.crop, sighting.quality, sighting.timeMs);
        this.sql.trimFaces.run(id, id, options.facesPerUnknown);
        this.pruneInTransaction(options, sighting.timeMs);
        return id;
      })
      .immediate();
    this.centroids = null;
    return `${PREFIX}${id}`;
  }

  /** Forgets visitors past their retention and the least seen beyond maxUnknowns; returns how many. */
  prune(options: UnknownOptions, nowMs: number): number {
    const removed = this.db.transaction(() => this.pruneInTransaction(options, nowMs)).immediate();
    if (removed > 0) this.centroids = null;
    return removed;
  }

  list(): UnknownSummary[] {
    return (this.sql.list.all() as UnknownRow[]).map((row) => ({
      id: `${PREFIX}${row.id}`,
      firstSeen: new Date(row.first_seen).toISOString(),
      lastSeen: new Date(row.last_seen).toISOString(),
      visits: row.visits,
      faces: row.faces,
      lastCamera: row.last_camera,
    }));
  }

  /** The kept crops of a visitor, best first (packed RGB, CROP_SIZE square): for the local page only. */
  crops(id: string): Buffer[] {
    return (this.sql.faces.all(parseUnknownId(id)) as { crop: Buffer }[]).map((row) => row.crop);
  }

  /** Forgets a visitor and their crops; false when there was none of that id. */
  dismiss(id: string): boolean {
    const removed = this.sql.remove.run(parseUnknownId(id)).changes > 0;
    if (removed) this.centroids = null;
    return removed;
  }

  /**
   * Enrols the visitor's kept faces as `name` (a new person or more faces of one), and forgets the visitor,
   * in one transaction. Their embeddings must be of `model`, the one running.
   */
  enrollAs(id: string, name: string, model: ModelRef): { added: number } {
    const key = parseUnknownId(id);
    const person = normalizePersonName(name);
    const result = this.db
      .transaction(() => {
        const faces = this.sql.faces.all(key) as {
          vector: Buffer;
          crop: Buffer;
          model_name: string;
          model_version: string;
        }[];
        if (faces.length === 0) throw new GalleryError(`no unknown visitor ${id}`);
        if (faces[0].model_name !== model.name || faces[0].model_version !== model.version)
          throw new GalleryError(
            `${id} was seen with ${faces[0].model_name}@${faces[0].model_version}, not the running ${model.name}@${model.version}`,
          );
        const entries = faces.map((face) => {
          const embedding = new Float32Array(EMBEDDING_DIM);
          decodeVector(face.vector, embedding, 0);
          return { embedding, crop: new Uint8Array(face.crop), source: id };
        });
        // Nested: better-sqlite3 runs the gallery's own transaction as a savepoint of this one.
        const { added } = this.gallery.enroll(person, entries, model);
        this.sql.remove.run(key);
        return { added };
      })
      .immediate();
    this.centroids = null;
    return result;
  }

  /** Stores faces an operator said are not `name`; returns how many were added. */
  addNegatives(name: string, embeddings: readonly Float32Array[], model: ModelRef, source: string): number {
    const person = normalizePersonName(name);
    embeddings.forEach((e, i) => {
      checkEmbedding(e, `negative ${i} of ${person}`);
    });
    return this.db
      .transaction(() => {
        const personId = this.sql.personId.get(person) as number | undefined;
        if (personId === undefined) throw new GalleryError(`nobody called ${person} is enrolled`);
        const now = Date.now();
        for (const e of embeddings)
          this.sql.insertNegative.run(personId, encodeVector(e), model.name, model.version, now, source);
        return embeddings.length;
      })
      .immediate();
  }

  /** The best cosine of `embedding` to the faces rejected as `name` (-Infinity when there are none). */
  negativeScore(name: string, embedding: Float32Array, model: ModelRef): number {
    let best = Number.NEGATIVE_INFINITY;
    const vector = new Float32Array(EMBEDDING_DIM);
    for (const row of this.sql.negatives.all(name, model.name, model.version) as { vector: Buffer }[]) {
      decodeVector(row.vector, vector, 0);
      let dot = 0;
      for (let i = 0; i < EMBEDDING_DIM; i++) dot += vector[i] * embedding[i];
      if (dot > best) best = dot;
    }
    return best;
  }

  private nearest(embedding: Float32Array, model: ModelRef): { centroid: Centroid; score: number } | null {
    const cached = this.centroids;
    const list =
      cached && cached.model.name === model.name && cached.model.version === model.version
        ? cached.list
        : this.loadCentroids(model);
    let best: { centroid: Centroid; score: number } | null = null;
    for (const centroid of list) {
      let dot = 0;
      for (let i = 0; i < EMBEDDING_DIM; i++) dot += centroid.vector[i] * embedding[i];
      if (best === null || dot > best.score) best = { centroid, score: dot };
    }
    return best;
  }

  private loadCentroids(model: ModelRef): Centroid[] {
    const list = (
      this.sql.centroids.all(model.name, model.version) as { id: number; centroid: Buffer; visits: number }[]
    ).map((row) => {
      const vector = new Float32Array(EMBEDDING_DIM);
      decodeVector(row.centroid, vector, 0);
      return { id: row.id, vector, visits: row.visits };
    });
    this.centroids = { model: { ...model }, list };
    return list;
  }

  private pruneInTransaction(options: UnknownOptions, nowMs: number): number {
    const cutoff = nowMs - options.retentionDays * 86_400_000;
    return this.sql.expired.run(cutoff).changes + this.sql.overflow.run(options.maxUnknowns).changes;
  }
}
