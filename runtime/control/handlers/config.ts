// config/get and config/set. A config/set is all or nothing: the merged configuration is validated in
// full before the file is touched, written atomically, and only then handed to the running components.
// Settings that came from FACEGATE_* variables stay out of it: the file keeps what it had for them (so a
// password from the environment never lands on disk), and a patch that would change one is refused, since
// the environment would override it again at the next start. Settings that decide who is trusted, and
// file paths, are never changed remotely (config/protected.ts): such a patch is refused whole.

import {
  type ChangeClassification,
  type Config,
  carryEnvOverrides,
  classifyChange,
  envOverridesTouchedBy,
  mergeConfig,
  protectedChanges,
  REDACTED,
  redactSecrets,
  saveConfigAtomic,
  validateConfig,
  withoutEnvOverrides,
} from '../../config/index.ts';
import { formatPath, isPlainObject, type PathSegment } from '../../config/util.ts';
import { SECRET_KEY } from '../../config/validate.ts';
import type { Awaitable } from '../../types.ts';
import type { CommandHandlers } from '../api.ts';

export interface ConfigPort {
  /** The accepted configuration: as loaded at start, then as written by the last config/set. */
  current(): Config;
  /** The configuration file config/set rewrites. */
  readonly path: string;
  /** Throws when the device cannot run `config` (what a schema cannot know, e.g. the models' ranges). */
  check?(config: Config): void;
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
      const fromEnv = envOverridesTouchedBy(before, patch);
      if (fromEnv.length > 0) {
        const which = fromEnv.map((o) => `${formatPath(o.path)} (${o.variable})`).join(', ');
        throw new Error(
          `${which}: set by the environment, which overrides the configuration file at every start; change the environment instead`,
        );
      }
      const result = validateConfig(mergeConfig(before, patch));
      if (!result.ok) throw new Error(`invalid configuration: ${result.errors.join('; ')}`);
      const refused = protectedChanges(before, result.config);
      if (refused.length > 0) throw new Error(`${refused.join('; ')} (docs/security.md)`);
      const next = carryEnvOverrides(before, result.config);
      port.check?.(next);
      const changes = classifyChange(before, next);
      if (changes.live.length + changes.restartRequired.length > 0) {
        await saveConfigAtomic(port.path, withoutEnvOverrides(next));
        await port.applyLive(next, changes);
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
