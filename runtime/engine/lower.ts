// Lowers an int8 QDQ model (as tools/models/quantize/qdq.ts writes it) into the native kernels'
// Network plan: each QuantizeLinear closes one integer op, whose input and output parameters come from
// the DequantizeLinear / QuantizeLinear pairs around it. Anything outside the patterns below throws a
// LoweringError naming the node, and the caller keeps ONNX Runtime for that model. A ReLU-zero gate
// (docs/relu-zero.md) is lowered as a whole: its predictor and decision become gate and gateMask ops,
// and the gated conv is computed only where the mask is open.
import { findGates, type GateSite } from '../models/gated/pattern.ts';
import type { Attribute, Graph, GraphNode, Tensor } from '../models/onnx/graph.ts';
import { type OnnxModel, readOnnx } from '../models/onnx/reader.ts';
import type { NetworkPlan, Pads4, PlanOp, Shape3 } from './kernels-addon.ts';

export class LoweringError extends Error {
  constructor(node: GraphNode | string, reason: string) {
    super(
      typeof node === 'string'
        ? `cannot lower to native kernels: ${node}: ${reason}`
        : `cannot lower ${node.op} node "${node.name}" to native kernels: ${reason}`,
    );
    this.name = 'LoweringError';
  }
}

export interface LoweredModel {
  plan: NetworkPlan;
  /** The float NCHW input Network.runFloat quantizes (with these parameters) into the plan's NHWC input. */
  input: { name: string; channels: number; height: number; width: number; scale: number; zeroPoint: number };
  /** The float output (produced by the plan's fc). */
  output: { name: string; size: number };
  /** The ONNX tensor each plan tensor holds (a QuantizeLinear output; the Gemm output for the fc), so
   * Network.tensor(id) can be compared layer by layer with ONNX Runtime. */
  tensorNames: string[];
  /** Each ReLU-zero gate: its conv, its decision tensor in the ONNX graph (the Greater output), the
   * plan tensor holding its mask, and the dilation the conv applies to that mask. */
  gates: { conv: string; open: string; mask: number; dilate: number }[];
  /** Conv multiply-accumulates of one dense pass, padded taps included (docs/kernels.md's count; the
   * fc adds 0.01%). */
  macs: number;
}

interface QParams {
  scale: number;
  zp: number;
}

/** A uint8 plan tensor. */
interface QTensor extends QParams {
  id: number;
  shape: Shape3;
}

/** A DequantizeLinear of an initializer (weights, bias). */
interface DqConst {
  values: Tensor;
  scales: Float32Array;
  zps?: Tensor;
  axis: number;
}

/** A float result waiting for the QuantizeLinear that gives its output parameters. */
type Pending = (out: QParams) => QTensor;

const f32 = Math.fround;

/** ONNX QuantizeLinear: x / scale rounded half to even, plus the zero point, saturated to uint8. */
export function quantizeU8(x: number, scale: number, zp: number): number {
  const v = f32(x / scale);
  let r = Math.round(v);
  if (r - v === 0.5 && r % 2 !== 0) r -= 1;
  r += zp;
  return Math.max(0, Math.min(255, r));
}

export function lowerQdqModel(model: Uint8Array | OnnxModel): LoweredModel {
  const { graph } = model instanceof Uint8Array ? readOnnx(model) : model;
  const consumers = graph.consumers();
  const producers = graph.producers();
  const users = (t: string) => consumers.get(t) ?? [];

  const ops: PlanOp[] = [];
  const producedBy = new Map<number, PlanOp>();
  let tensors = 1;
  let macs = 0;
  /** QuantizeLinear outputs (uint8) and DequantizeLinear outputs (floats that are exactly a plan tensor). */
  const u8 = new Map<string, QTensor>();
  const dq = new Map<string, QTensor>();
  const consts = new Map<string, DqConst>();
  const pending = new Map<string, Pending>();
  let fc: { name: string; size: number; id: number } | undefined;
  const tensorNames: string[] = [];

  const gates = gateSubgraphs(graph);
  /** Plan ops of each predictor, and the mask tensor of each gate decision (Greater output). */
  const gateOps = new Map<GraphNode, PlanOp>();
  const masks = new Map<string, { id: number; dilate: number; gate: PlanOp }>();
  const gateList: LoweredModel['gates'] = [];

  if (graph.inputs.length !== 1)
    throw new LoweringError('graph', `${graph.inputs.length} inputs, expected 1`);
  const gi = graph.inputs[0];
  const [, channels, height, width] = gi.shape ?? [];
  if (gi.type !== 'float32' || gi.shape?.length !== 4 || ![channels, height, width].every(Number.isInteger))
    throw new LoweringError('graph', `input "${gi.name}" must be float [N, C, H, W] with fixed C, H, W`);
  const inputShape: Shape3 = [height as number, width as number, channels as number];
  let inputParams: QParams | undefined;

  const push = (op: PlanOp): number => {
    op.output = tensors++;
    ops.push(op);
    producedBy.set(op.output, op);
    return op.output;
  };
  const emit = (op: PlanOp, shape: Shape3, out: QParams): QTensor => ({ id: push(op), shape, ...out });
  const scalar = (node: GraphNode, name: string | undefined, type: Tensor['type']): number => {
    const t = name ? graph.initializers.get(name) : undefined;
    if (!t || t.type !== type || t.data.length !== 1)
      throw new LoweringError(node, `"${name}" must be a ${type} scalar initializer`);
    return Number(t.data[0]);
  };
  const qparams = (node: GraphNode): QParams => ({
    scale: scalar(node, node.inputs[1], 'float32'),
    zp: node.inputs[2] ? scalar(node, node.inputs[2], 'uint8') : 0,
  });
  const activation = (node: GraphNode, i: number): QTensor => {
    const t = dq.get(node.inputs[i]);
    if (!t)
      throw new LoweringError(
        node,
        `input "${node.inputs[i]}" is not dequantized from a uint8 tensor (a float model, or an op on float data)`,
      );
    return t;
  };
  const constant = (node: GraphNode, i: number, what: string): DqConst => {
    const c = consts.get(node.inputs[i]);
    if (!c)
      throw new LoweringError(
        node,
        `${what} "${node.inputs[i]}" must be a DequantizeLinear of an initializer`,
      );
    return c;
  };
  /** The dequantized tensor `t` and the uint8 tensor behind it have no other reader, so the op that
   * produced it may be changed (a ReLU fused into it, closed pixels left out). */
  const soleReader = (t: string) => {
    const dqNode = producers.get(t);
    return users(t).length === 1 && dqNode !== undefined && users(dqNode.inputs[0]).length === 1;
  };
  const sameParams = (node: GraphNode, a: QParams, b: QParams, what: string) => {
    if (a.scale !== b.scale || a.zp !== b.zp)
      throw new LoweringError(node, `${what} needs equal input and output quantization parameters`);
  };

  for (const node of graph.nodes) {
    if (node.domain) throw new LoweringError(node, `operator domain "${node.domain}" is not supported`);
    const gate = gates.nodes.get(node);
    if (gate) {
      // The gate's nodes are computed by its two ops, emitted once its decision is reached.
      if (node === gate.open) masks.set(node.outputs[0], lowerGate(gate));
      continue;
    }
    const out = node.outputs[0];
    switch (node.op) {
      case 'QuantizeLinear': {
        const params = qparams(node);
        const x = node.inputs[0];
        if (x === gi.name) {
          if (inputParams) throw new LoweringError(node, 'the graph input is quantized twice');
          inputParams = params;
          u8.set(out, { id: 0, shape: inputShape, ...params });
          tensorNames[0] = out;
          break;
        }
        const make = pending.get(x);
        if (!make) throw new LoweringError(node, `"${x}" is not the output of a lowerable op`);
        const t = make(params);
        u8.set(out, t);
        // A fused ReLU's output replaces its producer's name: the plan tensor holds the ReLU's values.
        tensorNames[t.id] = out;
        break;
      }
      case 'DequantizeLinear': {
        const source = u8.get(node.inputs[0]);
        if (source) {
          sameParams(node, source, qparams(node), 'DequantizeLinear');
          dq.set(out, source);
          break;
        }
        const values = graph.initializers.get(node.inputs[0]);
        const scales = graph.initializers.get(node.inputs[1]);
        if (!values || !scales || scales.type !== 'float32')
          throw new LoweringError(
            node,
            'expects a QuantizeLinear output or an initializer with float scales',
          );
        const zps = node.inputs[2] ? graph.initializers.get(node.inputs[2]) : undefined;
        if (node.inputs[2] && !zps) throw new LoweringError(node, 'zero point must be an initializer');
        consts.set(out, {
          values,
          scales: scales.data as Float32Array,
          zps,
          axis: intAttr(node, 'axis', 1),
        });
        break;
      }
      case 'Conv':
        pending.set(out, lowerConv(node, activation(node, 0), constant(node, 1, 'weights')));
        break;
      case 'Relu': {
        const x = activation(node, 0);
        const producer = producedBy.get(x.id);
        // The ReLU is folded into its producer, which is only sound when nothing else reads its output.
        if (!producer || (producer.op !== 'conv' && producer.op !== 'add') || !soleReader(node.inputs[0]))
          throw new LoweringError(node, 'only a ReLU that alone consumes a Conv or Add output can be fused');
        pending.set(out, (params) => {
          sameParams(node, x, params, 'a fused ReLU');
          producer.relu = true;
          return x;
        });
        break;
      }
      case 'Add': {
        const a = activation(node, 0);
        const b = activation(node, 1);
        if (a.shape.join() !== b.shape.join())
          throw new LoweringError(node, `operand shapes ${a.shape} and ${b.shape} differ (no broadcasting)`);
        pending.set(out, (params) =>
          emit(
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
        break;
      }
      case 'MaxPool': {
        const x = activation(node, 0);
        if (node.outputs.length > 1) throw new LoweringError(node, 'the Indices output is not supported');
        const pool = poolAttrs(node, x.shape);
        pending.set(out, (params) => {
          sameParams(node, x, params, 'MaxPool');
          return emit({ op: 'maxpool', input: x.id, output: -1, ...pool.options }, pool.shape, params);
        });
        break;
      }
      case 'AveragePool': {
        const x = activation(node, 0);
        const pool = poolAttrs(node, x.shape);
        if (intAttr(node, 'count_include_pad', 0) !== 0 && pool.options.pads.some((p) => p > 0))
          throw new LoweringError(node, 'count_include_pad=1 with padding is not supported');
        pending.set(out, (params) =>
          emit(
            {
              op: 'avgpool',
              input: x.id,
              output: -1,
              ...pool.options,
              zpIn: x.zp,
              zpOut: params.zp,
              mult: f32(x.scale / params.scale),
            },
            pool.shape,
            params,
          ),
        );
        break;
      }
      case 'Pad':
        pending.set(out, lowerPad(node, activation(node, 0)));
        break;
      case 'ReduceMean': {
        const x = activation(node, 0);
        const axes = intsAttr(node, 'axes');
        const spatial = new Set(axes?.map((a) => (a < 0 ? a + 4 : a)));
        if (axes?.length !== 2 || !spatial.has(2) || !spatial.has(3) || node.inputs[1])
          throw new LoweringError(
            node,
            'only a mean over the spatial axes [2, 3] (attribute axes) is supported',
          );
        pending.set(out, (params) =>
          emit(
            {
              op: 'mean',
              input: x.id,
              output: -1,
              zpIn: x.zp,
              zpOut: params.zp,
              mult: f32(x.scale / params.scale),
            },
            [1, 1, x.shape[2]],
            params,
          ),
        );
        break;
      }
      case 'Where': {
        const mask = masks.get(node.inputs[0]);
        const x = activation(node, 1);
        const conv = producedBy.get(x.id);
        if (!mask || !gates.sites.has(node))
          throw new LoweringError(node, 'only a ReLU-zero gate, Where(open, x, 0), is supported');
        // The conv skips closed pixels, which is only sound when nothing else reads its output.
        if (conv?.op !== 'conv' || !soleReader(node.inputs[1]))
          throw new LoweringError(node, 'a gate must alone consume a Conv output (or its fused ReLU)');
        pending.set(out, (params) => {
          sameParams(node, x, params, 'a gate');
          const site = gates.sites.get(node) as GateSite;
          gateList.push({ conv: site.conv.name, open: node.inputs[0], mask: mask.id, dilate: mask.dilate });
          conv.mask = mask.id;
          if (mask.dilate > 1) conv.maskDilate = mask.dilate;
          // The gate reads only the site input, which exists before the conv: run it just before.
          const at = ops.indexOf(mask.gate);
          const before = ops.indexOf(conv);
          if (at > before) ops.splice(before, 0, ...ops.splice(at, 1));
          return x;
        });
        break;
      }
      case 'Gemm':
        if (fc) throw new LoweringError(node, 'only one Gemm, producing the graph output, is supported');
        fc = lowerGemm(node, activation(node, 0), constant(node, 1, 'B'));
        break;
      case 'Identity': {
        const alias = dq.get(node.inputs[0]);
        if (alias) dq.set(out, alias);
        else if (fc?.name === node.inputs[0]) fc = { ...fc, name: out };
        else
          throw new LoweringError(
            node,
            `input "${node.inputs[0]}" is neither a dequantized tensor nor the fc output`,
          );
        break;
      }
      default:
        throw new LoweringError(node, 'operator not supported by the native kernels');
    }
    const after = pending.get(out);
    if (after && (users(out).length !== 1 || users(out)[0].op !== 'QuantizeLinear'))
      throw new LoweringError(node, 'its float output must feed exactly one QuantizeLinear');
  }

  if (!inputParams) throw new LoweringError('graph', `input "${gi.name}" is not quantized`);
  const output = graph.outputs[0];
  if (graph.outputs.length !== 1 || !fc || fc.name !== output.name)
    throw new LoweringError('graph', 'the single graph output must be produced by a final Gemm (fc)');
  return {
    plan: { tensors, input: { id: 0, shape: inputShape }, output: fc.id, ops },
    input: {
      name: gi.name,
      channels: inputShape[2],
      height: inputShape[0],
      width: inputShape[1],
      scale: inputParams.scale,
      zeroPoint: inputParams.zp,
    },
    output: { name: fc.name, size: fc.size },
    tensorNames,
    gates: gateList,
    macs,
  };

  function lowerConv(node: GraphNode, x: QTensor, w: DqConst): Pending {
    const dims = w.values.dims;
    if (w.values.type !== 'int8' || dims.length !== 4)
      throw new LoweringError(node, 'weights must be int8 [out, in, kh, kw]');
    const [cout, cin, kh, kw] = dims;
    if (cin !== x.shape[2])
      throw new LoweringError(node, `weights take ${cin} channels, the input has ${x.shape[2]}`);
    if (intAttr(node, 'group', 1) !== 1)
      throw new LoweringError(node, 'grouped convolution is not supported');
    const kernel = intsAttr(node, 'kernel_shape');
    if (kernel && (kernel[0] !== kh || kernel[1] !== kw))
      throw new LoweringError(node, 'kernel_shape does not match the weights');
    const { stride, pads } = windowAttrs(node);
    const scales = channelScales(node, w, cout, 0);
    const ohwi = ohwiOf(w.values.data as Int8Array, cout, cin, kh, kw);
    const bias = node.inputs[2]
      ? convBias(node, constant(node, 2, 'bias'), x.scale, scales)
      : new Int32Array(cout);
    const shape: Shape3 = [
      windowOut(node, x.shape[0], kh, stride[0], pads[0] + pads[2]),
      windowOut(node, x.shape[1], kw, stride[1], pads[1] + pads[3]),
      cout,
    ];
    macs += shape[0] * shape[1] * cout * kh * kw * cin;
    return (params) =>
      emit(
        {
          op: 'conv',
          input: x.id,
          output: -1,
          weights: ohwi,
          bias,
          // ORT's QLinearConv order (docs/kernels.md): float32(float32(s_in * s_w) / s_out).
          multipliers: Float32Array.from(scales, (s) => f32(f32(x.scale * s) / params.scale)),
          cin,
          cout,
          kh,
          kw,
          stride,
          pads,
          zpIn: x.zp,
          zpOut: params.zp,
          relu: false,
        },
        shape,
        params,
      );
  }

  /** A gate decision's mask: the site's gate op (one per predictor) and, for a block's conv1, the
   * dilation the conv applies to it. */
  function lowerGate(site: GateSite): { id: number; dilate: number; gate: PlanOp } {
    const { predictor, tiles, slice, dilate, open } = site;
    const threshold = scalar(open, open.inputs[1], 'float32');
    let gate = gateOps.get(predictor);
    if (!gate) {
      const x = activation(predictor, 0);
      const w = constant(predictor, 1, 'weights');
      const [cout, cin, kh, kw] = w.values.dims;
      if (w.values.type !== 'int8' || cout !== 1 || cin !== x.shape[2])
        throw new LoweringError(predictor, `weights must be int8 [1, ${x.shape[2]}, kh, kw]`);
      const logitsQ = quantizerOf(predictor.outputs[0]);
      if (!logitsQ) throw new LoweringError(predictor, 'the predictor output must be quantized');
      const logits = qparams(logitsQ);
      const { stride, pads } = windowAttrs(predictor);
      const [sw] = channelScales(predictor, w, 1, 0);
      const bias = predictor.inputs[2]
        ? convBias(predictor, constant(predictor, 2, 'bias'), x.scale, Float32Array.of(sw))[0]
        : 0;
      let tile = 1;
      if (tiles) {
        const k = intsAttr(tiles, 'kernel_shape') ?? [];
        const st = intsAttr(tiles, 'strides') ?? [];
        tile = k[0];
        if (k.length !== 2 || k[1] !== tile || st[0] !== tile || st[1] !== tile)
          throw new LoweringError(tiles, 'tiles must be square, with the stride equal to the size');
      }
      const [outH, outW] = slice
        ? sliceEnds(slice)
        : [
            windowOut(predictor, x.shape[0], kh, stride[0], pads[0] + pads[2]),
            windowOut(predictor, x.shape[1], kw, stride[1], pads[1] + pads[3]),
          ];
      // The graph requantizes the cropped tile logits when a dilation max-pool reads them too.
      const decisionQ = slice ? quantizerOf(slice.outputs[0]) : undefined;
      const decision = decisionQ ? qparams(decisionQ) : undefined;
      gate = {
        op: 'gate',
        input: x.id,
        output: -1,
        // One output channel: OIHW -> [kh][kw][cin].
        weights: ohwiOf(w.values.data as Int8Array, 1, cin, kh, kw),
        bias,
        mult: f32(f32(x.scale * sw) / logits.scale),
        cin,
        kh,
        kw,
        stride,
        pads,
        zpIn: x.zp,
        scaleLogit: logits.scale,
        zpLogit: logits.zp,
        tile,
        outH,
        outW,
        ...(decision ? { decision: { scale: decision.scale, zeroPoint: decision.zp } } : {}),
        threshold,
      };
      push(gate);
      gateOps.set(predictor, gate);
    } else if (gate.op !== 'gate' || gate.threshold !== threshold) {
      throw new LoweringError(open, 'the decisions of one predictor must share its threshold');
    }
    if (!dilate) return { id: gate.output, dilate: 1, gate };
    const k = intsAttr(dilate, 'kernel_shape') ?? [];
    const { stride, pads } = windowAttrs(dilate);
    if (k[0] !== k[1] || stride[0] !== 1 || stride[1] !== 1 || pads.some((p) => p !== (k[0] - 1) / 2))
      throw new LoweringError(dilate, 'the dilation must be a centred square max with stride 1');
    return { id: gate.output, dilate: k[0], gate };
  }

  function quantizerOf(t: string): GraphNode | undefined {
    return users(t).find((n) => n.op === 'QuantizeLinear');
  }

  function sliceEnds(slice: GraphNode): [number, number] {
    const ends = graph.initializers.get(slice.inputs[2]);
    const axes = graph.initializers.get(slice.inputs[3]);
    if (ends?.type !== 'int64' || axes?.type !== 'int64' || Array.from(axes.data, Number).join() !== '2,3')
      throw new LoweringError(slice, 'the crop must be an int64 Slice over axes [2, 3]');
    const [h, w] = Array.from(ends.data as BigInt64Array, Number);
    return [h, w];
  }

  function lowerPad(node: GraphNode, x: QTensor): Pending {
    const mode = node.attrs.mode;
    if (mode && !('s' in mode && mode.s === 'constant'))
      throw new LoweringError(node, 'only constant padding is supported');
    const padsT = graph.initializers.get(node.inputs[1]);
    if (padsT?.type !== 'int64' || padsT.data.length !== 8 || node.inputs[3])
      throw new LoweringError(node, 'pads must be an int64 initializer of 8 values (NCHW begins, then ends)');
    const [n0, c0, h0, w0, n1, c1, h1, w1] = Array.from(padsT.data as BigInt64Array, Number);
    if (n0 !== 0 || n1 !== 0 || [c0, h0, w0, c1, h1, w1].some((p) => p < 0))
      throw new LoweringError(node, 'only non-negative C, H, W padding is supported');
    const fill = node.inputs[2] ? scalar(node, node.inputs[2], 'float32') : 0;
    return (params) => {
      sameParams(node, x, params, 'Pad');
      const [h, w, c] = x.shape;
      return emit(
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
  }

  function lowerGemm(node: GraphNode, x: QTensor, b: DqConst): { name: string; size: number; id: number } {
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
    if (cin !== x.shape[2])
      throw new LoweringError(node, `B takes ${cin} inputs, the input has ${x.shape[2]}`);
    const scales = channelScales(node, b, cout, transB ? 0 : 1);
    const src = b.values.data as Int8Array;
    const weights = new Int8Array(cout * cin);
    for (let c = 0; c < cout; c++)
      for (let k = 0; k < cin; k++) weights[c * cin + k] = transB ? src[c * cin + k] : src[k * cout + c];
    let bias = new Float32Array(cout);
    if (node.inputs[2]) {
      const c = constant(node, 2, 'C');
      if (c.values.data.length !== cout || c.values.type !== 'int32')
        throw new LoweringError(node, `C must be int32 with ${cout} values`);
      const cs = channelScales(node, c, cout, 0);
      bias = Float32Array.from(c.values.data as Int32Array, (v, i) => v * cs[i]);
    }
    const id = push({
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
    tensorNames[id] = node.outputs[0];
    return { name: node.outputs[0], size: cout, id };
  }
}

/** ONNX's OIHW weights in the kernels' OHWI layout. */
function ohwiOf(oihw: Int8Array, cout: number, cin: number, kh: number, kw: number): Int8Array {
  const ohwi = new Int8Array(cout * kh * kw * cin);
  for (let co = 0; co < cout; co++)
    for (let ci = 0; ci < cin; ci++)
      for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++)
          ohwi[((co * kh + ky) * kw + kx) * cin + ci] = oihw[((co * cin + ci) * kh + ky) * kw + kx];
  return ohwi;
}

/** Every gate's nodes (predictor to decision, with their Q/DQ; not the predictor's weight constants or
 * its input), mapped to their gate, and the gates by their Where nodes. */
function gateSubgraphs(graph: Graph): { nodes: Map<GraphNode, GateSite>; sites: Map<GraphNode, GateSite> } {
  const producers = graph.producers();
  const nodes = new Map<GraphNode, GateSite>();
  const sites = findGates(graph);
  for (const site of sites) {
    const stack = [site.open];
    while (stack.length > 0) {
      const n = stack.pop() as GraphNode;
      if (nodes.get(n) === site) continue;
      nodes.set(n, site);
      for (const t of n.inputs) {
        const p = producers.get(t);
        const isConstant = p?.op === 'DequantizeLinear' && graph.initializers.has(p.inputs[0]);
        if (p && t !== site.predictor.inputs[0] && !isConstant) stack.push(p);
      }
    }
  }
  return { nodes, sites: new Map(sites.map((s) => [s.where, s])) };
}

/** Per output channel weight scales; zero points must be 0 and values in the kernels' [-127, 127]. */
function channelScales(node: GraphNode, c: DqConst, channels: number, axis: number): Float32Array {
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

function convBias(node: GraphNode, b: DqConst, inScale: number, wScales: Float32Array): Int32Array {
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

function intAttr(node: GraphNode, name: string, fallback: number): number {
  const a: Attribute | undefined = node.attrs[name];
  if (!a) return fallback;
  if (!('i' in a)) throw new LoweringError(node, `attribute ${name} must be an int`);
  return a.i;
}

function intsAttr(node: GraphNode, name: string): number[] | undefined {
  const a: Attribute | undefined = node.attrs[name];
  if (!a) return undefined;
  if (!('ints' in a)) throw new LoweringError(node, `attribute ${name} must be a list of ints`);
  return a.ints;
}

function windowAttrs(node: GraphNode): { stride: [number, number]; pads: Pads4 } {
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

function windowOut(node: GraphNode, size: number, kernel: number, stride: number, pad: number): number {
  const out = Math.floor((size + pad - kernel) / stride) + 1;
  if (out < 1) throw new LoweringError(node, `window ${kernel} larger than the padded input ${size + pad}`);
  return out;
}

function poolAttrs(node: GraphNode, [h, w, c]: Shape3) {
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
