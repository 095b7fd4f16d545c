// The kernels against an independent plain-TS reading of the ONNX QLinearConv / QLinearAdd /
// AveragePool formulas (float32 arithmetic via Math.fround, round half to even).
import { describe, expect, it } from 'vitest';
import {
  expectSame,
  fastIsas,
  kernelsOrBuild,
  quantize,
  randomConv,
  roundHalfEven,
  testRandom,
  withIsa,
} from '../../helpers/kernels.ts';

const k = kernelsOrBuild();
const f32 = Math.fround;

/** QLinearConv on NHWC input with ONNX-layout weights [cout][cin][kh][kw]. */
function qlinearConvRef(
  x: Uint8Array,
  h: number,
  w: number,
  cin: number,
  wOihw: Int8Array,
  cout: number,
  kh: number,
  kw: number,
  stride: [number, number],
  pads: [number, number, number, number],
  bias: Int32Array,
  mult: Float32Array,
  zpIn: number,
  zpOut: number,
  relu: boolean,
): Uint8Array {
  const oh = Math.floor((h + pads[0] + pads[2] - kh) / stride[0]) + 1;
  const ow = Math.floor((w + pads[1] + pads[3] - kw) / stride[1]) + 1;
  const y = new Uint8Array(oh * ow * cout);
  for (let oy = 0; oy < oh; oy++)
    for (let ox = 0; ox < ow; ox++)
      for (let co = 0; co < cout; co++) {
        let acc = bias[co];
        for (let ci = 0; ci < cin; ci++)
          for (let ky = 0; ky < kh; ky++)
            for (let kx = 0; kx < kw; kx++) {
              const iy = oy * stride[0] - pads[0] + ky;
              const ix = ox * stride[1] - pads[1] + kx;
              const xv = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[(iy * w + ix) * cin + ci] : zpIn;
              acc += (xv - zpIn) * wOihw[((co * cin + ci) * kh + ky) * kw + kx];
            }
        y[(oy * ow + ox) * cout + co] = quantize(acc, mult[co], zpOut, relu);
      }
  return y;
}

function oihwToOhwi(wt: Int8Array, cout: number, cin: number, kh: number, kw: number): Int8Array {
  const out = new Int8Array(wt.length);
  for (let co = 0; co < cout; co++)
    for (let ci = 0; ci < cin; ci++)
      for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++)
          out[((co * kh + ky) * kw + kx) * cin + ci] = wt[((co * cin + ci) * kh + ky) * kw + kx];
  return out;
}

describe.skipIf(!k)('native kernels against a plain-TS reference', () => {
  if (!k) return;
  const isas = ['scalar' as const, ...fastIsas(k)];

  it('conv matches QLinearConv on small shapes (ONNX weight layout transposed to OHWI)', () => {
    const r = testRandom(11);
    for (let iter = 0; iter < 60; iter++) {
      const c = randomConv(r, { extremes: iter % 5 === 0 });
      if (c.h * c.w * c.cin * c.cout * c.kh * c.kw > 2e6) continue;
      const oihw = r.s8(c.cout * c.cin * c.kh * c.kw, iter % 5 === 0);
      const want = qlinearConvRef(
        c.input,
        c.h,
        c.w,
        c.cin,
        oihw,
        c.cout,
        c.kh,
        c.kw,
        c.stride,
        c.pads,
        c.bias,
        c.multipliers,
        c.zpIn,
        c.zpOut,
        c.relu,
      );
      const conv = new k.Conv({ ...c, weights: oihwToOhwi(oihw, c.cout, c.cin, c.kh, c.kw) });
      for (const isa of isas)
        expectSame(
          withIsa(k, isa, () => conv.run(c.input, c.h, c.w, c.cin)),
          want,
          `${isa} ${iter}`,
        );
    }
  });

  it('conv: saturation-prone extremes (x = 255, zp 0, w = ±127, large K)', () => {
    const [h, w, cin, cout] = [5, 5, 64, 16];
    const input = new Uint8Array(h * w * cin).fill(255);
    const oihw = new Int8Array(cout * cin * 9).map(
      (_, i) => ((i >> 1) % 2 ? 127 : -127) * (i % 7 === 0 ? -1 : 1),
    );
    oihw.fill(127, 0, cin * 9); // channel 0: every product +255*127, the worst case for int16 pairs
    const bias = new Int32Array(cout);
    const mult = new Float32Array(cout).fill(1 / ((255 * 127 * 9 * 64) / 200));
    const want = qlinearConvRef(
      input,
      h,
      w,
      cin,
      oihw,
      cout,
      3,
      3,
      [1, 1],
      [1, 1, 1, 1],
      bias,
      mult,
      0,
      0,
      false,
    );
    expect(want[0]).toBeGreaterThan(0);
    const conv = new k.Conv({
      weights: oihwToOhwi(oihw, cout, cin, 3, 3),
      bias,
      multipliers: mult,
      cin,
      cout,
      kh: 3,
      kw: 3,
      pads: [1, 1, 1, 1],
      zpIn: 0,
      zpOut: 0,
    });
    for (const isa of isas)
      expectSame(
        withIsa(k, isa, () => conv.run(input, h, w, cin)),
        want,
        `${isa} vs TS reference`,
      );
  });

  it('add matches the QLinearAdd formula', () => {
    const r = testRandom(12);
    for (let iter = 0; iter < 20; iter++) {
      const p = {
        zpA: r.int(0, 255),
        zpB: r.int(0, 255),
        zpOut: r.int(0, 255),
        multA: f32(2 ** ((r() - 0.5) * 4)),
        multB: f32(2 ** ((r() - 0.5) * 4)),
        relu: r() < 0.5,
      };
      const a = r.u8(1000);
      const b = r.u8(1000);
      const want = a.map((av, i) => {
        const v = f32(f32(p.multA * (av - p.zpA)) + f32(p.multB * (b[i] - p.zpB)));
        return Math.min(255, Math.max(p.relu ? p.zpOut : 0, roundHalfEven(v) + p.zpOut));
      });
      const op = new k.Add(p);
      for (const isa of isas)
        expectSame(
          withIsa(k, isa, () => op.run(a, b)),
          want,
          `${isa} vs TS reference`,
        );
    }
  });

  it('avgpool 2x2/2 and mean round the float mean half to even', () => {
    // Sums of 2 mod 4 make exact .5 means: round half to even, e.g. mean 2.5 -> 2, 3.5 -> 4.
    const input = Uint8Array.from([2, 3, 3, 4, 2, 3, 3, 4]); // 2x2x2 NHWC: channel means 2.5 and 3.5 (zp 0)
    for (const isa of isas) {
      expect(
        withIsa(k, isa, () =>
          new k.AvgPool({ kernel: 2, stride: 2, zpIn: 0, zpOut: 0, mult: 1 }).run(input, 2, 2, 2),
        ),
      ).toEqual(Uint8Array.from([2, 4]));
      expect(withIsa(k, isa, () => new k.Mean({ zpIn: 0, zpOut: 0, mult: 1 }).run(input, 2, 2, 2))).toEqual(
        Uint8Array.from([2, 4]),
      );
    }
    const r = testRandom(13);
    const [h, w, c] = [9, 7, 5];
    const x = r.u8(h * w * c);
    const [zpIn, zpOut, mult] = [17, 100, f32(0.8)];
    const want: number[] = [];
    for (let oy = 0; oy < 4; oy++)
      for (let ox = 0; ox < 3; ox++)
        for (let ch = 0; ch < c; ch++) {
          let sum = 0;
          for (const [dy, dx] of [
            [0, 0],
            [0, 1],
            [1, 0],
            [1, 1],
          ])
            sum += x[((oy * 2 + dy) * w + ox * 2 + dx) * c + ch] - zpIn;
          want.push(quantize(sum, f32(mult / 4), zpOut, false));
        }
    const pool = new k.AvgPool({ kernel: 2, stride: 2, zpIn, zpOut, mult });
    expect(pool.outShape(h, w, c)).toEqual([4, 3, c]);
    for (const isa of isas)
      expect(withIsa(k, isa, () => pool.run(x, h, w, c))).toEqual(Uint8Array.from(want));
  });

  it('pad fills with the value, fc computes s_in*s_w*acc + bias', () => {
    const pad = new k.Pad({ pads: [1, 0, 0, 0, 1, 2], value: 9 });
    expect(pad.outShape(1, 1, 1)).toEqual([2, 2, 3]);
    expect(pad.run(Uint8Array.from([5]), 1, 1, 1)).toEqual(
      Uint8Array.from([9, 9, 9, 9, 9, 9, 5, 9, 9, 9, 9, 9]),
    );
    const fc = new k.Fc({
      cin: 3,
      cout: 2,
      zpIn: 10,
      weights: Int8Array.from([1, 2, 3, -1, 0, 127]),
      scale: Float32Array.from([0.5, 0.25]),
      bias: Float32Array.from([1, -1]),
    });
    // acc0 = (0*1 + 10*2 + 245*3) = 755 -> 378.5; acc1 = 0 + 0 + 245*127 = 31115 -> 7777.75
    expect(Array.from(fc.run(Uint8Array.from([10, 20, 255])))).toEqual([378.5, 7777.75]);
  });
});
