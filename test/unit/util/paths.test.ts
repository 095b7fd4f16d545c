// runtime/paths.ts: the package's own files from the package root, the data set only from FACEGATE_DATA.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BUNDLED_MODELS_DIR,
  CONFIG_DIR,
  DataSetMissingError,
  DEMO_DIR,
  dataSetDir,
  FACES_DIR,
  modelsDir,
  PACKAGE_ROOT,
} from '../../../runtime/paths.ts';

describe('runtime/paths', () => {
  it('finds the bundled files from the package root, whatever the working directory', () => {
    expect(existsSync(join(PACKAGE_ROOT, 'package.json'))).toBe(true);
    expect(existsSync(join(CONFIG_DIR, 'default.yaml'))).toBe(true);
    expect(existsSync(join(DEMO_DIR, 'door.mp4'))).toBe(true);
    expect(existsSync(join(FACES_DIR, 'ATTRIBUTION.md'))).toBe(true);
  });

  it('takes the models folder from FACEGATE_MODELS_DIR, else the package models/', () => {
    expect(modelsDir({})).toBe(BUNDLED_MODELS_DIR);
    expect(modelsDir({ FACEGATE_MODELS_DIR: 'built' })).toBe(resolve('built'));
  });

  it('reaches the data set only through FACEGATE_DATA, and says so in one line without it', () => {
    expect(dataSetDir('eval', { FACEGATE_DATA: 'data' })).toBe(resolve('data'));
    expect(() => dataSetDir('facegate eval lfw', {})).toThrow(DataSetMissingError);
    expect(() => dataSetDir('facegate eval lfw', {})).toThrow(
      /^facegate eval lfw needs the face data set: set FACEGATE_DATA to its folder \(docs\/data\.md\)$/,
    );
  });
});
