// JSON Merge Patch (RFC 7396): objects merge, arrays and scalars replace, null removes the key.
// Removal matters because several settings mean "off" or "automatic" when absent (mqtt.url, schedules).

import { isPlainObject, setOwn } from './util.ts';

/** Returns a new value; neither input is modified. The result is unvalidated. */
export function mergeConfig(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return structuredClone(patch);
  const target = isPlainObject(base) ? structuredClone(base) : {};
  applyPatch(target, patch);
  return target;
}

function applyPatch(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete target[key];
      continue;
    }
    const current = Object.hasOwn(target, key) ? target[key] : undefined;
    if (isPlainObject(value)) {
      const next = isPlainObject(current) ? current : {};
      applyPatch(next, value);
      setOwn(target, key, next);
    } else {
      setOwn(target, key, structuredClone(value));
    }
  }
}
