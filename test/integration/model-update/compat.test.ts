import { describe, expect, it } from 'vitest';
import { checkCompatibility } from '../../../runtime/model-update/compat.ts';
import type { ModelManifest } from '../../../runtime/models/manifest.ts';
import {
  builtModel,
  manifestFor,
  type TinyEmbedderOptions,
  tinyEmbedder,
} from '../../helpers/model-update.ts';

const facerec = builtModel('facerec');
const blazeface = builtModel('blazeface');

function tiny(opts: TinyEmbedderOptions = {}, changes: Partial<ModelManifest> = {}) {
  const onnx = tinyEmbedder(opts);
  return { onnx, manifest: manifestFor(facerec.manifest, onnx, { version: '9.0.0', ...changes }) };
}

describe('checkCompatibility', () => {
  it('accepts the built models as replacements for themselves and each other precision', async () => {
    expect(await checkCompatibility(facerec, facerec.manifest)).toEqual({ ok: true, reasons: [] });
    expect(await checkCompatibility(builtModel('facerec', 'fp32'), facerec.manifest)).toEqual({
      ok: true,
      reasons: [],
    });
    expect(await checkCompatibility(builtModel('blazeface', 'fp32'), blazeface.manifest)).toEqual({
      ok: true,
      reasons: [],
    });
  });

  it('accepts a tiny model with the right shapes (whether it is any good is the self-test s job)', async () => {
    expect(await checkCompatibility(tiny(), facerec.manifest)).toEqual({ ok: true, reasons: [] });
  });

  it('refuses another task or model family', async () => {
    const result = await checkCompatibility(blazeface, facerec.manifest);
    expect(result.ok).toBe(false);
    expect(result.reasons).toEqual(
      expect.arrayContaining([
        'name is blazeface, the running model is facerec',
        'task is face-detection, the running model is a face-embedding model',
      ]),
    );
    const relabelled = { ...facerec, manifest: { ...facerec.manifest, task: 'anti-spoof' as const } };
    expect((await checkCompatibility(relabelled, facerec.manifest)).reasons).toContain(
      'task is anti-spoof, the running model is a face-embedding model',
    );
  });

  it('refuses another input size', async () => {
    const candidate = tiny(
      { inputSize: 112 },
      { input: { ...facerec.manifest.input, shape: [-1, 3, 112, 112] } },
    );
    expect((await checkCompatibility(candidate, facerec.manifest)).reasons).toEqual([
      'input shape [-1,3,112,112] differs from [-1,3,150,150]',
    ]);
  });

  it('refuses a fixed batch where the running model has a dynamic one', async () => {
    const candidate = tiny(
      { batch: 1 },
      {
        input: { ...facerec.manifest.input, shape: [1, 3, 150, 150] },
        outputs: [{ name: 'embedding', shape: [1, 128] }],
      },
    );
    expect((await checkCompatibility(candidate, facerec.manifest)).reasons).toEqual(
      expect.arrayContaining([
        'input batch 1 cannot replace a dynamic batch',
        'output shapes [1,128] differ from [-1,128]',
      ]),
    );
  });

  it('refuses other normalisation or channel order', async () => {
    const input = { ...facerec.manifest.input, mean: [127.5, 127.5, 127.5], channelOrder: 'BGR' as const };
    const { reasons } = await checkCompatibility(
      { ...facerec, manifest: { ...facerec.manifest, input } },
      facerec.manifest,
    );
    expect(reasons).toEqual([
      'input channel order BGR differs from RGB',
      'input normalisation mean [127.5,127.5,127.5] std [255,255,255] differs from mean [122.782,117.001,104.298] std [255,255,255]',
    ]);
  });

  it('refuses an embedder without FAR thresholds', async () => {
    const { thresholds: _, ...bare } = facerec.manifest;
    expect((await checkCompatibility({ ...facerec, manifest: bare }, facerec.manifest)).reasons).toEqual([
      'an embedder must come with its FAR thresholds',
    ]);
  });

  it('catches a manifest that lies about the graph: input size', async () => {
    const { reasons } = await checkCompatibility(tiny({ inputSize: 112 }), facerec.manifest);
    expect(reasons).toEqual([
      "input: graph shape [?,3,112,112] does not match the manifest's [-1,3,150,150]",
    ]);
  });

  it('catches a manifest that lies about the graph: names', async () => {
    const { reasons } = await checkCompatibility(
      tiny({ inputName: 'data', outputName: 'features' }),
      facerec.manifest,
    );
    expect(reasons).toEqual([
      'model inputs are [data], the manifest says [input]',
      'model outputs are [features], the manifest says [embedding]',
    ]);
  });

  it('catches output dims the graph does not declare by running it', async () => {
    const { reasons } = await checkCompatibility(tiny({ dim: 64, hideOutputDims: true }), facerec.manifest);
    expect(reasons).toEqual([
      'embedding came out [2,64] for input [2,3,150,150], the manifest says [-1,128]',
    ]);
  });

  it('refuses bytes ONNX Runtime cannot load', async () => {
    const junk = new TextEncoder().encode('this is not a model');
    const { reasons } = await checkCompatibility(
      { onnx: junk, manifest: manifestFor(facerec.manifest, junk) },
      facerec.manifest,
    );
    expect(reasons).toEqual([expect.stringMatching(/^ONNX Runtime cannot load the model: /)]);
  });
});
