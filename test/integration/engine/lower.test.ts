// Lowering the built int8 embedder into a kernels plan: structure, parameters, layouts, and a clear
// error naming the node for everything it cannot lower.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PlanOp } from '../../../runtime/engine/kernels-addon.ts';
import { LoweringError, lowerQdqModel, quantizeU8 } from '../../../runtime/engine/lower.ts';
import type { Tensor } from '../../../runtime/models/onnx/graph.ts';
import { readOnnx } from '../../../runtime/models/onnx/reader.ts';
import { FACEREC_BLOCKS } from '../../../tools/models/facerec/build.ts';
import { MODELS_DIR } from '../../helpers/paths.ts';

const INT8 = readFileSync(join(MODELS_DIR, 'facerec.int8.onnx'));
const read = () => readOnnx(INT8);
const lowered = lowerQdqModel(INT8);
const ops = lowered.plan.ops;
const f32 = Math.fround;
const initializers = read().graph.initializers;

function init(name: string): Tensor {
  const t = initializers.get(name);
  if (!t) throw new Error(`no initializer ${name}`);
  return t;
}
const value = (name: string) => Number(init(name).data[0]);
const ofKind = <K extends PlanOp['op']>(op: K) =>
  ops.filter((o): o is Extract<PlanOp, { op: K }> => o.op === op);

describe('lowerQdqModel on the int8 embedder', () => {
  it('produces the whole network as one plan', () => {
    const counts: Record<string, number> = {};
    for (const op of ops) counts[op.op] = (counts[op.op] ?? 0) + 1;
    expect(counts).toEqual({ conv: 29, maxpool: 1, add: 14, avgpool: 4, pad: 5, mean: 1, fc: 1 });
    expect(lowered.plan.input).toEqual({ id: 0, shape: [150, 150, 3] });
    expect(lowered.plan.tensors).toBe(ops.length + 1);
    expect(lowered.plan.output).toBe(ops[ops.length - 1].output);
    expect(lowered.input).toEqual({
      name: 'input',
      channels: 3,
      height: 150,
      width: 150,
      scale: value('input/s'),
      zeroPoint: value('input/z'),
    });
    expect(lowered.output).toEqual({ name: 'embedding', size: 128 });
    expect(lowered.tensorNames).toHaveLength(lowered.plan.tensors);
    expect(lowered.tensorNames.slice(0, 3)).toEqual([
      'input/q:out',
      'conv32_down/relu:out/q:out',
      'pool:out/q:out',
    ]);
    expect(lowered.tensorNames[lowered.plan.output]).toBe('fc:out');
    // docs/kernels.md: 270.82M conv MACs.
    expect(lowered.macs).toBe(270_821_376);
  });

  it('transposes conv weights to OHWI and computes multipliers in ORT order', () => {
    const stem = ofKind('conv')[0];
    const w = init('conv32_down/weights/q').data as Int8Array;
    const ws = init('conv32_down/weights/s').data as Float32Array;
    const [cout, cin, kh, kw] = [32, 3, 7, 7];
    expect(stem).toMatchObject({
      input: 0,
      cin,
      cout,
      kh,
      kw,
      stride: [2, 2],
      pads: [0, 0, 0, 0],
      relu: true,
    });
    for (let co = 0; co < cout; co++)
      for (let ci = 0; ci < cin; ci++)
        for (let y = 0; y < kh; y++)
          for (let x = 0; x < kw; x++)
            expect(stem.weights[((co * kh + y) * kw + x) * cin + ci]).toBe(
              w[((co * cin + ci) * kh + y) * kw + x],
            );
    const sIn = value('input/s');
    const sOut = value('conv32_down:out/s');
    expect(Array.from(stem.multipliers)).toEqual(Array.from(ws, (s) => f32(f32(sIn * s) / sOut)));
    expect(stem.bias).toEqual(init('conv32_down/bias/q').data);
    expect(stem.zpIn).toBe(value('input/z'));
    expect(stem.zpOut).toBe(value('conv32_down:out/z'));
  });

  it('fuses each ReLU into the conv or add before it', () => {
    const convs = ofKind('conv');
    // Stem, then conv1 (ReLU) and conv2 (none) per block.
    expect(convs.map((c) => c.relu)).toEqual([true, ...FACEREC_BLOCKS.flatMap(() => [true, false])]);
    expect(ofKind('add').every((a) => a.relu)).toBe(true);
  });

  it('lowers down blocks: avgpool shortcut, channel pad, spatial pad of the residual', () => {
    const avg = ofKind('avgpool');
    expect(avg.every((a) => a.mult === 1 && a.zpIn === a.zpOut)).toBe(true);
    expect(avg[0]).toMatchObject({ kernel: [2, 2], stride: [2, 2], pads: [0, 0, 0, 0] });
    const pads = ofKind('pad').map((p) => p.pads);
    expect(pads).toEqual([
      [0, 0, 0, 0, 0, 32],
      [0, 0, 0, 0, 0, 64],
      [0, 0, 0, 0, 0, 128],
      [0, 0, 0, 1, 1, 0],
      [0, 0, 0, 1, 1, 0],
    ]);
    // Each pad fills with its tensor's zero point (real 0).
    const sizepad = ofKind('pad')[3];
    expect(sizepad.value).toBe(value('conv256_down/conv2:out/z'));
    const add = ofKind('add').find((a) => a.inputs.includes(sizepad.output));
    const sOut = value('conv256_down/add:out/s');
    expect(add?.multA).toBe(f32(value('conv256_down/conv2:out/s') / sOut));
  });

  it('ends in mean and an fc with per-column scales, weights as [cout][cin]', () => {
    const mean = ofKind('mean')[0];
    const sIn = value('conv256_down_out/relu:out/s');
    expect(mean.mult).toBe(f32(sIn / value('global_mean:out/s')));
    const fc = ofKind('fc')[0];
    const b = init('fc/weights/q').data as Int8Array; // [256, 128]
    const bs = init('fc/weights/s').data as Float32Array;
    expect(fc).toMatchObject({ cin: 256, cout: 128, zpIn: value('global_mean:out/z') });
    for (const [c, k] of [
      [0, 0],
      [5, 200],
      [127, 255],
    ])
      expect(fc.weights[c * 256 + k]).toBe(b[k * 128 + c]);
    expect(Array.from(fc.scale)).toEqual(Array.from(bs, (s) => f32(value('global_mean:out/s') * s)));
    expect(fc.bias.every((v) => v === 0)).toBe(true);
  });
});

describe('lowerQdqModel errors name the node and op', () => {
  const lowerModified = (edit: (g: ReturnType<typeof read>['graph']) => void) => {
    const model = read();
    edit(model.graph);
    return () => lowerQdqModel(model);
  };

  it('rejects the fp32 embedder and the other int8 models', () => {
    expect(() => lowerQdqModel(readFileSync(join(MODELS_DIR, 'facerec.fp32.onnx')))).toThrow(
      /cannot lower Conv node "conv32_down" to native kernels: input "input" is not dequantized/,
    );
    for (const name of ['blazeface', 'antispoof', 'liveness'])
      expect(() => lowerQdqModel(readFileSync(join(MODELS_DIR, `${name}.int8.onnx`)))).toThrow(
        /cannot lower \w+ node ".+" to native kernels: /,
      );
  });

  it('rejects ops and attributes the kernels do not have', () => {
    const node = (g: ReturnType<typeof read>['graph'], name: string) => {
      const n = g.nodes.find((x) => x.name === name);
      if (!n) throw new Error(name);
      return n;
    };
    expect(
      lowerModified((g) => {
        node(g, 'conv32_1/relu').op = 'Sigmoid';
      }),
    ).toThrow(/Sigmoid node "conv32_1\/relu".*operator not supported/);
    expect(
      lowerModified((g) => {
        node(g, 'conv32_1/conv1').attrs.group = { i: 2 };
      }),
    ).toThrow(/Conv node "conv32_1\/conv1".*grouped/);
    expect(
      lowerModified((g) => {
        node(g, 'pool').attrs.ceil_mode = { i: 1 };
      }),
    ).toThrow(/MaxPool node "pool".*ceil_mode/);
    expect(
      lowerModified((g) => {
        (g.initializers.get('conv32_2/conv2/weights/q')?.data as Int8Array)[3] = -128;
      }),
    ).toThrow(/Conv node "conv32_2\/conv2".*-128/);
    expect(
      lowerModified((g) => {
        g.initializers.set('conv64_down/avgpool:out/s', {
          name: 's',
          type: 'float32',
          dims: [],
          data: Float32Array.of(1),
        });
      }),
    ).toThrow(/Pad node "conv64_down\/chanpad_1".*equal input and output quantization/);
    expect(
      lowerModified((g) => {
        g.initializers.set('global_mean:out/z', { name: 'z', type: 'int8', dims: [], data: Int8Array.of(0) });
      }),
    ).toThrow(/QuantizeLinear node "global_mean:out\/q".*uint8 scalar/);
  });

  it('is a LoweringError', () => {
    expect(lowerModified((g) => g.nodes.splice(0, 1))).toThrow(LoweringError);
  });
});

describe('input quantization', () => {
  it('rounds half to even and saturates, as QuantizeLinear', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001].map((x) => quantizeU8(x, 1, 100))).toEqual([
      100, 102, 102, 100, 98, 98, 102, 103,
    ]);
    expect([-1e9, 1e9, 0].map((x) => quantizeU8(x, 0.5, 3))).toEqual([0, 255, 3]);
  });
});
