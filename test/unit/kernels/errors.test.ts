// Bad arguments must throw a JS Error with a clear message, never crash the process.
import { describe, expect, it } from 'vitest';
import { loadKernels } from '../../../runtime/engine/kernels-addon.ts';
import { recordingLogger } from '../../../runtime/util/log.ts';
import { kernelsOrBuild, randomConv, testRandom } from '../../helpers/kernels.ts';

const k = kernelsOrBuild();

describe('kernels loader', () => {
  it('returns null with one warning when the addon is missing', () => {
    const warnings: string[] = [];
    expect(
      loadKernels({
        path: '/nonexistent/facegate_kernels.node',
        log: recordingLogger((_level, m) => warnings.push(m)),
      }),
    ).toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/native kernels not found.*ONNX Runtime/);
  });

  it('returns null with a warning when the file is not a loadable addon', () => {
    const warnings: string[] = [];
    expect(
      loadKernels({
        path: new URL(import.meta.url).pathname,
        log: recordingLogger((_level, m) => warnings.push(m)),
      }),
    ).toBeNull();
    expect(warnings[0]).toMatch(/failed to load/);
  });
});

describe.skipIf(!k)('native kernels reject bad input', () => {
  if (!k) return;
  const c = randomConv(testRandom(21), {
    h: 6,
    w: 6,
    cin: 4,
    cout: 8,
    kh: 3,
    pads: [1, 1, 1, 1],
    stride: [1, 1],
  });
  const conv = new k.Conv(c);

  it('Conv constructor', () => {
    expect(() => new k.Conv({ ...c, weights: new Int8Array(3) })).toThrow(
      /'weights' has 3 elements, expected 288/,
    );
    expect(() => new k.Conv({ ...c, weights: new Uint8Array(288) as unknown as Int8Array })).toThrow(
      /Int8Array/,
    );
    expect(() => new k.Conv({ ...c, bias: new Int32Array(7) })).toThrow(/'bias'/);
    expect(() => new k.Conv({ ...c, multipliers: new Float64Array(8) as unknown as Float32Array })).toThrow(
      /Float32Array/,
    );
    expect(() => new k.Conv({ ...c, cin: -4 })).toThrow(/>= 1/);
    expect(() => new k.Conv({ ...c, kh: 2.5 })).toThrow(/integer/);
    expect(() => new k.Conv({ ...c, zpIn: 256 })).toThrow(/zp_in/);
    expect(() => new k.Conv({ ...c, stride: [0, 1] })).toThrow(/stride/);
    expect(() => new k.Conv({ ...c, pads: [3, 0, 0, 0] })).toThrow(/pad top/);
    expect(() => new k.Conv({ ...c, pads: [1, 1] as unknown as [number, number, number, number] })).toThrow(
      /array of 4/,
    );
    expect(() => new k.Conv({ ...c, multipliers: new Float32Array(8).fill(Number.NaN) })).toThrow(
      /multiplier/,
    );
    expect(() => new k.Conv({ ...c, weights: new Int8Array(288).fill(-128) })).toThrow(/-127, 127/);
    expect(() => new (k.Conv as unknown as new () => unknown)()).toThrow(/options object/);
    expect(() => new k.Conv(null as unknown as typeof c)).toThrow(/options object/);
  });

  it('Conv.run', () => {
    expect(() => conv.run(c.input.subarray(1), 6, 6, 4)).toThrow(/143 bytes, expected h\*w\*c = 144/);
    expect(() => conv.run(c.input, 6, 6, 5)).toThrow(/expected h\*w\*c = 180/);
    expect(() => conv.run(c.input, -6, -6, 4)).toThrow(/>= 1/);
    expect(() => conv.run(Array.from(c.input) as unknown as Uint8Array, 6, 6, 4)).toThrow(/Uint8Array/);
    expect(() => conv.run(c.input, 6, 6, 4, Int32Array.from([36]))).toThrow(/active row 36 outside/);
    expect(() => conv.run(c.input, 6, 6, 4, Int32Array.from([-1]))).toThrow(/active row -1/);
    expect(() => conv.run(c.input, 6, 6, 4, null, Int32Array.from([1]))).toThrow(/channel block 1 outside/);
    expect(() => conv.run(c.input, 6, 6, 4, new Uint32Array(1) as unknown as Int32Array)).toThrow(
      /Int32Array/,
    );
    expect(() => conv.run(c.input, 6, 6, 4, null, null, -1)).toThrow(/threads/);
    expect(() => conv.run(c.input, 1, 144, 1)).toThrow(/input has 1 channels, weights expect 4/);
    const small = new k.Conv({ ...c, pads: [0, 0, 0, 0] });
    expect(() => small.run(new Uint8Array(8), 1, 2, 4)).toThrow(/smaller than/);
  });

  it('other ops', () => {
    const add = new k.Add({ zpA: 0, zpB: 0, zpOut: 0, multA: 1, multB: 1 });
    expect(() => add.run(new Uint8Array(3), new Uint8Array(4))).toThrow(/a has 3 bytes, b has 4/);
    expect(() => new k.Add({ zpA: 0, zpB: 0, zpOut: 0, multA: -1, multB: 1 })).toThrow(/mult_a/);
    expect(() => new k.Add({ zpA: 0, zpB: 0, zpOut: 0, multA: 1 } as never)).toThrow(/'multB' is required/);
    expect(() => new k.MaxPool({ kernel: 0, stride: 1 }).run(new Uint8Array(4), 2, 2, 1)).toThrow(
      /kernel height/,
    );
    expect(() => new k.MaxPool({ kernel: 3, stride: 2 }).run(new Uint8Array(4), 2, 2, 1)).toThrow(
      /smaller than/,
    );
    expect(() =>
      new k.AvgPool({ kernel: 2, stride: 2, zpIn: 0, zpOut: 0, mult: 0 }).run(new Uint8Array(4), 2, 2, 1),
    ).toThrow(/mult/);
    expect(() => new k.Pad({ pads: [-1, 0, 0, 0, 0, 0], value: 0 }).run(new Uint8Array(1), 1, 1, 1)).toThrow(
      /pad amount/,
    );
    expect(() => new k.Mean({ zpIn: 0, zpOut: 0, mult: 1 }).run(new Uint8Array(5), 2, 2, 1)).toThrow(
      /5 bytes/,
    );
    const fc = new k.Fc({
      cin: 4,
      cout: 2,
      zpIn: 0,
      weights: new Int8Array(8),
      scale: new Float32Array(2),
      bias: new Float32Array(2),
    });
    expect(() => fc.run(new Uint8Array(5))).toThrow(/expected 4/);
    expect(() => k.setThreads(0)).toThrow(/threads/);
    expect(() => k.forceIsa('sse9' as never)).toThrow(/unknown ISA/);
    const other = process.arch === 'arm64' ? 'avx2' : 'neon';
    expect(() => k.forceIsa(other)).toThrow(/not available/);
    expect(k.info().isa).toBe(k.info().bestIsa);
  });
});
