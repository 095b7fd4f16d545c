// Packed RGB bytes (HWC) to the normalised NCHW floats a model's manifest asks for.

/** Writes one image into `out` at `offset` (so batches fill one buffer) and returns `out`. */
export function rgbToNchw(
  rgb: Uint8Array,
  size: number,
  mean: readonly number[],
  std: readonly number[],
  out = new Float32Array(3 * size * size),
  offset = 0,
): Float32Array {
  const plane = size * size;
  if (rgb.length !== plane * 3)
    throw new Error(`expected a ${size}x${size} RGB image (${plane * 3} bytes), got ${rgb.length} bytes`);
  for (let c = 0; c < 3; c++) {
    const m = mean[c];
    const inv = 1 / std[c];
    const dst = offset + c * plane;
    for (let p = 0; p < plane; p++) out[dst + p] = (rgb[p * 3 + c] - m) * inv;
  }
  return out;
}
