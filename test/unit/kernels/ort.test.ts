// The conv must reproduce ONNX Runtime's QLinearConv (u8 activations, per-channel s8 weights,
// int32 bias) bit for bit: the kernels replace ORT on the same quantized model. Where ORT's own int8
// saturates (x86 without VNNI, ortInt8Saturates), the kernels keep exact arithmetic instead: there
// they must differ from ORT on inputs built to saturate, and still equal the scalar reference.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ortInt8Saturates } from '../../../runtime/engine/ort.ts';
import { Graph } from '../../../runtime/models/onnx/graph.ts';
import { serializeModel } from '../../../tools/models/onnx/writer.ts';
import { expectSame, fastIsas, kernelsOrBuild, testRandom, withIsa } from '../../helpers/kernels.ts';

const k = kernelsOrBuild();
const f32 = Math.fround;
const saturates = ortInt8Saturates();

interface Case {
  h: number;
  w: number;
  cin: number;
  cout: number;
  kh: number;
  stride: number;
  pad: number;
  extremes?: boolean;
}

function qlinearConvModel(
  c: Case,
  xs: number,
  xzp: number,
  wOihw: Int8Array,
  ws: Float32Array,
  ys: number,
  yzp: number,
  bias: Int32Array,
): Uint8Array {
  const g = new Graph('qlinearconv');
  const x = g.addInput({ name: 'x', type: 'uint8', shape: [1, c.cin, c.h, c.w] });
  const inputs = [
    x,
    g.floatConst('x_scale', [xs], []),
    g.addInitializer('x_zp', 'uint8', [], Uint8Array.of(xzp)),
    g.addInitializer('w', 'int8', [c.cout, c.cin, c.kh, c.kh], wOihw),
    g.addInitializer('w_scale', 'float32', [c.cout], ws),
    g.addInitializer('w_zp', 'int8', [c.cout], new Int8Array(c.cout)),
    g.floatConst('y_scale', [ys], []),
    g.addInitializer('y_zp', 'uint8', [], Uint8Array.of(yzp)),
    g.addInitializer('bias', 'int32', [c.cout], bias),
  ];
  const y = g.add('QLinearConv', inputs, {
    kernel_shape: { ints: [c.kh, c.kh] },
    strides: { ints: [c.stride, c.stride] },
    pads: { ints: [c.pad, c.pad, c.pad, c.pad] },
  });
  g.addOutput({ name: y, type: 'uint8' });
  return serializeModel(g, { producerName: 'facegate-test', producerVersion: '0' });
}

const nchwToNhwc = (x: Uint8Array, c: number, h: number, w: number) => {
  const out = new Uint8Array(x.length);
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) out[i * c + ch] = x[ch * h * w + i];
  return out;
};

describe.skipIf(!k)(
  saturates
    ? 'conv keeps exact int8 where ONNX Runtime QLinearConv saturates (x86 without VNNI)'
    : 'conv equals ONNX Runtime QLinearConv',
  () => {
    if (!k) return;
    const cases: Case[] = [
      { h: 35, w: 35, cin: 32, cout: 32, kh: 3, stride: 1, pad: 1 },
      { h: 17, w: 17, cin: 64, cout: 128, kh: 3, stride: 2, pad: 0 },
      { h: 40, w: 40, cin: 3, cout: 32, kh: 7, stride: 2, pad: 0 },
      { h: 4, w: 4, cin: 256, cout: 256, kh: 3, stride: 1, pad: 1 },
      { h: 9, w: 7, cin: 17, cout: 21, kh: 3, stride: 1, pad: 1, extremes: true },
    ];

    it.each(cases)('%o', async (c) => {
      const r = testRandom(c.h * 1000 + c.cin);
      const xs = f32(0.02 + r() * 0.02);
      const ys = f32(0.05 + r() * 0.1);
      const xzp = c.extremes ? 0 : r.int(0, 255);
      const yzp = r.int(0, 255);
      const wOihw = r.s8(c.cout * c.cin * c.kh * c.kh, c.extremes);
      const ws = Float32Array.from(
        { length: c.cout },
        () => (0.5 + r()) / (127 * Math.sqrt(c.cin * c.kh * c.kh) * 4),
      );
      const bias = Int32Array.from({ length: c.cout }, () => r.int(-20000, 20000));
      const xNchw = r.u8(c.cin * c.h * c.w, c.extremes);

      const session = await ort.InferenceSession.create(
        qlinearConvModel(c, xs, xzp, wOihw, ws, ys, yzp, bias),
        {
          intraOpNumThreads: 1,
        },
      );
      const result = await session.run({ x: new ort.Tensor('uint8', xNchw, [1, c.cin, c.h, c.w]) });
      const y = Object.values(result)[0];
      const [, cout, oh, ow] = y.dims;
      const want = nchwToNhwc(y.data as Uint8Array, cout, oh, ow);

      // OHWI weights and ORT's own float32 order for the multiplier: (x_scale * w_scale) / y_scale.
      const weights = new Int8Array(wOihw.length);
      for (let co = 0; co < c.cout; co++)
        for (let ci = 0; ci < c.cin; ci++)
          for (let t = 0; t < c.kh * c.kh; t++)
            weights[(co * c.kh * c.kh + t) * c.cin + ci] = wOihw[(co * c.cin + ci) * c.kh * c.kh + t];
      const multipliers = Float32Array.from(ws, (s) => f32(f32(xs * s) / ys));
      const conv = new k.Conv({
        weights,
        bias,
        multipliers,
        cin: c.cin,
        cout: c.cout,
        kh: c.kh,
        kw: c.kh,
        stride: c.stride,
        pads: [c.pad, c.pad, c.pad, c.pad],
        zpIn: xzp,
        zpOut: yzp,
      });
      const x = nchwToNhwc(xNchw, c.cin, c.h, c.w);
      expect(conv.outShape(c.h, c.w, c.cin)).toEqual([oh, ow, cout]);
      const exact = withIsa(k, 'scalar', () => conv.run(x, c.h, c.w, c.cin));
      for (const isa of fastIsas(k))
        expectSame(
          withIsa(k, isa, () => conv.run(x, c.h, c.w, c.cin)),
          exact,
          `${isa} vs scalar`,
        );
      if (!saturates) expectSame(exact, want, 'scalar vs ORT');
      // Extreme inputs (0/255 activations, -128/127 weights) overflow int16 pair sums.
      else if (c.extremes) expect(exact.some((v, i) => v !== want[i])).toBe(true);
      await session.release();
    });
  },
);
