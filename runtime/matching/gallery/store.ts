// Opening the gallery's SQLite file, the one connection every part of the gallery writes through.
//
// Durability: WAL with synchronous=FULL, so a write is on disk when its call returns (a power cut keeps
// it, not just a process crash), and every write is one IMMEDIATE transaction, so a crash leaves a person
// wholly enrolled or absent. IMMEDIATE takes the write lock up front: a second process (the CLI enrolling
// while the daemon runs) then waits on busy_timeout instead of failing a lock upgrade half-way.
//
// Privacy: new gallery files are created 0600 (SQLite gives its -wal/-shm files the database's mode), and
// secure_delete is on so deleted rows (a removed person's crops) are zeroed rather than left in free pages.

import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Sqlite, { type Database } from 'better-sqlite3';
import { migrate } from './migrations.ts';
import { GalleryError } from './records.ts';

/** Opens (creating when missing) the gallery file at `path`, checking its integrity and migrating its schema. */
export function openGalleryDatabase(path: string): Database {
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
    return db;
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
