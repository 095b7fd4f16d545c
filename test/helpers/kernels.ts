// Shared by the kernel tests: loads (building once if needed) the addon and makes seeded data.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KERNELS_ADDON_PATH, type KernelsBinding, loadKernels } from '../../runtime/engine/kernels-addon.ts';
import { seededRandom } from '../../runtime/util/random.ts';

export const KERNELS_DIR = fileURLToPath(new URL('../../kernels/', import.meta.url));

/** The addon; builds it first when missing. Throws unless FACEGATE_SKIP_NATIVE=1 asks to skip. */
export function kernelsOrBuild(): KernelsBinding | null {
  if (process.env.FACEGATE_SKIP_NATIVE === '1') return null;
  if (!existsSync(KERNELS_ADDON_PATH)) {
    spawnSync(process.execPath, ['build.mjs'], { cwd: KERNELS_DIR, stdio: 'inherit' });
  }
  const k = loadKernels({ path: KERNELS_ADDON_PATH });
  if (!k) throw new Error('native kernels could not be built/loaded (set FACEGATE_SKIP_NATIVE=1 to skip)');
  return k;
}

/** Seeded kernel test data: r() in [0, 1) and integers and int8/uint8 arrays, drawn from one sequence. */
export interface TestRandom {
  (): number;
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  /** extremes: only 0/255, the values that provoke int16 saturation. */
  u8(n: number, extremes?: boolean): Uint8Array;
  /** extremes: only ±127, the weights that provoke int16 saturation. */
  s8(n: number, extremes?: boolean): Int8Array;
}

export function testRandom(seed: number): TestRandom {
  const r = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  return Object.assign(() => r(), {
    int,
    u8: (n: number, extremes = false) =>
      Uint8Array.from({ length: n }, () => (extremes ? (r() < 0.5 ? 0 : 255) : int(0, 255))),
    s8: (n: number, extremes = false) =>
      Int8Array.from({ length: n }, () => (extremes ? (r() < 0.5 ? -127 : 127) : int(-127, 127))),
  });
}

/** The ISAs to compare against scalar on this machine. */
export function fastIsas(k: KernelsBinding) {
  return k.info().isas.filter((isa) => isa !== 'scalar');
}

/** Runs fn under the given ISA and restores the best one. */
export function withIsa<T>(
  k: KernelsBinding,
  isa: Parameters<KernelsBinding['forceIsa']>[0],
  fn: () => T,
): T {
  k.forceIsa(isa);
  try {
    return fn();
  } finally {
    k.forceIsa(null);
  }
}

export interface ConvCase {
  h: number;
  w: number;
  cin: number;
  cout: number;
  kh: number;
  kw: number;
  stride: [number, number];
  pads: [number, number, number, number];
  zpIn: number;
  zpOut: number;
  relu: boolean;
  weights: Int8Array;
  bias: Int32Array;
  multipliers: Float32Array;
  input: Uint8Array;
}

export function randomConv(r: TestRandom, o: Partial<ConvCase> & { extremes?: boolean } = {}): ConvCase {
  const kh = o.kh ?? [1, 3, 3, 7][r.int(0, 3)];
  const kw = o.kw ?? kh;
  const cin = o.cin ?? [1, 3, 5, 8, 16, 17, 32, 33][r.int(0, 7)];
  const cout = o.cout ?? [1, 7, 16, 17, 32, 40][r.int(0, 5)];
  const s = r.int(1, 2);
  const stride = o.stride ?? [s, s];
  const pads = o.pads ?? [r.int(0, kh - 1), r.int(0, kw - 1), r.int(0, kh - 1), r.int(0, kw - 1)];
  const h = o.h ?? r.int(kh, kh + 10);
  const w = o.w ?? r.int(kw, kw + 10);
  const ext = o.extremes ?? false;
  const multipliers = new Float32Array(cout);
  const bias = new Int32Array(cout);
  for (let c = 0; c < cout; c++) {
    multipliers[c] = 2 ** ((r() - 0.5) * 6) / (kh * kw * cin * 64);
    bias[c] = r.int(-3000, 3000);
  }
  return {
    h,
    w,
    cin,
    cout,
    kh,
    kw,
    stride,
    pads,
    zpIn: o.zpIn ?? (ext ? 0 : r.int(0, 255)),
    zpOut: o.zpOut ?? r.int(0, 255),
    relu: o.relu ?? r() < 0.5,
    weights: o.weights ?? r.s8(cout * kh * kw * cin, ext),
    bias: o.bias ?? bias,
    multipliers: o.multipliers ?? multipliers,
    input: o.input ?? r.u8(h * w * cin, ext),
  };
}

/** Index of the first differing element (or -1); far faster than toEqual on big typed arrays. */
export function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}

/** Asserts equal length and contents, reporting the first mismatch. */
export function expectSame(got: ArrayLike<number>, want: ArrayLike<number>, what = ''): void {
  const i = firstDiff(got, want);
  if (i >= 0)
    throw new Error(
      `${what}: lengths ${got.length}/${want.length}, first difference at ${i}: got ${got[i]}, want ${want[i]}`,
    );
}

/** A 0/1 h x w mask widened by a k x k max (k odd, centred, padded taps ignored): the gated conv1's
 * mask, as ONNX's MaxPool before the Greater computes it. */
export function dilateMask(mask: Uint8Array, h: number, w: number, k: number): Uint8Array {
  const r = (k - 1) / 2;
  return mask.map((_, p) => {
    const y = Math.floor(p / w);
    const x = p % w;
    for (let yy = Math.max(0, y - r); yy <= Math.min(h - 1, y + r); yy++)
      for (let xx = Math.max(0, x - r); xx <= Math.min(w - 1, x + r); xx++) if (mask[yy * w + xx]) return 1;
    return 0;
  });
}

export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** The ONNX requantization of an int32 accumulator, written independently of the kernels:
 * y = sat(round(acc * M) + zp) with float32 acc * M; ReLU clamps at zp. */
export function quantize(acc: number, m: number, zp: number, relu: boolean): number {
  const q = roundHalfEven(Math.fround(Math.fround(acc) * m)) + zp;
  return Math.min(255, Math.max(relu ? zp : 0, q));
}
