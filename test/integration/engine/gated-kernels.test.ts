// The gated (ReLU-zero) int8 embedder on the kernels and on ONNX Runtime, on real aligned faces: the
// same embeddings and the same gate decisions, while the kernels skip what the gates close.
import * as ortRuntime from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { lowerQdqModel } from '../../../runtime/engine/lower.ts';
import { ortInt8Saturates } from '../../../runtime/engine/ort.ts';
import { loadModel, MODEL_NAMES, manifestPathFor } from '../../../runtime/models/manifest.ts';
import { readOnnx } from '../../../runtime/models/onnx/reader.ts';
import { serializeModel } from '../../../tools/models/onnx/writer.ts';
import { kernelsBesideOrt } from '../../helpers/engines.ts';
import { dilateMask, expectSame, fastIsas, kernelsOrBuild, withIsa } from '../../helpers/kernels.ts';
import { MODELS_DIR } from '../../helpers/paths.ts';
import { cosineSimilarity } from '../../helpers/similarity.ts';

const k = kernelsOrBuild();
const { manifest, onnx } = loadModel(manifestPathFor(MODELS_DIR, MODEL_NAMES.gatedEmbedder, 'int8'));
const one = (data: Float32Array) => ({ input: { data, dims: [1, 3, 150, 150] } });

// ORT is the reference only where its int8 is exact (x86 without VNNI saturates it; docs/kernels.md).
const saturates = ortInt8Saturates();

describe.skipIf(!k)('gated embedder on the kernels', () => {
  const binding = k as NonNullable<typeof k>;
  const suite = kernelsBesideOrt(binding, manifest, onnx);

  it('agrees with ONNX Runtime (which computes the same graph densely) and skips what the gates close', async () => {
    const cosines: number[] = [];
    const skipped: number[] = [];
    for (const data of suite.feeds) {
      const mine = (await suite.kernels.run(one(data))).embedding.data;
      const theirs = (await suite.ort.run(one(data))).embedding.data;
      cosines.push(cosineSimilarity(mine, theirs));
      const macs = suite.kernels.lastRunMacs();
      skipped.push(1 - macs.conv / macs.convDense);
    }
    const mean = skipped.reduce((a, b) => a + b, 0) / skipped.length;
    console.log(
      `gated kernels vs ORT, ${suite.feeds.length} faces: min cosine ${Math.min(...cosines).toFixed(6)}; conv MACs skipped ${(100 * Math.min(...skipped)).toFixed(1)}-${(100 * Math.max(...skipped)).toFixed(1)}% (mean ${(100 * mean).toFixed(1)}%)`,
    );
    if (!saturates) expect(Math.min(...cosines)).toBeGreaterThanOrEqual(0.999);
    // Training skipped 30% of the conv MACs on held-out faces; real faces here must skip a comparable share.
    expect(Math.min(...skipped)).toBeGreaterThan(0.2);
  });

  it.skipIf(saturates)('makes the same gate decisions as the ONNX graph, pixel by pixel', async () => {
    const lowered = lowerQdqModel(onnx);
    expect(lowered.gates).toHaveLength(29);
    const model = readOnnx(onnx);
    // The decisions as float outputs (the graph writer has no bool outputs).
    const outputs = lowered.gates.map((g) => {
      const name = `${g.conv}/open_float`;
      model.graph.exposeOutput(model.graph.add('Cast', [g.open], { to: { i: 1 } }, name), name);
      return name;
    });
    const session = await ortRuntime.InferenceSession.create(serializeModel(model.graph, model.info), {
      intraOpNumThreads: 1,
    });
    const net = new binding.Network(lowered.plan);
    let pixels = 0;
    let differ = 0;
    for (const data of suite.feeds) {
      net.runFloat(data, lowered.input.scale, lowered.input.zeroPoint);
      const theirs = await session.run({ input: new ortRuntime.Tensor('float32', data, [1, 3, 150, 150]) });
      for (const [i, g] of lowered.gates.entries()) {
        const [h, w] = net.shape(g.mask);
        const mine = dilateMask(net.tensor(g.mask) as Uint8Array, h, w, g.dilate);
        const open = theirs[outputs[i]].data as Float32Array;
        expect(open.length, g.conv).toBe(mine.length);
        pixels += mine.length;
        mine.forEach((m, i) => {
          if (m !== (open[i] ? 1 : 0)) differ++;
        });
      }
    }
    await session.release();
    console.log(`gate decisions: ${differ} of ${pixels} pixels differ from ONNX Runtime`);
    // A tile whose mean logit sits within rounding of the threshold may fall either way.
    expect(differ / pixels).toBeLessThan(0.002);
  });

  it('computes the gated network bit-exactly on scalar and each fast ISA, at 1 and 2 threads', () => {
    const lowered = lowerQdqModel(onnx);
    const net = new binding.Network(lowered.plan);
    const { scale, zeroPoint } = lowered.input;
    for (const data of suite.feeds.slice(0, 2)) {
      const scalar = withIsa(binding, 'scalar', () => net.runFloat(data, scale, zeroPoint, 1));
      for (const isa of fastIsas(binding))
        for (const threads of [1, 2])
          expectSame(
            withIsa(binding, isa, () => net.runFloat(data, scale, zeroPoint, threads)),
            scalar,
            `${isa} ${threads}t`,
          );
    }
  });
});
