// The gallery file's schema, as the steps that build it: step i takes a file from version i to i + 1, and
// each step runs in one transaction with its version bump, so a file is always at one whole version.
// A released step is never edited (files in the field were built by it); a change is a new step.

import type { Database } from 'better-sqlite3';
import { CROP_BYTES, EMBEDDING_DIM, GalleryError } from './records.ts';

// A face held against a person, in `embeddings` (enrolled) and `negatives` (rejected as them). The text
// is spliced into CREATE TABLE as it stands, and SQLite keeps that text in the file's schema.
const PERSON_FACE_COLUMNS = `id INTEGER PRIMARY KEY,
     person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
     vector BLOB NOT NULL CHECK (length(vector) = ${EMBEDDING_DIM * 4}),
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     source TEXT NOT NULL`;

const STEPS: readonly string[] = [
  `CREATE TABLE people (
     id INTEGER PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE embeddings (
     ${PERSON_FACE_COLUMNS},
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
     ${PERSON_FACE_COLUMNS}
   );
   CREATE INDEX negatives_by_person ON negatives(person_id);`,
];

export const SCHEMA_VERSION = STEPS.length;

/** Brings the gallery at `path` (open as `db`) to SCHEMA_VERSION, creating its tables in an empty file. */
export function migrate(db: Database, path: string): void {
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
      db.exec(STEPS[v]);
      db.prepare('UPDATE schema_version SET version = ?, migrated_at = ?').run(v + 1, Date.now());
    }
  }).immediate();
}
