// The gated embedder built from training/output/ reproduces the torch model it was trained as, and its
// gate pattern (docs/relu-zero.md) is what the kernel engine will look for, before and after the
// toolchain's int8 rewrite.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { findGates } from '../../../../runtime/models/gated/pattern.ts';
import type { Graph } from '../../../../runtime/models/onnx/graph.ts';
import { rgbToNchw } from '../../../../runtime/vision/tensor.ts';
import { FACEREC_MEAN_RGB, FACEREC_STD } from '../../../../tools/models/facerec/build.ts';
import { buildGatedFaceRec, GATES_DIR, loadGates } from '../../../../tools/models/gated/build.ts';
import { serializeModel } from '../../../../tools/models/onnx/writer.ts';
import { planQuantization, quantizeGraph } from '../../../../tools/models/quantize/qdq.ts';
import { cosineSimilarity as cosine } from '../../../helpers/similarity.ts';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

interface Expected {
  layers: string[];
  crops: { png: string; teacher: number[]; gated: number[]; openFraction: number[] }[];
}

const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Expected;

describe('gated FaceRecognitionNet', () => {
  it('matches the torch reference embeddings and gate decisions on the fixture crops', async () => {
    const graph = buildGatedFaceRec();
    const sites = findGates(graph);
    // Expose each gate's decision as a float map, to compare with torch's open fractions.
    const opens = sites.map((s) => {
      const name = `${s.conv.name}/open_fraction`;
      graph.exposeOutput(graph.add('Cast', [s.open.outputs[0]], { to: { i: 1 } }, name), name);
      return { conv: s.conv.name, output: name };
    });
    const session = await ort.InferenceSession.create(
      serializeModel(graph, { producerName: 'facegate-test', producerVersion: '0' }),
    );
    for (const crop of expected.crops) {
      const rgb = await sharp(join(FIXTURES, crop.png)).raw().toBuffer();
      const data = rgbToNchw(rgb, 150, FACEREC_MEAN_RGB, [FACEREC_STD, FACEREC_STD, FACEREC_STD]);
      const out = await session.run({ input: new ort.Tensor('float32', data, [1, 3, 150, 150]) });
      const embedding = out.embedding.data as Float32Array;
      expect(cosine(embedding, crop.gated)).toBeGreaterThanOrEqual(0.999);
      for (const { conv, output } of opens) {
        const mask = out[output].data as Float32Array;
        const fraction = mask.reduce((a, b) => a + b, 0) / mask.length;
        // A logit within float rounding of the threshold may fall either way.
        expect(Math.abs(fraction - crop.openFraction[expected.layers.indexOf(conv)]), conv).toBeLessThan(
          0.01,
        );
      }
    }
    await session.release();
  });

  it('has one parseable gate per conv, before and after int8 quantization', () => {
    const graph = buildGatedFaceRec();
    const check = (g: Graph) => {
      const sites = findGates(g);
      expect(sites.map((s) => s.conv.name).sort()).toEqual([...expected.layers].sort());
      for (const s of sites) {
        const residual = s.conv.name.includes('/conv2');
        // conv2 feeds the residual add: its own output is gated, not a ReLU's.
        expect(s.relu === undefined).toBe(residual);
        // conv1 follows conv2's mask dilated by conv2's 3x3 window.
        expect(s.dilate !== undefined).toBe(s.conv.name.includes('/conv1'));
        const threshold = g.initializers.get(s.open.inputs[1]);
        expect(threshold?.data[0]).toBe(loadGates().doc.threshold);
      }
    };
    check(graph);
    const plan = planQuantization(graph);
    const ranges = new Map(plan.calibrated.map((t) => [t, { lo: -8, hi: 8 }]));
    check(quantizeGraph(graph, plan, ranges).graph);
  });

  it('keeps the committed training output small', () => {
    const doc = loadGates().doc;
    expect(doc.convs).toHaveLength(29);
    const bytes = ['gates.json', 'gates.bin', 'manifest.json'].reduce(
      (sum, f) => sum + statSync(join(GATES_DIR, f)).size,
      0,
    );
    expect(bytes).toBeLessThan(25 * 1024 * 1024);
  });
});
