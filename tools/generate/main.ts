// `npm run generate`: rewrites the files derived from the command table (tools/generate/commands.ts).

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { COMMANDS } from '../../runtime/control/api.ts';
import { PACKAGE_ROOT } from '../../runtime/paths.ts';
import {
  COMMAND_NAMES_FILE,
  commandNamesModule,
  withCommandReference,
  withDefaultAllowList,
} from './commands.ts';

const SCHEMA_FILE = 'configs/schema.json';

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
const schemaChanged = rewrite(SCHEMA_FILE, (old) => {
  const schema = JSON.parse(old);
  const allow = schema.properties.control.properties.allow.items;
  if (isDeepStrictEqual(allow.enum, COMMANDS)) return old;
  allow.enum = COMMANDS;
  return `${JSON.stringify(schema, null, 2)}\n`;
});
// Laid out as the formatter does, so the file differs only where the content did.
if (schemaChanged)
  execFileSync('npx', ['biome', 'format', '--write', SCHEMA_FILE], { cwd: PACKAGE_ROOT, stdio: 'inherit' });
