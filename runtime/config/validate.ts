// Schema validation plus the cross-field rules JSON Schema cannot express, reported as `<path>: <reason>`
// lines that name the field, so a typo in a YAML file or an MQTT config/set is fixable from the message alone.

import { Ajv, type ErrorObject } from 'ajv';
import { validate as isCronExpression } from 'node-cron';
import { ed25519KeyProblem } from '../util/signing.ts';
import { cameraSettings } from './camera.ts';
import { CONFIG_JSON_SCHEMA as schema } from './json-schema.ts';
import type { Config } from './schema.ts';
import { formatPath, getAt, getOwn, type PathSegment } from './util.ts';

export type ValidationResult = { ok: true; config: Config } | { ok: false; errors: string[] };

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** `<path>: <reason>` lines, without the source annotations the message carries. */
  readonly errors: readonly string[];

  constructor(message: string, errors: readonly string[] = []) {
    super(message);
    this.errors = errors;
  }
}

export interface Problem {
  path: PathSegment[];
  reason: string;
}

/** Names whose values are secrets: redacted when published, never echoed in error messages. */
export const SECRET_KEY = /^(password|passphrase|secret|token|key|privateKey)$/i;

// useDefaults off: every default lives in configs/default.yaml, where it is visible and commented.
const ajv = new Ajv({ allErrors: true, useDefaults: false, verbose: true, strict: true });
ajv.addFormat('cron', (value: string) => value === '' || isCronExpression(value));
const validateSchema = ajv.compile<Config>(schema);

// The shared patterns are unreadable as regexes in an error message; say what they mean instead.
const PATTERN_HINTS: Record<string, string> = {
  safeId: "1-64 letters, digits, '_' or '-'",
  modelName: "a file name: letters, digits, '.', '_' or '-'",
  topic: "MQTT topic levels separated by '/', without + # whitespace, empty levels or a leading $",
  publicKeyPem: 'a PEM public key (-----BEGIN PUBLIC KEY----- ...)',
};

function patternOwner(pattern: string): string | undefined {
  const definitions = schema.definitions as Record<string, { pattern?: string }>;
  return Object.keys(definitions).find((name) => definitions[name].pattern === pattern);
}

export function validateConfig(value: unknown): ValidationResult {
  const problems = findProblems(value);
  if (problems.length > 0) return { ok: false, errors: problems.map(formatProblem) };
  return { ok: true, config: value as Config };
}

export function formatProblem(problem: Problem): string {
  return `${formatPath(problem.path)}: ${problem.reason}`;
}

export function findProblems(value: unknown): Problem[] {
  if (!validateSchema(value)) return dedupe((validateSchema.errors ?? []).flatMap((e) => describe(e, value)));
  return crossFieldProblems(value);
}

function crossFieldProblems(config: Config): Problem[] {
  const problems: Problem[] = [];
  if (config.device.id === 'all') {
    problems.push({ path: ['device', 'id'], reason: "'all' is reserved: it addresses every device at once" });
  }
  const seen = new Set<string>();
  config.cameras.forEach((camera, i) => {
    if (seen.has(camera.id)) {
      problems.push({ path: ['cameras', i, 'id'], reason: `duplicate camera id '${camera.id}'` });
    }
    seen.add(camera.id);
    // GStreamer pads RGB rows to 4 bytes, which would corrupt the frames facegate reads from it.
    if (camera.source.kind === 'jetson-csi' && camera.width % 4 !== 0) {
      problems.push({
        path: ['cameras', i, 'width'],
        reason: "must be a multiple of 4 for kind 'jetson-csi'",
      });
    }
    const { k, n } = cameraSettings(config, camera).recognition;
    if (camera.overrides?.recognition && k > n) {
      problems.push({
        path: [
          'cameras',
          i,
          'overrides',
          'recognition',
          camera.overrides.recognition.k === undefined ? 'n' : 'k',
        ],
        reason: `k (${k}) must be <= n (${n}) once merged over recognition`,
      });
    }
    if (camera.roi && (camera.roi.x + camera.roi.width > 1 || camera.roi.y + camera.roi.height > 1)) {
      problems.push({
        path: ['cameras', i, 'roi'],
        reason: 'must lie within the frame (x + width <= 1, y + height <= 1)',
      });
    }
    if (camera.restart.maxDelayMs < camera.restart.initialDelayMs) {
      problems.push({
        path: ['cameras', i, 'restart', 'maxDelayMs'],
        reason: `must be >= initialDelayMs (${camera.restart.initialDelayMs})`,
      });
    }
  });
  if (config.recognition.k > config.recognition.n) {
    problems.push({
      path: ['recognition', 'k'],
      reason: `must be <= recognition.n (${config.recognition.n})`,
    });
  }
  const { web } = config;
  if (web.enabled && !isLoopback(web.host) && web.password === undefined && web.token === undefined) {
    problems.push({
      path: ['web', 'password'],
      reason: `web.password or web.token is required when web.host (${web.host}) is not a loopback address`,
    });
  }
  const { control } = config;
  if (control.requireSignedCommands && control.commandPublicKeys.length === 0 && !control.operatorKeysFile) {
    problems.push({
      path: ['control', 'commandPublicKeys'],
      reason:
        'must list at least one key when requireSignedCommands is true and there is no operatorKeysFile',
    });
  }
  // A key that does not parse would be skipped at every request: with signing on, nobody could command.
  const keyLists = [
    ['control', 'commandPublicKeys'],
    ['models', 'update', 'publicKeys'],
  ] as const;
  for (const path of keyLists) {
    (getAt(config, [...path]) as string[]).forEach((pem, i) => {
      const problem = ed25519KeyProblem(pem);
      if (problem) problems.push({ path: [...path, i], reason: `${problem}` });
    });
  }
  const { url, inProcessBrokerHost, username, password } = config.mqtt;
  if (!url && !isLoopback(inProcessBrokerHost) && (!username || !password)) {
    problems.push({
      path: ['mqtt', 'inProcessBrokerHost'],
      reason: `${inProcessBrokerHost} is reachable from the network: set mqtt.username and mqtt.password (the broker then demands them) or listen on 127.0.0.1`,
    });
  }
  if (config.schedules.modelUpdateCheck && !config.models.update.manifestUrl) {
    problems.push({
      path: ['models', 'update', 'manifestUrl'],
      reason: 'required when schedules.modelUpdateCheck is set',
    });
  }
  const { cert, key } = config.mqtt.tls;
  if ((cert === undefined) !== (key === undefined)) {
    problems.push({
      path: ['mqtt', 'tls', cert === undefined ? 'cert' : 'key'],
      reason: 'cert and key go together',
    });
  }
  return problems;
}

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return /^127(\.\d{1,3}){3}$/.test(host) || host === '::1' || host === 'localhost';
}

function describe(error: ErrorObject, root: unknown): Problem[] {
  const path = parsePointer(error.instancePath);
  const got = shownValue(path, error.data);
  switch (error.keyword) {
    case 'if':
      // Only says "must match then schema"; the failing rule inside `then` is reported on its own.
      return [];
    case 'additionalProperties': {
      const field = String(error.params.additionalProperty);
      const known = Object.keys(
        (error.parentSchema as { properties?: object } | undefined)?.properties ?? {},
      );
      const hint = closest(field, known);
      return [{ path: [...path, field], reason: `unknown field${hint ? ` (did you mean '${hint}'?)` : ''}` }];
    }
    case 'required':
      return [
        {
          path: [...path, String(error.params.missingProperty)],
          reason: `required${kindContext(error, error.data)}`,
        },
      ];
    case 'false schema':
      return [{ path, reason: `not allowed${kindContext(error, getAt(root, path.slice(0, -1)))}` }];
    case 'enum':
      return [
        {
          path,
          reason: `must be one of ${(error.params.allowedValues as unknown[]).map(show).join(', ')}${got}`,
        },
      ];
    case 'format':
      if (error.params.format !== 'cron') return [{ path, reason: `${error.message}${got}` }];
      return [{ path, reason: `must be a cron expression (5 fields, or 6 with seconds) or empty${got}` }];
    case 'type':
      return [{ path, reason: `must be ${error.params.type}${got}` }];
    case 'pattern': {
      const hint = PATTERN_HINTS[patternOwner(String(error.params.pattern)) ?? ''];
      return [{ path, reason: `${hint ? `must be ${hint}` : error.message}${got}` }];
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'minLength':
    case 'maxLength':
      return [{ path, reason: `${error.message}${got}` }];
    default:
      return [{ path, reason: error.message ?? error.keyword }];
  }
}

/** Per-kind rules on a camera source live under `then`; naming the kind explains why the field matters. */
function kindContext(error: ErrorObject, parent: unknown): string {
  const kind = getOwn(parent, 'kind');
  return error.schemaPath.includes('/then/') && typeof kind === 'string' ? ` for kind '${kind}'` : '';
}

function shownValue(path: PathSegment[], value: unknown): string {
  const last = path.at(-1);
  if (typeof last === 'string' && SECRET_KEY.test(last)) return '';
  // A private key pasted where a public one belongs must not reach a log or an MQTT response.
  if (typeof value === 'string' && value.includes('PRIVATE KEY')) return ' (got a private key)';
  const text = show(value);
  return ` (got ${text.length > 60 ? `${text.slice(0, 57)}...` : text})`;
}

function show(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : (JSON.stringify(value) ?? String(value));
}

function parsePointer(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const line = formatProblem(p);
    if (seen.has(line)) return false;
    seen.add(line);
    return true;
  });
}

/** The known field within two edits of a typo, ignoring case. */
function closest(field: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(field.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}
