// `npm run generate`: rewrites the files derived from the command table (./commands.ts) and from the
// configuration schema (./config-schema.ts).

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { PACKAGE_ROOT } from '../../runtime/paths.ts';
import {
  COMMAND_NAMES_FILE,
  commandNamesModule,
  withCommandReference,
  withDefaultAllowList,
} from './commands.ts';
import { configSchemaJson, SCHEMA_FILE } from './config-schema.ts';

/** Writes `file` anew when its content changed; whether it did. */
function rewrite(file: string, content: (old: string) => string): boolean {
  const path = join(PACKAGE_ROOT, file);
  const old = readFileSync(path, 'utf8');
  const next = content(old);
  if (next === old) return false;
  writeFileSync(path, next);
  console.log(`wrote ${file}`);
  return true;
}

rewrite(COMMAND_NAMES_FILE, commandNamesModule);
rewrite('configs/default.yaml', withDefaultAllowList);
rewrite('docs/mqtt.md', withCommandReference);
const schemaChanged = rewrite(SCHEMA_FILE, (old) =>
  isDeepStrictEqual(JSON.parse(old), configSchemaJson())
    ? old
    : `${JSON.stringify(configSchemaJson(), null, 2)}\n`,
);
// Laid out as the formatter does, so the file differs only where the content did.
if (schemaChanged)
  execFileSync('npx', ['biome', 'format', '--write', SCHEMA_FILE], { cwd: PACKAGE_ROOT, stdio: 'inherit' });
