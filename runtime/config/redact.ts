// The config is published retained over MQTT (config/get), so secrets must not leave the device with it.
// Keys are matched by name, so a secret field added later is covered without touching this file.

import type { Config } from './schema.ts';
import { isPlainObject } from './util.ts';
import { SECRET_KEY } from './validate.ts';

export const REDACTED = '***';

// Camera and broker URLs routinely carry credentials (rtsp://admin:pass@cam, ?token=..., &pwd=...), also
// inside a longer string. The password runs to the last @ before whitespace, as people do write
// passwords with / ? # or @ unencoded; a port followed by a path with an @ is redacted too, which is the
// safe way to be wrong.
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*):\S*@/gi;
const URL_SECRET_PARAM =
  /([?&;][^=&#;\s]*(?:token|key|secret|sig|signature|pass|pwd|pw|auth|credential|session)[^=&#;\s]*=)[^&#;\s]*/gi;

/** A copy with passwords, private key paths and URL credentials replaced by REDACTED. */
export function redactSecrets(config: Config): Config {
  return redact(config) as Config;
}

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (isPlainObject(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([key, v]) => [
        key,
        SECRET_KEY.test(key) && v !== undefined ? REDACTED : redact(v),
      ]),
    );
  }
  if (typeof value === 'string') {
    return value.replace(URL_PASSWORD, `$1:${REDACTED}@`).replace(URL_SECRET_PARAM, `$1${REDACTED}`);
  }
  return value;
}
