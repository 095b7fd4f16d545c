// Manifests of the built models: schema, and refusal of models that do not match them.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  loadModel,
  ManifestError,
  manifestPathFor,
  validateManifest,
} from '../../../runtime/models/manifest.ts';
import { MODEL_SPECS } from '../../../tools/models/specs.ts';
import { MODELS_DIR } from '../../helpers/paths.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-manifest-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function copyModel(name: string, precision: 'fp32' | 'int8'): string {
  const manifest = manifestPathFor(MODELS_DIR, name, precision);
  const file = JSON.parse(readFileSync(manifest, 'utf8')).file;
  copyFileSync(join(MODELS_DIR, file), join(dir, file));
  copyFileSync(manifest, join(dir, `${name}.${precision}.json`));
  return join(dir, `${name}.${precision}.json`);
}

describe('built manifests', () => {
  for (const spec of MODEL_SPECS) {
    for (const precision of ['fp32', 'int8'] as const) {
      it(`${spec.name} ${precision} validates and matches its model`, () => {
        const { manifest, onnx } = loadModel(manifestPathFor(MODELS_DIR, spec.name, precision));
        expect(manifest.precision).toBe(precision);
        expect(manifest.bytes).toBe(onnx.length);
        expect(Boolean(manifest.quantization)).toBe(precision === 'int8');
        expect(Boolean(manifest.thresholds)).toBe(spec.task === 'face-embedding');
      });
    }
  }

  it('embedder thresholds are ordered: FAR 1e-3 needs a stricter (higher) cosine than 1e-2', () => {
    const { manifest } = loadModel(manifestPathFor(MODELS_DIR, 'facerec', 'int8'));
    const far = manifest.thresholds?.far;
    expect(far?.['0.001']).toBeGreaterThan(far?.['0.01'] ?? 1);
  });
});

describe('refusing bad models', () => {
  it('a model whose sha256 does not match its manifest', () => {
    const manifestPath = copyModel('liveness', 'int8');
    const onnxPath = join(dir, 'liveness.int8.onnx');
    const bytes = readFileSync(onnxPath);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(onnxPath, bytes);
    expect(() => loadModel(manifestPath)).toThrow(ManifestError);
    expect(() => loadModel(manifestPath)).toThrow(
      /sha256 [0-9a-f]{64} does not match .* \(tampered or corrupt\)/,
    );
  });

  it('a truncated model', () => {
    const manifestPath = copyModel('liveness', 'fp32');
    const onnxPath = join(dir, 'liveness.fp32.onnx');
    writeFileSync(onnxPath, readFileSync(onnxPath).subarray(0, 100));
    expect(() => loadModel(manifestPath)).toThrow(
      /has 100 bytes, the manifest says \d+ \(truncated or replaced\)/,
    );
  });

  it('a missing model file and a missing manifest', () => {
    const manifestPath = copyModel('liveness', 'fp32');
    rmSync(join(dir, 'liveness.fp32.onnx'));
    expect(() => loadModel(manifestPath)).toThrow(/model file .*liveness\.fp32\.onnx is missing/);
    expect(() => loadModel(join(dir, 'nope.json'))).toThrow(/missing \(run `npm run models`\)/);
  });

  it('a manifest that breaks the schema names the field', () => {
    const manifestPath = copyModel('liveness', 'fp32');
    const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
    m.precision = 'int4';
    delete m.sha256;
    writeFileSync(manifestPath, JSON.stringify(m));
    expect(() => loadModel(manifestPath)).toThrow(
      /field precision must be equal to one of the allowed values/,
    );
    expect(() => loadModel(manifestPath)).toThrow(/must have required property 'sha256'/);
  });

  it('a manifest naming a file outside its folder', () => {
    const m = JSON.parse(readFileSync(manifestPathFor(MODELS_DIR, 'liveness', 'fp32'), 'utf8'));
    m.file = '../../etc/passwd.onnx';
    expect(validateManifest(m).join()).toMatch(/field file must match pattern/);
  });

  it('a manifest that is not JSON', () => {
    const manifestPath = join(dir, 'broken.json');
    writeFileSync(manifestPath, '{"name": ');
    expect(() => loadModel(manifestPath)).toThrow(/not valid JSON/);
  });
});
