// Which settings a running device can apply in place, and which need a restart. This list is the contract
// with the components: a key listed here must be re-read by its owner when the config changes.

import type { Config } from './schema.ts';
import { formatPath, isPlainObject, type PathSegment } from './util.ts';

/**
 * Live keys, as path prefixes (`[*]` = any camera). Everything not listed needs a restart, in particular:
 * cameras[*].id/source/width/height (the capture pipeline is rebuilt), models.dir/precision/engine/threads
 * and model names (sessions are loaded once), presentationAttack.enabled (loads models), gallery.path,
 * mqtt.url/credentials/tls/clientId/keepalive/qos/subscriberGraceSeconds and the in-process broker (the connection is set up
 * once), offlineQueue (the queue is opened once with its size and policy), logging (the logger is made
 * once, at start), device.id (it is part of every topic and file name) and dataDir. A key belongs here
 * only once its owner re-reads it on config/set: listing one that is read at start only would answer
 * `applied` for a change that waits.
 */
export const LIVE_KEYS = [
  'device.name',
  // Thresholds and policies read per frame or per command.
  'cameras[*].fps',
  'cameras[*].restart',
  'cameras[*].overrides',
  'cameras[*].roi',
  'detection',
  'quality',
  'recognition',
  'unknowns',
  'presentationAttack.antispoofMinScore',
  'presentationAttack.livenessMinScore',
  'models.update',
  'control',
  // Topics are resubscribed and discovery republished in place.
  'mqtt.baseTopic',
  'mqtt.snapshots',
  'homeAssistant',
  'schedules',
] as const;

export interface ChangeClassification {
  live: string[];
  restartRequired: string[];
}

/** Paths (`cameras[0].fps`) that differ between the two configs, split by whether they apply live. */
export function classifyChange(before: Config, after: Config): ChangeClassification {
  const live: string[] = [];
  const restartRequired: string[] = [];
  for (const path of changedPaths(before, after, [])) {
    (isLive(path) ? live : restartRequired).push(formatPath(path));
  }
  return { live, restartRequired };
}

function isLive(path: PathSegment[]): boolean {
  const pattern = formatPath(path).replace(/\[\d+\]/g, '[*]');
  return LIVE_KEYS.some(
    (key) => pattern === key || pattern.startsWith(`${key}.`) || pattern.startsWith(`${key}[`),
  );
}

function changedPaths(a: unknown, b: unknown, path: PathSegment[]): PathSegment[][] {
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((key) => changedPaths(a[key], b[key], [...path, key]));
  }
  // Arrays of objects (cameras) are compared item by item so a camera's fps change stays live; a changed
  // count or a list of scalars (allow, publicKeys) counts as one change of the whole array.
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every(isPlainObject)) {
    return a.flatMap((item, i) => changedPaths(item, b[i], [...path, i]));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [path];
}
