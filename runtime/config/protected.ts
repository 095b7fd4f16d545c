// Settings a remote config/set may never change, whoever signed it: those that decide who is trusted
// (changing them remotely would let one stolen or guessed key lock the operator out or trust itself
// forever), and file paths (the service may run as root, so a path pointed anywhere reads or overwrites
// anything). They change in the configuration file on the device, or through the key file
// (docs/security.md).

import type { Config } from './schema.ts';
import { isPlainObject } from './util.ts';

/** Settings that decide who is trusted: signing, operator and model keys, update sources, the broker. */
export const TRUST_SETTINGS = [
  'control.requireSignedCommands',
  'control.commandPublicKeys',
  'control.operatorKeysFile',
  'models.update.allowUnsigned',
  'models.update.publicKeys',
  'models.update.manifestUrl',
  'models.update.allowedOrigins',
  'mqtt.url',
  'mqtt.username',
  'mqtt.password',
  'mqtt.clientId',
  'mqtt.tls',
  'mqtt.inProcessBrokerHost',
  'mqtt.inProcessBrokerPort',
] as const;

/** Files and directories; `[*]` is any camera. A camera may be removed, not pointed at a new path. */
export const PATH_SETTINGS = [
  'models.dir',
  'gallery.path',
  'gallery.seedDir',
  'offlineQueue.path',
  'schedules.backupDir',
  'dataDir',
  'cameras[*].source.path',
  'cameras[*].source.device',
] as const;

/**
 * Why `after` may not replace `before` through a remote command: one sentence per protected setting it
 * changes (a path setting gaining a value it did not have), or none.
 */
export function protectedChanges(before: Config, after: Config): string[] {
  const problems: string[] = [];
  for (const setting of TRUST_SETTINGS) {
    if (JSON.stringify(valuesAt(before, setting)) !== JSON.stringify(valuesAt(after, setting)))
      problems.push(
        `${setting} decides who is trusted and cannot be changed by a remote command; change it in the configuration file on the device`,
      );
  }
  for (const setting of PATH_SETTINGS) {
    const known = new Set(valuesAt(before, setting).map((v) => JSON.stringify(v)));
    if (valuesAt(after, setting).some((v) => !known.has(JSON.stringify(v))))
      problems.push(
        `${setting} is a file path and cannot be changed by a remote command; change it in the configuration file on the device`,
      );
  }
  return problems;
}

/** The values at a dotted path, `name[*]` fanning out over a list; absent values are left out. */
function valuesAt(root: unknown, setting: string): unknown[] {
  let nodes: unknown[] = [root];
  for (const part of setting.split('.')) {
    const fanOut = part.endsWith('[*]');
    const key = fanOut ? part.slice(0, -3) : part;
    nodes = nodes.flatMap((node) => {
      if (!isPlainObject(node) || node[key] === undefined) return [];
      const value = node[key];
      return fanOut ? (Array.isArray(value) ? value : []) : [value];
    });
  }
  return nodes;
}
