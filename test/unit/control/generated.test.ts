import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { COMMAND_NAMES } from '../../../runtime/config/command-names.ts';
import { COMMANDS } from '../../../runtime/control/api.ts';
import {
  COMMAND_NAMES_FILE,
  commandNamesModule,
  commandReferenceRows,
  withCommandReference,
  withDefaultAllowList,
} from '../../../tools/generate/commands.ts';

const read = (file: string) => readFileSync(new URL(`../../../${file}`, import.meta.url), 'utf8');

describe('files generated from the command table (npm run generate)', () => {
  it('the command names control.allow accepts are the table commands', () => {
    expect([...COMMAND_NAMES], `${COMMAND_NAMES_FILE} is stale: run npm run generate`).toEqual(COMMANDS);
    expect(read(COMMAND_NAMES_FILE)).toBe(commandNamesModule());
  });

  it('configs/schema.json accepts exactly those names in control.allow', () => {
    const schema = JSON.parse(read('configs/schema.json'));
    expect(schema.properties.control.properties.allow.items.enum).toEqual(COMMANDS);
  });

  it('configs/default.yaml allows every command', () => {
    const yaml = read('configs/default.yaml');
    expect(parse(yaml).control.allow, 'configs/default.yaml is stale: run npm run generate').toEqual(
      COMMANDS,
    );
    expect(withDefaultAllowList(yaml)).toBe(yaml);
  });

  it('docs/mqtt.md has every command row as the table says', () => {
    const markdown = read('docs/mqtt.md');
    const stale = [...commandReferenceRows()].filter(([, row]) => !markdown.includes(`\n${row}\n`));
    expect(
      stale.map(([name]) => name),
      'commands missing or out of date in docs/mqtt.md: run npm run generate',
    ).toEqual([]);
    // Nor a row of a command the table no longer has.
    expect(withCommandReference(markdown)).toBe(markdown);
  });
});
