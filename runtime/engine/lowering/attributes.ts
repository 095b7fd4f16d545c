// ONNX node attributes as the lowerers read them, refusing the values the kernels do not implement.
import type { Attribute, GraphNode } from '../../models/onnx/graph.ts';
import type { Pads4, Shape3 } from '../kernels-addon.ts';
import { LoweringError } from './context.ts';

export function intAttr(node: GraphNode, name: string, fallback: number): number {
  const a: Attribute | undefined = node.attrs[name];
  if (!a) return fallback;
  if (!('i' in a)) throw new LoweringError(node, `attribute ${name} must be an int`);
  return a.i;
}

export function intsAttr(node: GraphNode, name: string): number[] | undefined {
  const a: Attribute | undefined = node.attrs[name];
  if (!a) return undefined;
  if (!('ints' in a)) throw new LoweringError(node, `attribute ${name} must be a list of ints`);
  return a.ints;
}

export function windowAttrs(node: GraphNode): { stride: [number, number]; pads: Pads4 } {
  const autoPad = node.attrs.auto_pad;
  if (autoPad && !('s' in autoPad && autoPad.s === 'NOTSET'))
    throw new LoweringError(node, 'auto_pad is not supported (explicit pads only)');
  if ((intsAttr(node, 'dilations') ?? [1, 1]).some((d) => d !== 1))
    throw new LoweringError(node, 'dilations are not supported');
  const strides = intsAttr(node, 'strides') ?? [1, 1];
  const pads = intsAttr(node, 'pads') ?? [0, 0, 0, 0];
  if (strides.length !== 2 || pads.length !== 4)
    throw new LoweringError(node, 'only 2-D windows are supported');
  return { stride: [strides[0], strides[1]], pads: [pads[0], pads[1], pads[2], pads[3]] };
}

export function windowOut(
  node: GraphNode,
  size: number,
  kernel: number,
  stride: number,
  pad: number,
): number {
  const out = Math.floor((size + pad - kernel) / stride) + 1;
  if (out < 1) throw new LoweringError(node, `window ${kernel} larger than the padded input ${size + pad}`);
  return out;
}

export function poolAttrs(node: GraphNode, [h, w, c]: Shape3) {
  if (intAttr(node, 'ceil_mode', 0) !== 0) throw new LoweringError(node, 'ceil_mode is not supported');
  if (intAttr(node, 'storage_order', 0) !== 0)
    throw new LoweringError(node, 'storage_order is not supported');
  const kernel = intsAttr(node, 'kernel_shape');
  if (kernel?.length !== 2) throw new LoweringError(node, 'kernel_shape must have 2 values');
  const { stride, pads } = windowAttrs(node);
  const shape: Shape3 = [
    windowOut(node, h, kernel[0], stride[0], pads[0] + pads[2]),
    windowOut(node, w, kernel[1], stride[1], pads[1] + pads[3]),
    c,
  ];
  return { options: { kernel: [kernel[0], kernel[1]] as [number, number], stride, pads }, shape };
}
