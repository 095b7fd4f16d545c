// config/get and config/set. A config/set is all or nothing: the merged configuration is validated in
// full before the file is touched, written atomically, and only then handed to the running components.

import {
  type ChangeClassification,
  type Config,
  classifyChange,
  mergeConfig,
  REDACTED,
  redactSecrets,
  saveConfigAtomic,
  validateConfig,
} from '../../config/index.ts';
import { formatPath, isPlainObject, type PathSegment } from '../../config/util.ts';
import { SECRET_KEY } from '../../config/validate.ts';
import type { Awaitable, CommandHandlers } from '../api.ts';

export interface ConfigPort {
  /** The accepted configuration: as loaded at start, then as written by the last config/set. */
  current(): Config;
  /** The configuration file config/set rewrites. */
  readonly path: string;
  /**
   * Called once `config` is on disk: from now on current() must return it, and the settings in
   * `changes.live` must take effect in place (the others wait for a restart).
   */
  applyLive(config: Config, changes: ChangeClassification): Awaitable<void>;
}

export function configHandlers(port: ConfigPort): Pick<CommandHandlers, 'config/get' | 'config/set'> {
  return {
    'config/get': () => ({ config: redactSecrets(port.current()) }),
    'config/set': async ({ config: patch }) => {
      const placeholders = redactedValues(patch, []);
      if (placeholders.length > 0) {
        throw new Error(
          `${placeholders.join(', ')}: '${REDACTED}' is the redaction placeholder from config/get; send the real value or leave the field out`,
        );
      }
      const before = port.current();
      const result = validateConfig(mergeConfig(before, patch));
      if (!result.ok) throw new Error(`invalid configuration: ${result.errors.join('; ')}`);
      const changes = classifyChange(before, result.config);
      if (changes.live.length + changes.restartRequired.length > 0) {
        await saveConfigAtomic(port.path, result.config);
        await port.applyLive(result.config, changes);
      }
      return { applied: changes.live, restart_required: changes.restartRequired };
    },
  };
}

// A config/get answer edited and sent back would otherwise replace a secret with the placeholder: a
// secret field, or the credentials in a URL (arrays such as cameras are replaced whole by a merge).
function redactedValues(value: unknown, path: PathSegment[]): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => redactedValues(item, [...path, i]));
  if (isPlainObject(value)) {
    return Object.entries(value).flatMap(([key, v]) =>
      SECRET_KEY.test(key) && v === REDACTED
        ? [formatPath([...path, key])]
        : redactedValues(v, [...path, key]),
    );
  }
  const inUrl =
    typeof value === 'string' && (value.includes(`:${REDACTED}@`) || value.includes(`=${REDACTED}`));
  return inUrl ? [formatPath(path)] : [];
}
