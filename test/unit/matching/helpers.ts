// Deterministic unit vectors with known cosines, so identification scores can be asserted exactly.
import { CROP_BYTES, EMBEDDING_DIM } from '../../../runtime/matching/gallery/records.ts';

/** Unit vector cos(angle) * e_a + sin(angle) * e_b: its cosine with e_a is `cosine`. */
export function towards(a: number, cosine: number, b = (a + 1) % EMBEDDING_DIM): Float32Array {
  const v = new Float32Array(EMBEDDING_DIM);
  v[a] = cosine;
  v[b] = Math.sqrt(1 - cosine * cosine);
  return v;
}

export function basis(a: number): Float32Array {
  return towards(a, 1);
}

/** Pseudo-random unit vector from a seed (mulberry32). */
export function randomUnit(seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
  const v = new Float32Array(EMBEDDING_DIM);
  for (let i = 0; i < v.length; i++) v[i] = next();
  let norm = 0;
  for (const x of v) norm += x * x;
  return v.map((x) => x / Math.sqrt(norm));
}

/** A crop filled with `byte`. */
export function crop(byte: number): Buffer {
  return Buffer.alloc(CROP_BYTES, byte);
}
