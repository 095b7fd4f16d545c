// Bad model inputs: each one a clear error naming the file and the problem.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildFaceRecGraph, loadFaceRecWeights } from '../../../tools/models/facerec/build.ts';
import { FACE_API, HUMAN, sourceFile, sourcePackage } from '../../../tools/models/sources.ts';
import { convertTfjsFile } from '../../../tools/models/tfjs/convert.ts';
import { ModelFileError } from '../../../tools/models/tfjs/weights.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-model-files-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function copyHumanModel(name: string): string {
  const human = sourcePackage(HUMAN);
  copyFileSync(sourceFile(human, `models/${name}.json`), join(dir, `${name}.json`));
  copyFileSync(sourceFile(human, `models/${name}.bin`), join(dir, `${name}.bin`));
  return join(dir, `${name}.json`);
}

function copyFaceRec(): string {
  const faceApi = sourcePackage(FACE_API);
  copyFileSync(
    sourceFile(faceApi, 'model/face_recognition_model-weights_manifest.json'),
    join(dir, 'manifest.json'),
  );
  copyFileSync(
    sourceFile(faceApi, 'model/face_recognition_model.bin'),
    join(dir, 'face_recognition_model.bin'),
  );
  return join(dir, 'manifest.json');
}

describe('tfjs model files', () => {
  it('converts an intact copy', () => {
    expect(convertTfjsFile(copyHumanModel('liveness'), 'liveness').nodes.length).toBeGreaterThan(5);
  });

  it('a missing weights file names the file', () => {
    const json = copyHumanModel('liveness');
    rmSync(join(dir, 'liveness.bin'));
    expect(() => convertTfjsFile(json, 'liveness')).toThrow(ModelFileError);
    expect(() => convertTfjsFile(json, 'liveness')).toThrow(/liveness\.bin: missing/);
  });

  it('a truncated weights file is refused with both sizes', () => {
    const json = copyHumanModel('liveness');
    const bin = join(dir, 'liveness.bin');
    writeFileSync(bin, readFileSync(bin).subarray(0, 1000));
    expect(() => convertTfjsFile(json, 'liveness')).toThrow(
      /holds 1000 bytes but .* describes \d+: truncated/,
    );
  });

  it('a corrupt model.json is refused', () => {
    const json = copyHumanModel('liveness');
    writeFileSync(json, '{"modelTopology": {"node": [');
    expect(() => convertTfjsFile(json, 'liveness')).toThrow(/liveness\.json: not valid JSON/);
  });

  it('JSON that is not a graph model is refused', () => {
    const json = copyHumanModel('liveness');
    writeFileSync(json, '{"hello": 1}');
    expect(() => convertTfjsFile(json, 'liveness')).toThrow(/not a tfjs graph model/);
  });
});

describe('FaceRecognitionNet weights', () => {
  it('builds from an intact copy', () => {
    expect(buildFaceRecGraph(loadFaceRecWeights(copyFaceRec())).initializers.size).toBeGreaterThan(29);
  });

  it('a truncated .bin is refused', () => {
    const manifest = copyFaceRec();
    const bin = join(dir, 'face_recognition_model.bin');
    writeFileSync(bin, readFileSync(bin).subarray(0, 12345));
    expect(() => loadFaceRecWeights(manifest)).toThrow(/holds 12345 bytes .* truncated/);
  });

  it('a manifest missing a layer names the layer', () => {
    const manifest = copyFaceRec();
    const groups = JSON.parse(readFileSync(manifest, 'utf8'));
    // Drop one tensor and its bytes so the file sizes still agree and the architecture check must catch it.
    const dropped = groups[0].weights.pop();
    expect(dropped.name).toBe('fc');
    const bin = join(dir, 'face_recognition_model.bin');
    writeFileSync(bin, readFileSync(bin).subarray(0, readFileSync(bin).length - 256 * 128));
    writeFileSync(manifest, JSON.stringify(groups));
    expect(() => buildFaceRecGraph(loadFaceRecWeights(manifest))).toThrow(/"fc" missing from the manifest/);
  });

  it('a weights manifest of the wrong shape is refused', () => {
    const manifest = copyFaceRec();
    writeFileSync(manifest, '{"weights": []}');
    expect(() => loadFaceRecWeights(manifest)).toThrow(/not a tfjs weights manifest/);
  });
});
