// configs/schema.json, the configuration schema editors read (default.yaml names it), is written from its
// source, CONFIG_JSON_SCHEMA in runtime/config/json-schema.ts.

import { CONFIG_JSON_SCHEMA } from '../../runtime/config/json-schema.ts';

export const SCHEMA_FILE = 'configs/schema.json';

/** The schema as plain JSON: what configs/schema.json must parse to. */
export function configSchemaJson(): unknown {
  return JSON.parse(JSON.stringify(CONFIG_JSON_SCHEMA));
}
