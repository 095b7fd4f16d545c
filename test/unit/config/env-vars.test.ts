// FACEGATE_* variables that are not configuration (FACEGATE_DATA, FACEGATE_MODELS_DIR, ...) live in the
// same environment as the FACEGATE_<SECTION>__<FIELD> overrides; loadConfig must leave them alone.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, envOverrides, loadConfig, NON_CONFIG_ENV_VARS } from '../../../runtime/config/index.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The environment `npm start` / `facegate run` sees on a machine set up as README and docs/deploy.md say. */
const TOOL_ENV = {
  FACEGATE_DATA: 'data-set',
  FACEGATE_MODELS_DIR: 'built-models',
  FACEGATE_CALIB_LIMIT: '40',
  FACEGATE_SKIP_NATIVE: '1',
  FACEGATE_BUILD_JOBS: '2',
  FACEGATE_BUILD_VERBOSE: '1',
  PATH: '/usr/bin',
};

describe('FACEGATE_* variables that are not settings', () => {
  it('are ignored by loadConfig: FACEGATE_DATA no longer breaks facegate run', () => {
    const config = loadConfig({ env: TOOL_ENV });
    expect(config).toEqual(loadConfig({ env: {} }));
    expect(envOverrides(config)).toEqual([]);
    // In particular FACEGATE_MODELS_DIR is not models.dir, nor FACEGATE_DATA dataDir.
    expect(config.models.dir).toBe(join(ROOT, 'models'));
    expect(config.dataDir).toBe(join(ROOT, 'var'));
  });

  it('do not hide real overrides beside them, nor typos', () => {
    const config = loadConfig({
      env: {
        ...TOOL_ENV,
        FACEGATE_BOARD: 'rpi4',
        FACEGATE_MODELS__DIR: '/opt/m',
        FACEGATE_DATA_DIR: '/var/x',
      },
    });
    expect(config.models.dir).toBe('/opt/m');
    expect(config.dataDir).toBe('/var/x');
    expect(config.cameras[0].source.kind).toBe('rpicam');
    expect(envOverrides(config).map((o) => o.variable)).toEqual([
      'FACEGATE_DATA_DIR',
      'FACEGATE_MODELS__DIR',
    ]);
    expect(() => loadConfig({ env: { ...TOOL_ENV, FACEGATE_DATAS: '/x' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { FACEGATE_MODELS_DIRS: '/x' } })).toThrow(
      "FACEGATE_MODELS_DIRS: the configuration has no field 'MODELS_DIRS'",
    );
  });

  it('are each described in docs/config.md', () => {
    const docs = readFileSync(join(ROOT, 'docs/config.md'), 'utf8');
    expect(NON_CONFIG_ENV_VARS.filter((name) => !docs.includes(`\`${name}\``))).toEqual([]);
  });

  it('include every FACEGATE_* variable the code reads by name', () => {
    const reads = [
      /process\.env(?:\.|\[['"])(FACEGATE_[A-Z0-9_]+)/g, // TypeScript, JavaScript
      /\$\{?(FACEGATE_[A-Z0-9_]+)/g, // shell
      /environ(?:\.get\(|\[)['"](FACEGATE_[A-Z0-9_]+)/g, // Python
    ];
    const found = new Map<string, string>();
    const visit = (path: string) => {
      const name = relative(ROOT, path);
      if (statSync(path).isDirectory()) {
        const skipped = ['runtime/config', 'kernels/build', 'training/output'];
        if (name.endsWith('node_modules') || skipped.includes(name)) return;
        for (const entry of readdirSync(path)) visit(join(path, entry));
        return;
      }
      if (!/\.(ts|mjs|js|sh|py)$/.test(name) || name.endsWith('.test.ts')) return;
      const text = readFileSync(path, 'utf8');
      for (const pattern of reads) {
        for (const match of text.matchAll(pattern)) found.set(match[1], name);
      }
    };
    for (const dir of [
      'runtime',
      'tools',
      'training',
      'kernels',
      'bin',
      'firmware-scripts',
      '.ci',
      'test/helpers',
    ]) {
      visit(join(ROOT, dir));
    }
    expect(found.get('FACEGATE_DATA')).toBeDefined();
    expect(found.get('FACEGATE_CALIB_LIMIT')).toBeDefined();
    const unknown = [...found].filter(([variable]) => !NON_CONFIG_ENV_VARS.includes(variable));
    expect(unknown).toEqual([]);
  });
});
