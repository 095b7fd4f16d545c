import { existsSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelSlots, slotName } from '../../../runtime/model-update/slots.ts';
import type { ModelManifest } from '../../../runtime/models/manifest.ts';
import { builtModel, tempDir } from '../../helpers/model-update.ts';
import { MODELS_DIR } from '../../helpers/paths.ts';

const source = builtModel('facerec');
const version = (v: string): ModelManifest => ({ ...source.manifest, version: v });

let dir: ReturnType<typeof tempDir>;
let slots: ModelSlots;
beforeEach(() => {
  dir = tempDir('slots');
  slots = new ModelSlots({ dataDir: dir.path, name: 'facerec', bundledDir: MODELS_DIR, precision: 'int8' });
});
afterEach(() => dir.remove());

const versions = () => readdirSync(join(slots.dir, 'versions')).sort();
const activeVersion = () => slots.resolveActive().model.manifest.version;
const onnxOf = (v: string) => join(slots.dir, 'versions', slotName(version(v)), source.manifest.file);

describe('ModelSlots', () => {
  it('runs the bundled model before the first install', () => {
    const active = slots.resolveActive();
    expect(active).toMatchObject({ source: 'bundled', problems: [] });
    expect(active.model.manifestPath).toBe(join(MODELS_DIR, 'facerec.int8.json'));
    expect(slots.pointer()).toBeUndefined();
  });

  it('install writes a verifiable slot and moves the running one to previous; prune keeps two', () => {
    expect(slots.install(version('1.1.0'), source.onnx)).toBe(slotName(version('1.1.0')));
    expect(slots.pointer()).toEqual({ current: slotName(version('1.1.0')) });
    expect(slots.resolveActive()).toMatchObject({ source: 'current', problems: [] });
    slots.install(version('1.2.0'), source.onnx);
    slots.install(version('1.3.0'), source.onnx);
    expect(slots.pointer()).toEqual({
      current: slotName(version('1.3.0')),
      previous: slotName(version('1.2.0')),
    });
    expect(versions()).toEqual([slotName(version('1.2.0')), slotName(version('1.3.0'))].sort());
    expect(activeVersion()).toBe('1.3.0');
    expect(readdirSync(slots.dir).sort()).toEqual(['active.json', 'versions']);
  });

  it('reinstalling the running version keeps the previous one', () => {
    slots.install(version('1.1.0'), source.onnx);
    slots.install(version('1.2.0'), source.onnx);
    slots.install(version('1.2.0'), source.onnx);
    expect(slots.pointer()).toEqual({
      current: slotName(version('1.2.0')),
      previous: slotName(version('1.1.0')),
    });
  });

  it('refuses bytes that do not match the manifest, leaving everything as it was', () => {
    slots.install(version('1.1.0'), source.onnx);
    const before = readFileSync(join(slots.dir, 'active.json'), 'utf8');
    expect(() => slots.install(version('1.2.0'), source.onnx.subarray(0, 1000))).toThrow(
      /truncated or replaced/,
    );
    expect(() => slots.install({ ...version('1.2.0'), name: 'blazeface' }, source.onnx)).toThrow(
      /cannot install blazeface into the facerec slots/,
    );
    expect(() => slots.install({ ...version('1.2.0'), sha256: 'nope' }, source.onnx)).toThrow(
      /invalid manifest/,
    );
    expect(readFileSync(join(slots.dir, 'active.json'), 'utf8')).toBe(before);
    expect(readdirSync(slots.dir).sort()).toEqual(['active.json', 'versions']);
  });

  it('rollback swaps current and previous, so it can be undone', () => {
    slots.install(version('1.1.0'), source.onnx);
    slots.install(version('1.2.0'), source.onnx);
    expect(slots.previous().manifest.version).toBe('1.1.0');
    expect(slots.rollback().manifest.version).toBe('1.1.0');
    expect(activeVersion()).toBe('1.1.0');
    expect(slots.rollback().manifest.version).toBe('1.2.0');
    expect(versions()).toHaveLength(2);
  });

  it('rollback with discardCurrent drops the current slot', () => {
    slots.install(version('1.1.0'), source.onnx);
    slots.install(version('1.2.0'), source.onnx);
    slots.rollback({ discardCurrent: true });
    expect(slots.pointer()).toEqual({ current: slotName(version('1.1.0')) });
    expect(versions()).toEqual([slotName(version('1.1.0'))]);
  });

  it('rolling back past the only slot returns to the bundled model; past that there is nothing', () => {
    slots.install(version('1.1.0'), source.onnx);
    expect(slots.rollback().manifestPath).toBe(join(MODELS_DIR, 'facerec.int8.json'));
    expect(slots.resolveActive().source).toBe('bundled');
    expect(versions()).toEqual([]);
    expect(() => slots.rollback()).toThrow(/the bundled model is running, there is nothing to roll back to/);
  });

  it('a broken previous slot is not rolled back to', () => {
    slots.install(version('1.1.0'), source.onnx);
    slots.install(version('1.2.0'), source.onnx);
    truncateSync(onnxOf('1.1.0'), 100);
    expect(() => slots.rollback()).toThrow(/previous version 1\.1\.0-\w+ is not usable: .*truncated/);
    expect(activeVersion()).toBe('1.2.0');
  });

  it('resolveActive falls back to previous, then to bundled, saying why', () => {
    slots.install(version('1.1.0'), source.onnx);
    slots.install(version('1.2.0'), source.onnx);
    const bytes = readFileSync(onnxOf('1.2.0'));
    bytes[1000] ^= 0xff;
    writeFileSync(onnxOf('1.2.0'), bytes);
    const previous = slots.resolveActive();
    expect(previous).toMatchObject({ source: 'previous', slot: slotName(version('1.1.0')) });
    expect(previous.problems).toEqual([
      expect.stringMatching(/^current slot 1\.2\.0-\w+: .*sha256 .* \(tampered or corrupt\)/),
    ]);
    truncateSync(onnxOf('1.1.0'), 0);
    const bundled = slots.resolveActive();
    expect(bundled.source).toBe('bundled');
    expect(bundled.problems).toHaveLength(2);
    // A new install goes on top of what actually runs: no broken slot becomes previous.
    slots.install(version('1.3.0'), source.onnx);
    expect(slots.pointer()).toEqual({ current: slotName(version('1.3.0')) });
  });

  it('an unreadable pointer means bundled; with no bundled model either, it says everything', () => {
    slots.install(version('1.1.0'), source.onnx);
    writeFileSync(join(slots.dir, 'active.json'), '{"current": "../../etc"}');
    expect(slots.resolveActive()).toMatchObject({
      source: 'bundled',
      problems: [expect.stringMatching(/does not name valid slots/)],
    });
    writeFileSync(join(slots.dir, 'active.json'), '{"curr');
    const empty = tempDir('no-bundled');
    try {
      const orphan = new ModelSlots({
        dataDir: dir.path,
        name: 'facerec',
        bundledDir: empty.path,
        precision: 'int8',
      });
      expect(() => orphan.resolveActive()).toThrow(
        /no usable facerec model: .*not valid JSON.*; bundled: .*missing/,
      );
    } finally {
      empty.remove();
    }
  });

  it('prune clears what interrupted installs leave behind', () => {
    slots.install(version('1.1.0'), source.onnx);
    mkdirSync(join(slots.dir, '.staging-abc123'));
    writeFileSync(join(slots.dir, '.staging-abc123', 'facerec.int8.onnx'), 'partial');
    writeFileSync(join(slots.dir, '.active.json.4242.tmp'), '{"cur');
    mkdirSync(join(slots.dir, 'versions', '0.9.0-0123456789abcdef'));
    expect(slots.prune().sort()).toEqual([
      '.active.json.4242.tmp',
      '.staging-abc123',
      '0.9.0-0123456789abcdef',
    ]);
    expect(existsSync(join(slots.dir, 'versions', slotName(version('1.1.0'))))).toBe(true);
    expect(slots.resolveActive()).toMatchObject({ source: 'current', problems: [] });
  });
});
