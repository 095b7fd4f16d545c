// Small helpers shared by the config modules; paths are printed the same way everywhere (`cameras[0].fps`).

export type PathSegment = string | number;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function formatPath(path: readonly PathSegment[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

/** Own-property lookup, so keys such as `__proto__` or `constructor` never reach the prototype. */
export function getOwn(value: unknown, key: PathSegment): unknown {
  if (Array.isArray(value)) return typeof key === 'number' ? value[key] : undefined;
  if (isPlainObject(value) && Object.hasOwn(value, key)) return value[key];
  return undefined;
}

/** Defines rather than assigns, so a `__proto__` key from YAML or MQTT stays a plain (and rejected) field. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export function getAt(root: unknown, path: readonly PathSegment[]): unknown {
  return path.reduce<unknown>((node, key) => getOwn(node, key), root);
}
