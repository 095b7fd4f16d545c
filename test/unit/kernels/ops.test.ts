// Every fast path must equal the scalar reference bit for bit, at 1 and 2 threads.
import { describe, expect, it } from 'vitest';
import {
  expectSame,
  fastIsas,
  kernelsOrBuild,
  randomConv,
  testRandom,
  withIsa,
} from '../../helpers/kernels.ts';

const k = kernelsOrBuild();

describe.skipIf(!k)('native kernels: fast paths equal scalar', () => {
  if (!k) return;
  const isas = fastIsas(k);

  it('reports the ISA and threads', () => {
    const info = k.info();
    expect(['avx512-vnni', 'avx-vnni', 'avx2', 'neon-dotprod', 'neon', 'scalar']).toContain(info.isa);
    expect(info.isa).toBe(info.bestIsa);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(info.channelBlock).toBe(16);
    if (process.arch === 'x64' || process.arch === 'arm64') expect(isas.length).toBeGreaterThan(0);
  });

  it('conv: random shapes, pads, strides, extremes, 1 and 2 threads', () => {
    const r = testRandom(1);
    for (let iter = 0; iter < 120; iter++) {
      const c = randomConv(r, { extremes: iter % 4 === 0 });
      const conv = withIsa(k, 'scalar', () => new k.Conv(c));
      const want = withIsa(k, 'scalar', () => conv.run(c.input, c.h, c.w, c.cin, null, null, 1));
      for (const isa of isas) {
        for (const threads of [1, 2]) {
          const got = withIsa(k, isa, () => conv.run(c.input, c.h, c.w, c.cin, null, null, threads));
          expectSame(got, want, `${isa} iter ${iter} threads ${threads}`);
        }
      }
    }
  });

  it('conv: embedder-sized layers (7x7/2 stem, 3x3 same and stride 2)', () => {
    const r = testRandom(2);
    const cases = [
      randomConv(r, { h: 40, w: 40, cin: 3, cout: 32, kh: 7, stride: [2, 2], pads: [0, 0, 0, 0] }),
      randomConv(r, { h: 35, w: 35, cin: 32, cout: 32, kh: 3, stride: [1, 1], pads: [1, 1, 1, 1] }),
      randomConv(r, { h: 17, w: 17, cin: 64, cout: 128, kh: 3, stride: [2, 2], pads: [0, 0, 0, 0] }),
      randomConv(r, {
        h: 4,
        w: 4,
        cin: 256,
        cout: 256,
        kh: 3,
        stride: [1, 1],
        pads: [1, 1, 1, 1],
        extremes: true,
      }),
    ];
    for (const c of cases) {
      const conv = new k.Conv(c);
      const want = withIsa(k, 'scalar', () => conv.run(c.input, c.h, c.w, c.cin));
      for (const isa of isas) {
        expectSame(
          withIsa(k, isa, () => conv.run(c.input, c.h, c.w, c.cin, null, null, 1)),
          want,
          'fast vs scalar',
        );
        expectSame(
          withIsa(k, isa, () => conv.run(c.input, c.h, c.w, c.cin, null, null, 2)),
          want,
          'fast vs scalar',
        );
      }
    }
  });

  it('conv: active rows / channel blocks equal the dense result there and zpOut elsewhere', () => {
    const r = testRandom(3);
    for (let iter = 0; iter < 40; iter++) {
      const c = randomConv(r);
      const conv = new k.Conv(c);
      const [oh, ow, oc] = conv.outShape(c.h, c.w, c.cin);
      const dense = conv.run(c.input, c.h, c.w, c.cin);
      const rows = Int32Array.from(
        Array.from({ length: oh * ow }, (_, i) => i)
          .filter(() => r() < 0.4)
          .sort(() => r() - 0.5),
      );
      const nblocks = Math.ceil(oc / 16);
      const blocks =
        iter % 2
          ? Int32Array.from(Array.from({ length: nblocks }, (_, i) => i).filter(() => r() < 0.6))
          : null;
      const expected = new Uint8Array(dense.length).fill(c.zpOut);
      for (const p of rows)
        for (let ch = 0; ch < oc; ch++)
          if (!blocks || blocks.includes(Math.floor(ch / 16))) expected[p * oc + ch] = dense[p * oc + ch];
      for (const isa of ['scalar' as const, ...isas]) {
        for (const threads of [1, 2]) {
          const got = withIsa(k, isa, () => conv.run(c.input, c.h, c.w, c.cin, rows, blocks, threads));
          expectSame(got, expected, `${isa} iter ${iter}`);
        }
      }
    }
  });

  it('add: random params, lengths with SIMD tails, relu', () => {
    const r = testRandom(4);
    for (let iter = 0; iter < 40; iter++) {
      const n = r.int(1, 50000);
      const op = new k.Add({
        zpA: r.int(0, 255),
        zpB: r.int(0, 255),
        zpOut: r.int(0, 255),
        multA: 2 ** ((r() - 0.5) * 4),
        multB: 2 ** ((r() - 0.5) * 4),
        relu: r() < 0.5,
      });
      const a = r.u8(n, iter % 3 === 0);
      const b = r.u8(n, iter % 3 === 0);
      const want = withIsa(k, 'scalar', () => op.run(a, b, 1));
      for (const isa of isas) {
        expectSame(
          withIsa(k, isa, () => op.run(a, b, 1)),
          want,
          'fast vs scalar',
        );
        expectSame(
          withIsa(k, isa, () => op.run(a, b, 2)),
          want,
          'fast vs scalar',
        );
      }
    }
  });

  it('maxpool, avgpool, mean, pad, fc', () => {
    const r = testRandom(5);
    for (let iter = 0; iter < 40; iter++) {
      const [h, w, c] = [r.int(3, 20), r.int(3, 20), r.int(1, 70)];
      const input = r.u8(h * w * c);
      const kh = r.int(1, 3);
      const kw = r.int(1, 3);
      const pool = {
        kernel: [kh, kw] as [number, number],
        stride: [r.int(1, 2), r.int(1, 2)] as [number, number],
        pads: [r.int(0, kh - 1), r.int(0, kw - 1), r.int(0, kh - 1), r.int(0, kw - 1)] as [
          number,
          number,
          number,
          number,
        ],
      };
      const q = { zpIn: r.int(0, 255), zpOut: r.int(0, 255), mult: 2 ** ((r() - 0.5) * 2) };
      const ops = [
        new k.MaxPool(pool),
        new k.AvgPool({ ...pool, ...q }),
        new k.Mean(q),
        new k.Pad({
          pads: [r.int(0, 2), r.int(0, 2), r.int(0, 2), r.int(0, 2), r.int(0, 2), r.int(0, 2)],
          value: q.zpIn,
        }),
      ];
      for (const op of ops) {
        const want = withIsa(k, 'scalar', () => op.run(input, h, w, c));
        for (const isa of isas)
          expectSame(
            withIsa(k, isa, () => op.run(input, h, w, c)),
            want,
            'fast vs scalar',
          );
      }
      const fc = new k.Fc({
        cin: h * w * c,
        cout: 5,
        zpIn: q.zpIn,
        weights: Int8Array.from({ length: h * w * c * 5 }, () => r.int(-127, 127)),
        scale: Float32Array.from({ length: 5 }, () => r() * 1e-3),
        bias: Float32Array.from({ length: 5 }, () => r() - 0.5),
      });
      const want = withIsa(k, 'scalar', () => fc.run(input));
      for (const isa of isas)
        expectSame(
          withIsa(k, isa, () => fc.run(input)),
          want,
          'fast vs scalar',
        );
    }
  });

  it('setThreads changes the default and keeps results identical', () => {
    const c = randomConv(testRandom(6), { h: 20, w: 20, cin: 32, cout: 48, kh: 3 });
    const conv = new k.Conv(c);
    const before = k.info().threads;
    try {
      k.setThreads(1);
      expect(k.info().threads).toBe(1);
      const one = conv.run(c.input, c.h, c.w, c.cin);
      k.setThreads(2);
      expect(conv.run(c.input, c.h, c.w, c.cin)).toEqual(one);
    } finally {
      k.setThreads(before);
    }
  });
});
