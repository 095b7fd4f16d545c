// ReLU-zero gates in the native Network: the gate op against a plain-JS statement of the ONNX pattern
// (docs/relu-zero.md), masked convs against the dense conv, and the native input quantization.
import { describe, expect, it } from 'vitest';
import type { GateOptions, NetworkPlan, PlanOp } from '../../../runtime/engine/kernels-addon.ts';
import { quantizeU8 } from '../../../runtime/engine/lower.ts';
import {
  dilateMask,
  expectSame,
  fastIsas,
  kernelsOrBuild,
  quantize,
  type TestRandom,
  testRandom,
  withIsa,
} from '../../helpers/kernels.ts';

const k = kernelsOrBuild();
const f32 = Math.fround;

/** ONNX: QLinearConv (one channel) -> DequantizeLinear -> AveragePool (ceil) -> Resize/Slice ->
 * [QuantizeLinear -> DequantizeLinear] -> Greater, in float32 where ONNX Runtime uses float32. */
function gateReference(g: GateOptions, input: Uint8Array, [h, w, c]: number[]): Uint8Array {
  const [sh, sw] = typeof g.stride === 'number' ? [g.stride, g.stride] : (g.stride ?? [1, 1]);
  const [pt, pl, pb, pr] = g.pads ?? [0, 0, 0, 0];
  const gh = Math.floor((h + pt + pb - g.kh) / sh) + 1;
  const gw = Math.floor((w + pl + pr - g.kw) / sw) + 1;
  const logits = new Float32Array(gh * gw);
  for (let oy = 0; oy < gh; oy++)
    for (let ox = 0; ox < gw; ox++) {
      let acc = g.bias;
      for (let ky = 0; ky < g.kh; ky++)
        for (let kx = 0; kx < g.kw; kx++) {
          const iy = oy * sh - pt + ky;
          const ix = ox * sw - pl + kx;
          if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
          for (let ci = 0; ci < c; ci++)
            acc += (input[(iy * w + ix) * c + ci] - g.zpIn) * g.weights[(ky * g.kw + kx) * c + ci];
        }
      const q = quantize(acc, g.mult, g.zpLogit, false);
      logits[oy * gw + ox] = f32((q - g.zpLogit) * g.scaleLogit);
    }
  const mask = new Uint8Array(g.outH * g.outW);
  for (let y = 0; y < g.outH; y++)
    for (let x = 0; x < g.outW; x++) {
      const ty = Math.floor(y / g.tile) * g.tile;
      const tx = Math.floor(x / g.tile) * g.tile;
      let sum = 0;
      let count = 0;
      for (let yy = ty; yy < Math.min(gh, ty + g.tile); yy++)
        for (let xx = tx; xx < Math.min(gw, tx + g.tile); xx++, count++)
          sum = f32(sum + logits[yy * gw + xx]);
      let v = f32(sum / count);
      if (g.decision) {
        const q = quantizeU8(v, g.decision.scale, g.decision.zeroPoint);
        v = f32((q - g.decision.zeroPoint) * g.decision.scale);
      }
      mask[y * g.outW + x] = v > g.threshold ? 1 : 0;
    }
  return mask;
}

type GateOp = Extract<PlanOp, { op: 'gate' }>;

function randomGate(r: TestRandom, input: number, output: number, shape: number[]): GateOp {
  const [h, w, cin] = shape;
  const kh = r() < 0.5 ? 1 : 3;
  const stride = r.int(1, 2);
  const pad = kh === 3 ? r.int(0, 1) : 0;
  const gh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const gw = Math.floor((w + 2 * pad - kh) / stride) + 1;
  const scaleLogit = f32(0.05 * 2 ** (r.int(-10, 10) / 10));
  return {
    op: 'gate',
    input,
    output,
    weights: r.s8(kh * kh * cin),
    bias: r.int(-3000, 3000),
    mult: f32(1 / (kh * kh * cin * 64)),
    cin,
    kh,
    kw: kh,
    stride,
    pads: [pad, pad, pad, pad],
    zpIn: r.int(0, 255),
    scaleLogit,
    zpLogit: r.int(0, 255),
    tile: r.int(1, 4),
    outH: r.int(Math.max(1, gh - 1), gh),
    outW: r.int(Math.max(1, gw - 1), gw),
    ...(r() < 0.5 ? { decision: { scale: f32(scaleLogit * 1.7), zeroPoint: r.int(0, 255) } } : {}),
    threshold: f32(r.int(-2, 2) * scaleLogit),
  };
}

describe.skipIf(!k)('ReLU-zero gates', () => {
  if (!k) return;

  it('decide as the ONNX pattern does, on every ISA', () => {
    const r = testRandom(7);
    for (let iter = 0; iter < 40; iter++) {
      const shape = [r.int(3, 24), r.int(3, 24), [1, 3, 16, 32, 33][r.int(0, 4)]];
      const gate = randomGate(r, 0, 1, shape);
      const plan: NetworkPlan = {
        tensors: 2,
        input: { id: 0, shape: shape as [number, number, number] },
        output: 1,
        ops: [gate],
      };
      const input = r.u8(shape[0] * shape[1] * shape[2]);
      const want = gateReference(gate, input, shape);
      for (const isa of ['scalar' as const, ...fastIsas(k)])
        withIsa(k, isa, () => {
          expectSame(new k.Network(plan).run(input), want, `${isa} gate ${iter}`);
        });
    }
  });

  it('compute a conv only where its (dilated) mask is open and write real 0 elsewhere', () => {
    const r = testRandom(11);
    const shape: [number, number, number] = [12, 12, 16];
    const conv = (output: number, mask?: number, maskDilate?: number): PlanOp => ({
      op: 'conv',
      input: 0,
      output,
      cin: 16,
      cout: 32,
      kh: 3,
      kw: 3,
      stride: 1,
      pads: [1, 1, 1, 1],
      relu: true,
      weights: testRandom(5).s8(32 * 9 * 16),
      bias: Int32Array.from({ length: 32 }, () => 100),
      multipliers: new Float32Array(32).fill(f32(1 / 2000)),
      zpIn: 3,
      zpOut: 9,
      ...(mask === undefined ? {} : { mask }),
      ...(maskDilate === undefined ? {} : { maskDilate }),
    });
    // Input centred on the zero point and no bias: the logits' signs vary from tile to tile.
    const gate: GateOp = {
      ...randomGate(r, 0, 1, shape),
      kh: 3,
      kw: 3,
      stride: 1,
      pads: [1, 1, 1, 1],
      zpIn: 128,
      bias: 0,
      tile: 4,
      outH: 12,
      outW: 12,
      weights: r.s8(9 * 16),
      threshold: 0,
    };
    const plan: NetworkPlan = {
      tensors: 5,
      input: { id: 0, shape },
      output: 4,
      ops: [gate, conv(2), conv(3, 1), conv(4, 1, 3)],
    };
    const net = new k.Network(plan);
    let partial = 0;
    for (let trial = 0; trial < 8; trial++) {
      const input = r.u8(12 * 12 * 16);
      net.run(input);
      const mask = net.tensor(1) as Uint8Array;
      const dense = net.tensor(2) as Uint8Array;
      const open = mask.reduce((a, b) => a + b, 0);
      if (open > 0 && open < mask.length) partial++;
      const dilated = dilateMask(mask, 12, 12, 3);
      for (const [id, m] of [
        [3, mask],
        [4, dilated],
      ] as const) {
        const want = dense.map((v, i) => (m[Math.floor(i / 32)] ? v : 9));
        expectSame(net.tensor(id), want, `masked conv ${id}, trial ${trial}`);
      }
      const executed = 32 * 9 * 16 * (144 + open + dilated.reduce((a, b) => a + b, 0)) + 144 * 9 * 16;
      expect(net.lastRunMacs).toEqual({
        executed,
        conv: executed - 144 * 9 * 16,
        convDense: 3 * 144 * 32 * 9 * 16,
      });
    }
    // Random weights: some trials must exercise a partly open mask.
    expect(partial).toBeGreaterThan(0);
  });

  it('rejects a mask of the wrong size, an even dilation and a gate that does not cover the output', () => {
    const r = testRandom(13);
    const shape: [number, number, number] = [8, 8, 4];
    const gate = {
      ...randomGate(r, 0, 1, shape),
      kh: 1,
      kw: 1,
      stride: 1,
      pads: [0, 0, 0, 0] as [number, number, number, number],
      weights: r.s8(4),
      tile: 2,
      outH: 8,
      outW: 8,
    };
    const conv = (extra: object): PlanOp => ({
      op: 'conv',
      input: 0,
      output: 2,
      cin: 4,
      cout: 16,
      kh: 1,
      kw: 1,
      relu: false,
      weights: r.s8(64),
      bias: new Int32Array(16),
      multipliers: new Float32Array(16).fill(0.01),
      zpIn: 0,
      zpOut: 0,
      ...extra,
    });
    const build = (ops: PlanOp[]) => () =>
      new k.Network({ tensors: 3, input: { id: 0, shape }, output: 2, ops });
    expect(build([{ ...gate, outH: 7 }, conv({ mask: 1 })])).toThrow(
      /mask tensor 1 is 7x8x1, the conv output needs 8x8x1/,
    );
    expect(build([gate, conv({ mask: 1, maskDilate: 2 })])).toThrow(/dilation must be odd/);
    expect(build([{ ...gate, outH: 12 }, conv({ mask: 1 })])).toThrow(/do not cover the 12x8 output/);
    expect(build([{ ...gate, weights: new Int8Array(3) }, conv({ mask: 1 })])).toThrow(
      /'weights' has 3 elements/,
    );
    expect(build([gate, conv({ mask: 1 })])).not.toThrow();
  });
});

describe.skipIf(!k)('Network.runFloat', () => {
  if (!k) return;

  it('quantizes a float NCHW image as QuantizeLinear does (ties to even, saturation, NaN to 0)', () => {
    const r = testRandom(3);
    const [h, w, c] = [5, 7, 3];
    const plan: NetworkPlan = {
      tensors: 2,
      input: { id: 0, shape: [h, w, c] },
      output: 1,
      ops: [{ op: 'maxpool', input: 0, output: 1, kernel: 1, stride: 1 }],
    };
    const net = new k.Network(plan);
    for (const [scale, zp] of [
      [0.25, 114],
      [f32(0.0042058276), 0],
      [f32(0.5), 255],
    ]) {
      const data = Float32Array.from({ length: h * w * c }, (_, i) =>
        i % 3 === 0 ? (r.int(-350, 350) + 0.5) * scale : i % 7 === 0 ? (r() - 0.5) * 1e6 : (r() - 0.5) * 2,
      );
      data[4] = Number.NaN;
      const got = net.runFloat(data, scale, zp);
      const want = new Uint8Array(h * w * c);
      for (let ch = 0; ch < c; ch++)
        for (let p = 0; p < h * w; p++) {
          const x = data[ch * h * w + p];
          want[p * c + ch] = Number.isNaN(x) ? 0 : quantizeU8(x, scale, zp);
        }
      expectSame(got, want, `scale ${scale} zp ${zp}`);
    }
    expect(() => net.runFloat(new Float32Array(3), 1, 0)).toThrow(/input has 3 values, expected 105/);
    expect(() => net.runFloat(new Float32Array(h * w * c), 0, 0)).toThrow(/scale must be finite and > 0/);
  });
});
