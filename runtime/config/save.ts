// A config rewritten by a remote config/set must survive power loss at any instant: either the old file or
// the new one is on disk afterwards, never a truncated mix, or the camera would not boot.

import { stat } from 'node:fs/promises';
import { stringify } from 'yaml';
import { writeFileAtomic } from '../util/atomic-file.ts';
import type { Config } from './schema.ts';
import { ConfigError, validateConfig } from './validate.ts';

/** Writes `config` as YAML with writeFileAtomic. Refuses an invalid config. */
export async function saveConfigAtomic(path: string, config: Config): Promise<void> {
  const result = validateConfig(config);
  if (!result.ok) {
    throw new ConfigError(
      `Refusing to save an invalid configuration:\n  ${result.errors.join('\n  ')}`,
      result.errors,
    );
  }
  // The file may hold the broker password: keep an existing file's mode, otherwise owner-only.
  const mode = await stat(path).then(
    (s) => s.mode & 0o777,
    () => 0o600,
  );
  const text = `# Written by facegate at ${new Date().toISOString()}; comments are not preserved.\n${stringify(config)}`;
  writeFileAtomic(path, text, { mode });
}
