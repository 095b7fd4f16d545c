// A small embedder-shaped plan run by Network (one C++ call) must equal the same ops run one by one.
import { describe, expect, it } from 'vitest';
import type { KernelsBinding, NetworkPlan, PlanOp } from '../../../runtime/engine/kernels-addon.ts';
import {
  expectSame,
  fastIsas,
  kernelsOrBuild,
  type TestRandom,
  testRandom,
  withIsa,
} from '../../helpers/kernels.ts';

const k = kernelsOrBuild();

function convOp(
  r: TestRandom,
  input: number,
  output: number,
  cin: number,
  cout: number,
  kh: number,
  stride: number,
  pad: number,
  relu: boolean,
): PlanOp {
  return {
    op: 'conv',
    input,
    output,
    cin,
    cout,
    kh,
    kw: kh,
    stride,
    pads: [pad, pad, pad, pad],
    relu,
    weights: r.s8(cout * kh * kh * cin),
    bias: Int32Array.from({ length: cout }, () => r.int(-2000, 2000)),
    multipliers: Float32Array.from({ length: cout }, () => 1 / (kh * kh * cin * 40)),
    zpIn: r.int(0, 40),
    zpOut: r.int(0, 40),
  };
}

/** stem, maxpool, one residual block, one down block (avgpool + channel/spatial zero pad), mean, fc. */
function plan(r: TestRandom): NetworkPlan {
  const ops: PlanOp[] = [
    convOp(r, 0, 1, 3, 32, 7, 2, 0, true), // 40x40x3 -> 17x17x32
    { op: 'maxpool', input: 1, output: 2, kernel: 3, stride: 2 }, // -> 8x8x32
    convOp(r, 2, 3, 32, 32, 3, 1, 1, true),
    convOp(r, 3, 4, 32, 32, 3, 1, 1, false),
    { op: 'add', inputs: [4, 2], output: 5, zpA: 0, zpB: 0, zpOut: 10, multA: 0.7, multB: 0.9, relu: true },
    convOp(r, 5, 6, 32, 64, 3, 2, 0, true), // -> 3x3x64
    convOp(r, 6, 7, 64, 64, 3, 1, 1, false),
    { op: 'pad', input: 7, output: 8, pads: [0, 0, 0, 1, 1, 0], value: 0 }, // -> 4x4x64
    { op: 'avgpool', input: 5, output: 9, kernel: 2, stride: 2, zpIn: 10, zpOut: 10, mult: 1 }, // -> 4x4x32
    { op: 'pad', input: 9, output: 10, pads: [0, 0, 0, 0, 0, 32], value: 10 }, // -> 4x4x64
    { op: 'add', inputs: [8, 10], output: 11, zpA: 0, zpB: 10, zpOut: 5, multA: 0.5, multB: 0.8, relu: true },
    { op: 'mean', input: 11, output: 12, zpIn: 5, zpOut: 5, mult: 1.2 },
    {
      op: 'fc',
      input: 12,
      output: 13,
      cin: 64,
      cout: 16,
      zpIn: 5,
      weights: r.s8(64 * 16),
      scale: new Float32Array(16).fill(1e-3),
      bias: Float32Array.from({ length: 16 }, () => r() - 0.5),
    },
  ];
  // Conv zero points must match their inputs' for the chain to mean anything; fix them up.
  const zp = new Map<number, number>([[0, 0]]);
  for (const op of ops) {
    if (op.op === 'conv') {
      op.zpIn = zp.get(op.input) ?? 0;
      zp.set(op.output, op.zpOut);
    } else if (op.op === 'maxpool') zp.set(op.output, zp.get(op.input) ?? 0);
    else if (op.op === 'add') {
      op.zpA = zp.get(op.inputs[0]) ?? 0;
      op.zpB = zp.get(op.inputs[1]) ?? 0;
      zp.set(op.output, op.zpOut);
    } else if (op.op === 'pad') {
      op.value = zp.get(op.input) ?? 0;
      zp.set(op.output, op.value);
    } else if (op.op === 'avgpool' || op.op === 'mean') {
      op.zpIn = zp.get(op.input) ?? 0;
      zp.set(op.output, op.zpOut);
    } else if (op.op === 'fc') op.zpIn = zp.get(op.input) ?? 0;
  }
  return { tensors: 14, input: { id: 0, shape: [40, 40, 3] }, output: 13, ops };
}

/** The same plan, op by op through the single-op objects. */
function stepwise(kb: KernelsBinding, p: NetworkPlan, input: Uint8Array) {
  const t = new Map<number, { data: Uint8Array | Float32Array; shape: [number, number, number] }>();
  t.set(p.input.id, { data: input, shape: p.input.shape });
  const get = (id: number) => {
    const v = t.get(id);
    if (!v) throw new Error(`tensor ${id} missing`);
    return v;
  };
  const u8 = (id: number) => get(id).data as Uint8Array;
  for (const op of p.ops) {
    if (op.op === 'add') {
      t.set(op.output, {
        data: new kb.Add(op).run(u8(op.inputs[0]), u8(op.inputs[1])),
        shape: get(op.inputs[0]).shape,
      });
      continue;
    }
    if (op.op === 'gate') throw new Error('gate has no single-op object');
    const [h, w, c] = get(op.input).shape;
    if (op.op === 'fc') {
      t.set(op.output, { data: new kb.Fc(op).run(u8(op.input)), shape: [1, 1, op.cout] });
      continue;
    }
    const o =
      op.op === 'conv'
        ? new kb.Conv(op)
        : op.op === 'maxpool'
          ? new kb.MaxPool(op)
          : op.op === 'avgpool'
            ? new kb.AvgPool(op)
            : op.op === 'pad'
              ? new kb.Pad(op)
              : new kb.Mean(op);
    t.set(op.output, { data: o.run(u8(op.input), h, w, c), shape: o.outShape(h, w, c) });
  }
  return get;
}

describe.skipIf(!k)('Network', () => {
  if (!k) return;
  const r = testRandom(31);
  const p = plan(r);
  const input = r.u8(40 * 40 * 3);

  it('equals the ops run one by one, on every ISA and at 1 and 2 threads', () => {
    for (const isa of ['scalar' as const, ...fastIsas(k)]) {
      withIsa(k, isa, () => {
        const net = new k.Network(p);
        expect(net.numOps).toBe(p.ops.length);
        const steps = stepwise(k, p, input);
        for (const threads of [1, 2]) {
          const out = net.run(input, threads);
          expect(out).toBeInstanceOf(Float32Array);
          expectSame(out, steps(13).data, `${isa} output, ${threads} threads`);
          for (let id = 1; id < 13; id++) {
            expect(net.shape(id)).toEqual(steps(id).shape);
            expectSame(net.tensor(id), steps(id).data, `${isa} tensor ${id}`);
          }
        }
      });
    }
    const fast = new k.Network(p).run(input);
    const scalar = withIsa(k, 'scalar', () => new k.Network(p).run(input));
    expectSame(fast, scalar, 'fast vs scalar network');
  });

  it('runs a float batch side by side, each item as it runs alone, and sums its MACs', () => {
    const net = new k.Network(p);
    const size = 40 * 40 * 3;
    const a = Float32Array.from({ length: size }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: size }, (_, i) => Math.cos(i * 0.7));
    const alone = (x: Float32Array) => {
      const out = net.runFloat(x, 0.01, 128, 1);
      return { out, executed: net.lastRunMacs.executed };
    };
    const ra = alone(a);
    const rb = alone(b);
    const both = new Float32Array(2 * size);
    both.set(a);
    both.set(b, size);
    for (const threads of [1, 2]) {
      const out = net.runFloat(both, 0.01, 128, threads);
      expectSame(out.subarray(0, ra.out.length), ra.out, `item 0, ${threads} threads`);
      expectSame(out.subarray(ra.out.length), rb.out, `item 1, ${threads} threads`);
      expect(net.lastRunMacs.executed).toBe(ra.executed + rb.executed);
    }
    expect(() => net.runFloat(new Float32Array(size + 1), 0.01, 128)).toThrow(/expected 4800 per image/);
  });

  it('times every op of the last run (the per-layer profile)', () => {
    const net = new k.Network(p);
    net.run(input, 1);
    const micros = net.lastRunOpMicros;
    expect(micros).toBeInstanceOf(Float64Array);
    expect(micros.length).toBe(p.ops.length);
    for (const us of micros) expect(us).toBeGreaterThanOrEqual(0);
    expect(micros.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('rejects malformed plans with the op index', () => {
    const bad = (mutate: (q: NetworkPlan) => void) => {
      const q: NetworkPlan = { ...p, ops: p.ops.map((o) => ({ ...o })) as PlanOp[] };
      mutate(q);
      return () => new k.Network(q);
    };
    expect(
      bad((q) => {
        (q.ops[2] as { input: number }).input = 9;
      }),
    ).toThrow(/ops\[2\] \(conv\): network: tensor 9 is used before it is produced/);
    expect(
      bad((q) => {
        q.ops[3].output = 1;
      }),
    ).toThrow(/ops\[3\] \(conv\): network: tensor 1 is produced twice/);
    expect(
      bad((q) => {
        (q.ops[4] as { inputs: number[] }).inputs = [4, 1];
      }),
    ).toThrow(/ops\[4\] \(add\): network: add operands differ in shape/);
    expect(
      bad((q) => {
        (q.ops[0] as { op: string }).op = 'gelu';
      }),
    ).toThrow(/ops\[0\] \(gelu\): unknown op 'gelu'/);
    expect(
      bad((q) => {
        Object.assign(q.ops[2], { cin: 16, weights: new Int8Array(32 * 9 * 16) });
      }),
    ).toThrow(/ops\[2\] \(conv\): conv: input has 32 channels, weights expect 16/);
    expect(
      bad((q) => {
        Object.assign(q.ops[2], { weights: new Int8Array(5) });
      }),
    ).toThrow(/ops\[2\] \(conv\): 'weights' has 5/);
    expect(
      bad((q) => {
        q.output = 14;
      }),
    ).toThrow(/output tensor 14/);
    expect(
      bad((q) => {
        q.ops[12].output = 20;
      }),
    ).toThrow(/output tensor 20 out of range/);
    expect(
      bad((q) => {
        (q.ops[1] as { input: number }).input = 13;
        q.ops = q.ops.slice(0, 2);
      }),
    ).toThrow(/used before/);
    expect(
      bad((q) => {
        q.input = { id: 0, shape: [40, 40, 0] };
      }),
    ).toThrow(/channels/);
    const net = new k.Network(p);
    expect(() => net.run(input.subarray(1))).toThrow(/4799 bytes, expected 4800/);
    expect(() => net.tensor(99)).toThrow(/not defined/);
  });
});
