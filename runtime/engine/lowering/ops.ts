// One lowerer per ONNX op, registered in OP_LOWERERS. A lowerer reads its node's inputs from the context
// and either records what its output is (a quantized tensor, a constant, an alias) or leaves a Pending
// op that the QuantizeLinear after it completes with the output's parameters.
import type { GraphNode } from '../../models/onnx/graph.ts';
import type { Shape3 } from '../kernels-addon.ts';
import { intAttr, intsAttr, poolAttrs, windowAttrs, windowOut } from './attributes.ts';
import { type DqConst, type LoweringContext, LoweringError, type Pending, type QTensor } from './context.ts';
import { channelScales, convBias, f32, ohwiOf, quantizeU8, requantization } from './quantization.ts';
import { lowerWhere } from './relu0-gate.ts';

export type OpLowerer = (ctx: LoweringContext, node: GraphNode) => void;

function lowerQuantizeLinear(ctx: LoweringContext, node: GraphNode): void {
  const params = ctx.qparams(node);
  const x = node.inputs[0];
  const out = node.outputs[0];
  if (x === ctx.input.name) {
    if (ctx.inputParams) throw new LoweringError(node, 'the graph input is quantized twice');
    ctx.inputParams = params;
    ctx.u8.set(out, { id: 0, shape: ctx.input.shape, ...params });
    ctx.tensorNames[0] = out;
    return;
  }
  const make = ctx.pending.get(x);
  if (!make) throw new LoweringError(node, `"${x}" is not the output of a lowerable op`);
  const t = make(params);
  ctx.u8.set(out, t);
  // A fused ReLU's output replaces its producer's name: the plan tensor holds the ReLU's values.
  ctx.tensorNames[t.id] = out;
}

function lowerDequantizeLinear(ctx: LoweringContext, node: GraphNode): void {
  const out = node.outputs[0];
  const source = ctx.u8.get(node.inputs[0]);
  if (source) {
    ctx.sameParams(node, source, ctx.qparams(node), 'DequantizeLinear');
    ctx.dq.set(out, source);
    return;
  }
  const { initializers } = ctx.graph;
  const values = initializers.get(node.inputs[0]);
  const scales = initializers.get(node.inputs[1]);
  if (!values || !scales || scales.type !== 'float32')
    throw new LoweringError(node, 'expects a QuantizeLinear output or an initializer with float scales');
  const zps = node.inputs[2] ? initializers.get(node.inputs[2]) : undefined;
  if (node.inputs[2] && !zps) throw new LoweringError(node, 'zero point must be an initializer');
  ctx.consts.set(out, { values, scales: scales.data as Float32Array, zps, axis: intAttr(node, 'axis', 1) });
}

function lowerConv(ctx: LoweringContext, node: GraphNode): void {
  const x = ctx.activation(node, 0);
  const w = ctx.constant(node, 1, 'weights');
  const dims = w.values.dims;
  if (w.values.type !== 'int8' || dims.length !== 4)
    throw new LoweringError(node, 'weights must be int8 [out, in, kh, kw]');
  const [cout, cin, kh, kw] = dims;
  if (cin !== x.shape[2])
    throw new LoweringError(node, `weights take ${cin} channels, the input has ${x.shape[2]}`);
  if (intAttr(node, 'group', 1) !== 1) throw new LoweringError(node, 'grouped convolution is not supported');
  const kernel = intsAttr(node, 'kernel_shape');
  if (kernel && (kernel[0] !== kh || kernel[1] !== kw))
    throw new LoweringError(node, 'kernel_shape does not match the weights');
  const geometry = { cin, cout, kh, kw, ...windowAttrs(node) };
  const { stride, pads } = geometry;
  const scales = channelScales(node, w, cout, 0);
  const ohwi = ohwiOf(w.values.data as Int8Array, cout, cin, kh, kw);
  const bias = node.inputs[2]
    ? convBias(node, ctx.constant(node, 2, 'bias'), x.scale, scales)
    : new Int32Array(cout);
  const shape: Shape3 = [
    windowOut(node, x.shape[0], kh, stride[0], pads[0] + pads[2]),
    windowOut(node, x.shape[1], kw, stride[1], pads[1] + pads[3]),
    cout,
  ];
  ctx.macs += shape[0] * shape[1] * cout * kh * kw * cin;
  ctx.pending.set(node.outputs[0], (params) =>
    ctx.emit(
      {
        op: 'conv',
        input: x.id,
        output: -1,
        weights: ohwi,
        bias,
        // ORT's QLinearConv order (docs/kernels.md): float32(float32(s_in * s_w) / s_out).
        multipliers: Float32Array.from(scales, (s) => f32(f32(x.scale * s) / params.scale)),
        ...geometry,
        zpIn: x.zp,
        zpOut: params.zp,
        relu: false,
      },
      shape,
      params,
    ),
  );
}

function lowerRelu(ctx: LoweringContext, node: GraphNode): void {
  const x = ctx.activation(node, 0);
  const producer = ctx.producedBy.get(x.id);
  // The ReLU is folded into its producer, which is only sound when nothing else reads its output.
  if (!producer || (producer.op !== 'conv' && producer.op !== 'add') || !ctx.soleReader(node.inputs[0]))
    throw new LoweringError(node, 'only a ReLU that alone consumes a Conv or Add output can be fused');
  ctx.pending.set(node.outputs[0], (params) => {
    ctx.sameParams(node, x, params, 'a fused ReLU');
    producer.relu = true;
    return x;
  });
}

function lowerAdd(ctx: LoweringContext, node: GraphNode): void {
  const a = ctx.activation(node, 0);
  const b = ctx.activation(node, 1);
  if (a.shape.join() !== b.shape.join())
    throw new LoweringError(node, `operand shapes ${a.shape} and ${b.shape} differ (no broadcasting)`);
  ctx.pending.set(node.outputs[0], (params) =>
    ctx.emit(
      {
        op: 'add',
        inputs: [a.id, b.id],
        output: -1,
        zpA: a.zp,
        zpB: b.zp,
        zpOut: params.zp,
        multA: f32(a.scale / params.scale),
        multB: f32(b.scale / params.scale),
        relu: false,
      },
      a.shape,
      params,
    ),
  );
}

function lowerMaxPool(ctx: LoweringContext, node: GraphNode): void {
  const x = ctx.activation(node, 0);
  if (node.outputs.length > 1) throw new LoweringError(node, 'the Indices output is not supported');
  const pool = poolAttrs(node, x.shape);
  ctx.pending.set(node.outputs[0], (params) => {
    ctx.sameParams(node, x, params, 'MaxPool');
    return ctx.emit({ op: 'maxpool', input: x.id, output: -1, ...pool.options }, pool.shape, params);
  });
}

function lowerAveragePool(ctx: LoweringContext, node: GraphNode): void {
  const x = ctx.activation(node, 0);
  const pool = poolAttrs(node, x.shape);
  if (intAttr(node, 'count_include_pad', 0) !== 0 && pool.options.pads.some((p) => p > 0))
    throw new LoweringError(node, 'count_include_pad=1 with padding is not supported');
  ctx.pending.set(node.outputs[0], (params) =>
    ctx.emit(
      { op: 'avgpool', input: x.id, output: -1, ...pool.options, ...requantization(x, params) },
      pool.shape,
      params,
    ),
  );
}

function lowerPad(ctx: LoweringContext, node: GraphNode): void {
  const x = ctx.activation(node, 0);
  const mode = node.attrs.mode;
  if (mode && !('s' in mode && mode.s === 'constant'))
    throw new LoweringError(node, 'only constant padding is supported');
  const padsT = ctx.graph.initializers.get(node.inputs[1]);
  if (padsT?.type !== 'int64' || padsT.data.length !== 8 || node.inputs[3])
    throw new LoweringError(node, 'pads must be an int64 initializer of 8 values (NCHW begins, then ends)');
  const [n0, c0, h0, w0, n1, c1, h1, w1] = Array.from(padsT.data as BigInt64Array, Number);
  if (n0 !== 0 || n1 !== 0 || [c0, h0, w0, c1, h1, w1].some((p) => p < 0))
    throw new LoweringError(node, 'only non-negative C, H, W padding is supported');
  const fill = node.inputs[2] ? ctx.scalar(node, node.inputs[2], 'float32') : 0;
  const pending: Pending = (params) => {
    ctx.sameParams(node, x, params, 'Pad');
    const [h, w, c] = x.shape;
    return ctx.emit(
      {
        op: 'pad',
        input: x.id,
        output: -1,
        pads: [h0, w0, c0, h1, w1, c1],
        value: quantizeU8(fill, params.scale, params.zp),
      },
      [h + h0 + h1, w + w0 + w1, c + c0 + c1],
      params,
    );
  };
  ctx.pending.set(node.outputs[0], pending);
}

function lowerReduceMean(ctx: LoweringContext, node: GraphNode): void {
  const x = ctx.activation(node, 0);
  const axes = intsAttr(node, 'axes');
  const spatial = new Set(axes?.map((a) => (a < 0 ? a + 4 : a)));
  if (axes?.length !== 2 || !spatial.has(2) || !spatial.has(3) || node.inputs[1])
    throw new LoweringError(node, 'only a mean over the spatial axes [2, 3] (attribute axes) is supported');
  ctx.pending.set(node.outputs[0], (params) =>
    ctx.emit(
      { op: 'mean', input: x.id, output: -1, ...requantization(x, params) },
      [1, 1, x.shape[2]],
      params,
    ),
  );
}

/** The final fully connected layer, whose float output is the graph's. */
function lowerGemm(ctx: LoweringContext, node: GraphNode): void {
  if (ctx.fc) throw new LoweringError(node, 'only one Gemm, producing the graph output, is supported');
  const x = ctx.activation(node, 0);
  const b = ctx.constant(node, 1, 'B');
  if (x.shape[0] !== 1 || x.shape[1] !== 1)
    throw new LoweringError(node, `input must be a [1, 1, C] vector (after a global mean), not ${x.shape}`);
  for (const [attr, want] of [
    ['alpha', 1],
    ['beta', 1],
  ] as const) {
    const a = node.attrs[attr];
    if (a && 'f' in a && a.f !== want) throw new LoweringError(node, `${attr} != ${want} is not supported`);
  }
  if (intAttr(node, 'transA', 0) !== 0) throw new LoweringError(node, 'transA is not supported');
  const transB = intAttr(node, 'transB', 0) === 1;
  const dims = b.values.dims;
  if (b.values.type !== 'int8' || dims.length !== 2) throw new LoweringError(node, 'B must be int8 2-D');
  const [cin, cout] = transB ? [dims[1], dims[0]] : dims;
  if (cin !== x.shape[2]) throw new LoweringError(node, `B takes ${cin} inputs, the input has ${x.shape[2]}`);
  const scales = channelScales(node, b, cout, transB ? 0 : 1);
  const src = b.values.data as Int8Array;
  const weights = new Int8Array(cout * cin);
  for (let c = 0; c < cout; c++)
    for (let k = 0; k < cin; k++) weights[c * cin + k] = transB ? src[c * cin + k] : src[k * cout + c];
  const bias = node.inputs[2] ? gemmBias(node, ctx.constant(node, 2, 'C'), cout) : new Float32Array(cout);
  const id = ctx.push({
    op: 'fc',
    input: x.id,
    output: -1,
    weights,
    scale: Float32Array.from(scales, (s) => f32(x.scale * s)),
    bias,
    cin,
    cout,
    zpIn: x.zp,
  });
  ctx.tensorNames[id] = node.outputs[0];
  ctx.fc = { name: node.outputs[0], size: cout, id };
}

function gemmBias(node: GraphNode, c: DqConst, cout: number): Float32Array {
  if (c.values.data.length !== cout || c.values.type !== 'int32')
    throw new LoweringError(node, `C must be int32 with ${cout} values`);
  const cs = channelScales(node, c, cout, 0);
  return Float32Array.from(c.values.data as Int32Array, (v, i) => v * cs[i]);
}

function lowerIdentity(ctx: LoweringContext, node: GraphNode): void {
  const out = node.outputs[0];
  const alias: QTensor | undefined = ctx.dq.get(node.inputs[0]);
  if (alias) ctx.dq.set(out, alias);
  else if (ctx.fc?.name === node.inputs[0]) ctx.fc = { ...ctx.fc, name: out };
  else
    throw new LoweringError(
      node,
      `input "${node.inputs[0]}" is neither a dequantized tensor nor the fc output`,
    );
}

/** The ops the native kernels run, by ONNX op type. */
export const OP_LOWERERS: ReadonlyMap<string, OpLowerer> = new Map([
  ['QuantizeLinear', lowerQuantizeLinear],
  ['DequantizeLinear', lowerDequantizeLinear],
  ['Conv', lowerConv],
  ['Relu', lowerRelu],
  ['Add', lowerAdd],
  ['MaxPool', lowerMaxPool],
  ['AveragePool', lowerAveragePool],
  ['Pad', lowerPad],
  ['ReduceMean', lowerReduceMean],
  ['Where', lowerWhere],
  ['Gemm', lowerGemm],
  ['Identity', lowerIdentity],
]);
