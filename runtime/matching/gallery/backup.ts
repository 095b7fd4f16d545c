// Backups of the gallery file, private and complete: a backup holds everyone's face crops.

import { closeSync, openSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Database } from 'better-sqlite3';
import { commitTempFile, tempPathFor } from '../../util/atomic-file.ts';
import { GalleryError } from './records.ts';

/** A consistent copy of the gallery at `galleryPath`, open as `db` (SQLite online backup), that replaces `toPath` atomically. */
export async function backupGallery(db: Database, galleryPath: string, toPath: string): Promise<void> {
  const target = resolve(toPath);
  if (target === resolve(galleryPath)) throw new GalleryError('backup: target is the gallery itself');
  const tmp = tempPathFor(target);
  try {
    rmSync(tmp, { force: true });
    // Created here so the copy of everyone's face crops is private from its first byte.
    closeSync(openSync(tmp, 'wx', 0o600));
    await db.backup(tmp);
    // A -wal left beside an older file of that name would be replayed into the new one.
    rmSync(`${target}-wal`, { force: true });
    rmSync(`${target}-shm`, { force: true });
    commitTempFile(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new GalleryError(`backup of gallery ${galleryPath} to ${toPath} failed: ${(e as Error).message}`);
  }
}
