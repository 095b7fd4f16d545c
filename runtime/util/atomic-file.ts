// Crash-safe file replacement: write a temp file beside the target, fsync it, rename over the target,
// fsync the directory. After a power cut the target is either the old or the new content, whole.
// Synchronous on purpose: every caller writes a small file (config, key file, pointer, ack) or holds
// no event-loop work that a few fsyncs would delay.
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** The new file's mode, exactly (not masked by the umask); default 0o644 less the umask. */
  mode?: number;
}

export function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  opts: AtomicWriteOptions = {},
): void {
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, 'w', opts.mode ?? 0o644);
    try {
      if (opts.mode !== undefined) fchmodSync(fd, opts.mode);
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      let offset = 0;
      while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } finally {
      closeSync(fd);
    }
    commitTempFile(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** The temp file beside `path` that writeFileAtomic uses (per process, so two writers never share one). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
}

/** The second half of writeFileAtomic, for a temp file something else wrote (a SQLite backup). */
export function commitTempFile(tmp: string, path: string): void {
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
