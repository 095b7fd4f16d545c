// Quantization arithmetic as ONNX Runtime does it, and the int8 weights in the kernels' form.
import type { GraphNode } from '../../models/onnx/graph.ts';
import type { Requantization } from '../kernels-addon.ts';
import { type DqConst, LoweringError, type QParams } from './context.ts';

export const f32 = Math.fround;

/** ONNX QuantizeLinear: x / scale rounded half to even, plus the zero point, saturated to uint8. */
export function quantizeU8(x: number, scale: number, zp: number): number {
  const v = f32(x / scale);
  let r = Math.round(v);
  if (r - v === 0.5 && r % 2 !== 0) r -= 1;
  r += zp;
  return Math.max(0, Math.min(255, r));
}

/** From x's quantization parameters to the output's, as the kernels' avgpool and mean take them. */
export function requantization(x: QParams, out: QParams): Requantization {
  return { zpIn: x.zp, zpOut: out.zp, mult: f32(x.scale / out.scale) };
}

/** ONNX's OIHW weights in the kernels' OHWI layout. */
export function ohwiOf(oihw: Int8Array, cout: number, cin: number, kh: number, kw: number): Int8Array {
  const ohwi = new Int8Array(cout * kh * kw * cin);
  for (let co = 0; co < cout; co++)
    for (let ci = 0; ci < cin; ci++)
      for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++)
          ohwi[((co * kh + ky) * kw + kx) * cin + ci] = oihw[((co * cin + ci) * kh + ky) * kw + kx];
  return ohwi;
}

/** Per output channel weight scales; zero points must be 0 and values in the kernels' [-127, 127]. */
export function channelScales(node: GraphNode, c: DqConst, channels: number, axis: number): Float32Array {
  const { scales, zps, values } = c;
  const perTensor = scales.length === 1;
  if (!perTensor && (scales.length !== channels || c.axis !== axis))
    throw new LoweringError(node, `"${values.name}" needs one scale per output channel on axis ${axis}`);
  if (zps && Array.from(zps.data, Number).some((z) => z !== 0))
    throw new LoweringError(
      node,
      `"${values.name}" has a non-zero zero point (only symmetric weights run natively)`,
    );
  if (values.type === 'int8' && (values.data as Int8Array).includes(-128))
    throw new LoweringError(node, `"${values.name}" holds -128 (the kernels take weights in [-127, 127])`);
  return perTensor ? new Float32Array(channels).fill(scales[0]) : scales;
}

export function convBias(node: GraphNode, b: DqConst, inScale: number, wScales: Float32Array): Int32Array {
  if (b.values.type !== 'int32' || b.values.data.length !== wScales.length)
    throw new LoweringError(node, `bias must be int32 with ${wScales.length} values`);
  const scales = channelScales(node, b, wScales.length, 0);
  // The int32 values are used as they are, which is only right at the conv's accumulator scale.
  wScales.forEach((s, i) => {
    if (Math.abs(scales[i] - inScale * s) > 1e-6 * Math.abs(inScale * s))
      throw new LoweringError(node, `bias scale of channel ${i} is not s_in * s_w`);
  });
  return b.values.data as Int32Array;
}
