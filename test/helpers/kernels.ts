// Shared by the kernel tests: loads (building once if needed) the addon and makes seeded data.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KERNELS_ADDON_PATH, type KernelsBinding, loadKernels } from '../../runtime/engine/kernels-addon.ts';

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

export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** extremes: only 0/255 (inputs) or ±127 (weights), the values that provoke int16 saturation. */
export function randU8(r: () => number, n: number, extremes = false): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = extremes ? (r() < 0.5 ? 0 : 255) : randInt(r, 0, 255);
  return a;
}

export function randS8(r: () => number, n: number, extremes = false): Int8Array {
  const a = new Int8Array(n);
  for (let i = 0; i < n; i++) a[i] = extremes ? (r() < 0.5 ? -127 : 127) : randInt(r, -127, 127);
  return a;
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

export function randomConv(r: () => number, o: Partial<ConvCase> & { extremes?: boolean } = {}): ConvCase {
  const kh = o.kh ?? [1, 3, 3, 7][randInt(r, 0, 3)];
  const kw = o.kw ?? kh;
  const cin = o.cin ?? [1, 3, 5, 8, 16, 17, 32, 33][randInt(r, 0, 7)];
  const cout = o.cout ?? [1, 7, 16, 17, 32, 40][randInt(r, 0, 5)];
  const s = randInt(r, 1, 2);
  const stride = o.stride ?? [s, s];
  const pads = o.pads ?? [
    randInt(r, 0, kh - 1),
    randInt(r, 0, kw - 1),
    randInt(r, 0, kh - 1),
    randInt(r, 0, kw - 1),
  ];
  const h = o.h ?? randInt(r, kh, kh + 10);
  const w = o.w ?? randInt(r, kw, kw + 10);
  const ext = o.extremes ?? false;
  const multipliers = new Float32Array(cout);
  const bias = new Int32Array(cout);
  for (let c = 0; c < cout; c++) {
    multipliers[c] = 2 ** ((r() - 0.5) * 6) / (kh * kw * cin * 64);
    bias[c] = randInt(r, -3000, 3000);
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
    zpIn: o.zpIn ?? (ext ? 0 : randInt(r, 0, 255)),
    zpOut: o.zpOut ?? randInt(r, 0, 255),
    relu: o.relu ?? r() < 0.5,
    weights: o.weights ?? randS8(r, cout * kh * kw * cin, ext),
    bias: o.bias ?? bias,
    multipliers: o.multipliers ?? multipliers,
    input: o.input ?? randU8(r, h * w * cin, ext),
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
