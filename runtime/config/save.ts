// A config rewritten by a remote config/set must survive power loss at any instant: either the old file or
// the new one is on disk afterwards, never a truncated mix, or the camera would not boot.

import { randomBytes } from 'node:crypto';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { Config } from './schema.ts';
import { ConfigError, validateConfig } from './validate.ts';

/** Writes `config` as YAML via temp file + fsync + rename + directory fsync. Refuses an invalid config. */
export async function saveConfigAtomic(path: string, config: Config): Promise<void> {
  const result = validateConfig(config);
  if (!result.ok) {
    throw new ConfigError(
      `Refusing to save an invalid configuration:\n  ${result.errors.join('\n  ')}`,
      result.errors,
    );
  }
  const target = resolve(path);
  const dir = dirname(target);
  const temp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  // The file may hold the broker password: keep an existing file's mode, otherwise owner-only.
  const mode = await stat(target).then(
    (s) => s.mode & 0o777,
    () => 0o600,
  );
  const text = `# Written by facegate at ${new Date().toISOString()}; comments are not preserved.\n${stringify(config)}`;
  try {
    const file = await open(temp, 'wx', mode);
    try {
      await file.chmod(mode);
      await file.writeFile(text, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  // The rename itself is only durable once the directory entry is flushed.
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}
