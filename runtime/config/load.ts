// The effective configuration is layered: configs/default.yaml <- configs/boards/<board>.yaml <- user file
// <- FACEGATE_* environment variables. Validation runs once, on the merged result, and each problem is
// traced back to the layer that set the offending value so the message says which file to fix.

import { readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { CONFIG_DIR, PACKAGE_ROOT } from '../paths.ts';
import { CONFIG_JSON_SCHEMA as schema } from './json-schema.ts';
import { mergeConfig } from './merge.ts';
import type { Config } from './schema.ts';
import { formatPath, getAt, getOwn, isPlainObject, type PathSegment, setOwn } from './util.ts';
import { ConfigError, findProblems, formatProblem } from './validate.ts';

export { CONFIG_DIR };

const BOARD_DIR = join(CONFIG_DIR, 'boards');
const ENV_PREFIX = 'FACEGATE_';
const BOARD_VAR = 'FACEGATE_BOARD';

/**
 * The FACEGATE_* variables that are not configuration overrides, so loadConfig leaves them alone: the
 * board profile, and the folders and switches of the tools around the runtime (model building, bench, eval,
 * tests, the native build). Any other FACEGATE_* name must name a setting, so a typo is an error. Each is
 * described in docs/config.md; a new such variable belongs in both places.
 */
export const NON_CONFIG_ENV_VARS: readonly string[] = [
  BOARD_VAR,
  'FACEGATE_DATA',
  'FACEGATE_MODELS_DIR',
  'FACEGATE_CALIB_LIMIT',
  'FACEGATE_SKIP_NATIVE',
  'FACEGATE_BUILD_JOBS',
  'FACEGATE_BUILD_VERBOSE',
  // Set by facegate.service: the probation marker a new release removes once ready (release.sh).
  'FACEGATE_RELEASE_PENDING',
  // The deploy scripts' own switches (bundle.sh, provision.sh, release.sh).
  'FACEGATE_BUNDLE_CACHE',
  'FACEGATE_DT_MODEL',
  'FACEGATE_OS_RELEASE',
  'FACEGATE_ROOT',
  'FACEGATE_PROBATION_SECONDS',
  'FACEGATE_MAX_STARTS',
  'FACEGATE_ALLOW_UNSIGNED',
  // Knobs of the reliability suite and the page's browser test.
  'FACEGATE_SOAK_SECONDS',
  'FACEGATE_FUZZ_CASES',
  'FACEGATE_FUZZ_SEED',
  'FACEGATE_CRASH_SEED',
  'FACEGATE_OUTAGE_SECONDS',
  'FACEGATE_FLEET_DEVICES',
  'FACEGATE_SCREENSHOTS',
];

export interface LoadConfigOptions {
  /** User YAML file, merged over the defaults and the board profile. */
  file?: string;
  /** Board profile: a file name in configs/boards without `.yaml`. Defaults to $FACEGATE_BOARD. */
  board?: string;
  /** Where FACEGATE_* overrides are read from (except NON_CONFIG_ENV_VARS); defaults to process.env. */
  env?: Record<string, string | undefined>;
}

interface Layer {
  name: string;
  data: Record<string, unknown>;
}

interface EnvAssignment {
  variable: string;
  path: PathSegment[];
  /** undefined removes the key, like null in a YAML layer. */
  value: unknown;
}

/** Loads, merges and validates the configuration; throws ConfigError naming every problem and its source. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const board = options.board ?? (env[BOARD_VAR] || undefined);
  const layers = [bundled(readLayer(join(CONFIG_DIR, 'default.yaml')))];
  if (board) layers.push(bundled(readLayer(boardFile(board))));
  if (options.file) layers.push(readLayer(resolve(options.file)));

  let merged: Record<string, unknown> = {};
  for (const layer of layers) merged = mergeConfig(merged, layer.data) as Record<string, unknown>;
  const assignments = envAssignments(env);
  const overrides: EnvOverride[] = [];
  for (const assignment of assignments) {
    overrides.push({
      variable: assignment.variable,
      path: assignment.path,
      below: structuredClone(getAt(merged, assignment.path)),
    });
    assign(merged, assignment);
  }

  const problems = findProblems(merged);
  if (problems.length === 0) return carryEnvOverrides(overrides, merged as unknown as Config);
  const sources = [...layers.map((l) => l.name), ...(assignments.length > 0 ? ['environment'] : [])];
  const lines = problems.map((p) => `  ${formatProblem(p)} (from ${sourceOf(p.path, layers, assignments)})`);
  throw new ConfigError(
    `Invalid configuration (${sources.join(' <- ')}):\n${lines.join('\n')}`,
    problems.map(formatProblem),
  );
}

/** A setting a FACEGATE_* variable overrode. */
export interface EnvOverride {
  variable: string;
  path: PathSegment[];
  /** What the layers below the environment (defaults, board, file) had there; undefined = nothing. */
  below: unknown;
}

// The environment overrides the file at every start, so config/set must neither write what came from it
// into the file (a password from the environment would land on disk) nor change it (the environment would
// undo the change at the next start). loadConfig() remembers the overrides of the config it returns, and
// config/set carries them over to the config it accepts, so they follow the running config.
const envOverridesOf = new WeakMap<object, readonly EnvOverride[]>();

/** The settings of `config` that came from the environment (none for a config not from loadConfig). */
export function envOverrides(config: object): readonly EnvOverride[] {
  return envOverridesOf.get(config) ?? [];
}

/** Marks `config` as carrying `from`'s environment overrides (a list, or the config they belong to); returns it. */
export function carryEnvOverrides<T extends object>(from: object | readonly EnvOverride[], config: T): T {
  const overrides = Array.isArray(from) ? (from as readonly EnvOverride[]) : envOverrides(from);
  if (overrides.length > 0) envOverridesOf.set(config, overrides);
  return config;
}

/**
 * The overrides a JSON Merge Patch would change: the patch sets or removes something at, above or below
 * an overridden path (an array or scalar on the way replaces everything beneath it).
 */
export function envOverridesTouchedBy(config: object, patch: unknown): EnvOverride[] {
  return envOverrides(config).filter(({ path }) => {
    let node = patch;
    for (const key of path) {
      if (!isPlainObject(node)) return true;
      if (!Object.hasOwn(node, key)) return false;
      node = node[key as string];
    }
    return !isPlainObject(node) || Object.keys(node).length > 0;
  });
}

/** `config` as its file should hold it: every value from the environment put back to what was below it. */
export function withoutEnvOverrides<T extends object>(config: T): T {
  const overrides = envOverrides(config);
  if (overrides.length === 0) return config;
  const out = structuredClone(config) as unknown as Record<string, unknown>;
  // Deepest last in, first out: a variable inside a list another variable set is undone before the list.
  for (const { variable, path, below } of [...overrides].reverse()) {
    assign(out, { variable, path, value: structuredClone(below) });
  }
  return out as unknown as T;
}

export function listBoards(): string[] {
  return readdirSync(BOARD_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

function boardFile(board: string): string {
  const boards = listBoards();
  // Matching against the directory listing also keeps the name from escaping configs/boards.
  if (!boards.includes(board)) {
    throw new ConfigError(`Unknown board '${board}' (available: ${boards.join(', ')})`);
  }
  return join(BOARD_DIR, `${board}.yaml`);
}

/**
 * The settings that name files or folders. In the bundled layers (configs/default.yaml and the board
 * profiles) a relative one means a file of the package (the demo video, models/, var/), so it resolves
 * against the package root: the demo then runs the same from any working directory. In your file and
 * in FACEGATE_* variables relative paths resolve against the working directory, as usual.
 */
const PATH_SETTINGS: readonly (readonly string[])[] = [
  ['models', 'dir'],
  ['cameras', '*', 'source', 'path'],
  ['gallery', 'path'],
  ['gallery', 'seedDir'],
  ['schedules', 'backupDir'],
  ['offlineQueue', 'path'],
  ['mqtt', 'tls', 'ca'],
  ['mqtt', 'tls', 'cert'],
  ['mqtt', 'tls', 'key'],
  ['dataDir'],
];

function bundled(layer: Layer): Layer {
  const resolveAt = (node: unknown, path: readonly string[]): void => {
    const [key, ...rest] = path;
    if (key === '*') {
      if (Array.isArray(node)) for (const item of node) resolveAt(item, rest);
      return;
    }
    if (!isPlainObject(node) || !Object.hasOwn(node, key)) return;
    const value = node[key];
    if (rest.length > 0) resolveAt(value, rest);
    else if (typeof value === 'string' && value !== '') node[key] = resolve(PACKAGE_ROOT, value);
  };
  for (const path of PATH_SETTINGS) resolveAt(layer.data, path);
  return layer;
}

function readLayer(file: string): Layer {
  const name = displayName(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`${name}: cannot read config file: ${(error as Error).message}`);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  // Warnings (e.g. unknown tags such as !include) would silently change values, so they are fatal too.
  const issues = [...doc.errors, ...doc.warnings].map((e) => e.message);
  let data: unknown;
  if (issues.length === 0) {
    try {
      data = doc.toJS();
    } catch (error) {
      issues.push((error as Error).message);
    }
  }
  if (issues.length > 0) {
    throw new ConfigError(`${name}: invalid YAML\n${issues.map((m) => indent(m)).join('\n')}`, issues);
  }
  if (data === null || data === undefined) return { name, data: {} };
  if (!isPlainObject(data)) throw new ConfigError(`${name}: the top level must be a mapping of sections`);
  return { name, data };
}

function displayName(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') || isAbsolute(rel) ? file : rel;
}

function indent(text: string): string {
  return text.replace(/^/gm, '  ');
}

interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  $ref?: string;
}

const definitions = (schema as { definitions: Record<string, SchemaNode> }).definitions;

function deref(node: SchemaNode): SchemaNode {
  let current = node;
  while (current.$ref) current = definitions[current.$ref.replace('#/definitions/', '')];
  return current;
}

// Environment names are upper case, so each `__`-separated level is matched against the schema ignoring
// case and underscores: FACEGATE_MQTT__BASE_TOPIC and FACEGATE_MQTT__BASETOPIC both reach mqtt.baseTopic.
function envAssignments(env: Record<string, string | undefined>): EnvAssignment[] {
  const assignments = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && !NON_CONFIG_ENV_VARS.includes(name))
    .map((variable) => {
      const { path, node } = resolveEnvName(variable);
      const raw = env[variable] ?? '';
      return { variable, path, value: raw === '' ? undefined : envValue(raw, node) };
    });
  // Shallow before deep, so FACEGATE_CAMERAS__0__FPS refines FACEGATE_CAMERAS instead of being overwritten.
  return assignments.sort((a, b) => a.path.length - b.path.length || a.variable.localeCompare(b.variable));
}

function resolveEnvName(variable: string): { path: PathSegment[]; node: SchemaNode } {
  const path: PathSegment[] = [];
  let node = deref(schema as SchemaNode);
  for (const segment of variable.slice(ENV_PREFIX.length).split('__')) {
    if (node.type === 'array' && node.items && /^\d+$/.test(segment)) {
      path.push(Number(segment));
      node = deref(node.items);
      continue;
    }
    const wanted = normalize(segment);
    const key = Object.keys(node.properties ?? {}).find((k) => normalize(k) === wanted);
    if (key === undefined || !node.properties) {
      const where = path.length === 0 ? 'the configuration' : formatPath(path);
      throw new ConfigError(`${variable}: ${where} has no field '${segment}'`);
    }
    path.push(key);
    node = deref(node.properties[key]);
  }
  return { path, node };
}

function normalize(name: string): string {
  return name.replaceAll('_', '').toLowerCase();
}

/**
 * Values are YAML so numbers, booleans and flow lists (`[health, snapshot]`) work, except for string
 * fields: a password of `123` or `yes` must stay the string it was typed as.
 */
function envValue(raw: string, node: SchemaNode): unknown {
  if (node.type === 'string') return raw;
  const doc = parseDocument(raw);
  if (doc.errors.length > 0) return raw;
  const value: unknown = doc.toJS();
  return value === null ? undefined : value;
}

function assign(root: Record<string, unknown>, { variable, path, value }: EnvAssignment): void {
  let node: Record<string, unknown> | unknown[] = root;
  for (let i = 0; i < path.length - 1; i++) {
    const wantArray = typeof path[i + 1] === 'number';
    let child = getOwn(node, path[i]);
    if (wantArray ? !Array.isArray(child) : !isPlainObject(child)) {
      child = wantArray ? [] : {};
      put(node, path[i], child, variable, path.slice(0, i));
    }
    node = child as Record<string, unknown> | unknown[];
  }
  put(node, path[path.length - 1], value, variable, path.slice(0, -1));
}

function put(
  node: Record<string, unknown> | unknown[],
  key: PathSegment,
  value: unknown,
  variable: string,
  at: PathSegment[],
): void {
  if (Array.isArray(node)) {
    const index = key as number;
    if (index > node.length) {
      throw new ConfigError(`${variable}: ${formatPath(at)} has only ${node.length} items`);
    }
    if (value === undefined) node.splice(index, 1);
    else node[index] = value;
  } else if (value === undefined) {
    delete node[key as string];
  } else {
    setOwn(node, key as string, value);
  }
}

/** The layer that set the value at `path`: the environment, else the latest file reaching deepest into it. */
function sourceOf(path: PathSegment[], layers: Layer[], assignments: EnvAssignment[]): string {
  for (const a of [...assignments].reverse()) {
    if (a.path.every((segment, i) => path[i] === segment)) return `environment ${a.variable}`;
  }
  let best = layers[0];
  let bestDepth = -1;
  for (const layer of [...layers].reverse()) {
    let node: unknown = layer.data;
    let depth = 0;
    let replacedArray = false;
    for (const key of path) {
      if (Array.isArray(node)) replacedArray = true;
      const present = Array.isArray(node)
        ? typeof key === 'number' && key < node.length
        : isPlainObject(node) && Object.hasOwn(node, key);
      if (!present) break;
      node = getOwn(node, key);
      depth++;
    }
    if (depth > bestDepth) {
      best = layer;
      bestDepth = depth;
    }
    // Arrays replace: nothing an earlier layer had inside this array survived the merge.
    if (replacedArray) break;
  }
  return best.name;
}
