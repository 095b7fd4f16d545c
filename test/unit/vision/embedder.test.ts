import { describe, expect, it } from 'vitest';
import { mirrorRgb } from '../../../runtime/vision/embedder.ts';

describe('mirrorRgb', () => {
  it('flips each row left-right, keeping the RGB order of every pixel', () => {
    // 3x3 image, pixel (x, y) = [10y + x, 100 + 10y + x, 200 + 10y + x].
    const size = 3;
    const rgb = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        rgb.set([10 * y + x, 100 + 10 * y + x, 200 + 10 * y + x], (y * size + x) * 3);
    const out = mirrorRgb(rgb, size);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const from = (y * size + size - 1 - x) * 3;
        expect([...out.subarray((y * size + x) * 3, (y * size + x) * 3 + 3)]).toEqual([
          rgb[from],
          rgb[from + 1],
          rgb[from + 2],
        ]);
      }
    expect(mirrorRgb(out, size)).toEqual(Buffer.from(rgb));
  });

  it('rejects a buffer of the wrong size', () => {
    expect(() => mirrorRgb(new Uint8Array(10), 2)).toThrow(/2x2 RGB image/);
  });
});
