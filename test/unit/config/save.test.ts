import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Config } from '../../../runtime/config/index.ts';
import { ConfigError, loadConfig, mergeConfig, saveConfigAtomic } from '../../../runtime/config/index.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-save-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const config = mergeConfig(loadConfig({ env: {} }), {
  mqtt: { url: 'mqtt://broker', password: 'hunter2' },
  recognition: { k: 2 },
}) as Config;

describe('saveConfigAtomic', () => {
  it('writes YAML that loads back to the same config, leaving no temp file', async () => {
    const file = join(dir, 'config.yaml');
    await saveConfigAtomic(file, config);
    expect(readdirSync(dir)).toEqual(['config.yaml']);
    expect(parse(readFileSync(file, 'utf8'))).toEqual(config);
    expect(loadConfig({ file, env: {} })).toEqual(config);
  });

  it('creates a new file readable by its owner only, since it may hold the broker password', async () => {
    const file = join(dir, 'config.yaml');
    await saveConfigAtomic(file, config);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('replaces an existing file, keeping its mode', async () => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'old: true\n', { mode: 0o640 });
    await saveConfigAtomic(file, config);
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(parse(readFileSync(file, 'utf8'))).toEqual(config);
    expect(readdirSync(dir)).toEqual(['config.yaml']);
  });

  it('refuses an invalid config and leaves the old file as it was', async () => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'old: true\n');
    const invalid = mergeConfig(config, { recognition: { k: 0 } }) as Config;
    await expect(saveConfigAtomic(file, invalid)).rejects.toThrow(ConfigError);
    await expect(saveConfigAtomic(file, invalid)).rejects.toThrow('recognition.k: must be >= 1 (got 0)');
    expect(readFileSync(file, 'utf8')).toBe('old: true\n');
    expect(readdirSync(dir)).toEqual(['config.yaml']);
  });

  it('cleans up the temp file when the rename fails', async () => {
    // A non-empty directory at the target path makes rename() fail after the temp file was written.
    const target = join(dir, 'taken');
    mkdirSync(join(target, 'child'), { recursive: true });
    await expect(saveConfigAtomic(target, config)).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(['taken']);
  });
});
