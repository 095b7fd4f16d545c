// The scheduled gallery backup (schedules.galleryBackup) and its retention. It owns nothing running:
// the scheduler calls backup(), so there is no start/stop.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Gallery } from '../matching/gallery/index.ts';

/** Gallery backups kept in schedules.backupDir; older ones are deleted after each backup. */
const BACKUPS_KEPT = 7;
const BACKUP_FILE = /^gallery-.+\.db$/;

export interface GalleryBackupsOptions {
  gallery: Gallery;
  /** schedules.backupDir, read at each backup so config/set applies from the next one. */
  dir: () => string;
}

export class GalleryBackups {
  constructor(private readonly opts: GalleryBackupsOptions) {}

  /** A consistent copy to <dir>/gallery-<UTC time>.db; the BACKUPS_KEPT newest stay. */
  async backup(): Promise<void> {
    const dir = resolve(this.opts.dir());
    mkdirSync(dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    await this.opts.gallery.backup(join(dir, `gallery-${stamp}.db`));
    // The stamp sorts by time, so the oldest come first.
    const backups = readdirSync(dir)
      .filter((f) => BACKUP_FILE.test(f))
      .sort();
    for (const old of backups.slice(0, -BACKUPS_KEPT)) rmSync(join(dir, old), { force: true });
  }
}
