// TensorFlow.js graph model -> ONNX. tfjs graphs are NHWC; ONNX convolutions are NCHW. Every 4-D
// activation is therefore held in NCHW inside the ONNX graph, and ops whose meaning depends on axis
// order (Reshape, Concat, Mean, Pad, Softmax) translate their axes. Graph inputs are NCHW; graph
// outputs keep the tfjs (NHWC) meaning so results compare one to one with the original.
import { dirname } from 'node:path';
import { Graph } from '../../../runtime/models/onnx/graph.ts';
import {
  loadWeights,
  ModelFileError,
  parseJsonFile,
  type WeightGroup,
  type WeightTensor,
} from './weights.ts';

interface TfAttr {
  type?: string;
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  shape?: { dim?: { size: string }[] };
  list?: { i?: (string | number)[]; s?: string[]; f?: number[] };
}

export interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfAttr>;
}

export interface TfjsModelJson {
  format?: string;
  modelTopology: { node: TfNode[] };
  weightsManifest: WeightGroup[];
  signature?: {
    inputs?: Record<string, { name: string }>;
    outputs?: Record<string, { name: string }>;
  };
  userDefinedMetadata?: { signature?: TfjsModelJson['signature'] };
}

export class UnsupportedOpError extends Error {
  constructor(
    readonly op: string,
    readonly node: string,
    detail = '',
  ) {
    super(`unsupported tfjs op "${op}" at node "${node}"${detail ? `: ${detail}` : ''}`);
    this.name = 'UnsupportedOpError';
  }
}

/** A tensor during conversion: either a constant (kept as values until an op decides its layout) or an
 * ONNX value with known rank; `nchw` marks 4-D activations stored channel-first. */
type Value =
  | { kind: 'const'; tensor: WeightTensor }
  | { kind: 'onnx'; name: string; rank: number; nchw: boolean };

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];
/** Where an NHWC axis lives in NCHW. */
const NHWC_AXIS_IN_NCHW = [0, 2, 3, 1];

export function loadTfjsModel(modelJsonPath: string): {
  json: TfjsModelJson;
  weights: Map<string, WeightTensor>;
} {
  const json = parseJsonFile<TfjsModelJson>(modelJsonPath);
  if (!json.modelTopology?.node || !Array.isArray(json.weightsManifest)) {
    throw new ModelFileError(
      modelJsonPath,
      'not a tfjs graph model (modelTopology.node / weightsManifest missing)',
    );
  }
  return { json, weights: loadWeights(modelJsonPath, json.weightsManifest) };
}

export function convertTfjsFile(modelJsonPath: string, graphName: string): Graph {
  const { json, weights } = loadTfjsModel(modelJsonPath);
  try {
    return convertTfjsGraph(json, weights, graphName);
  } catch (e) {
    if (e instanceof UnsupportedOpError) e.message = `${dirname(modelJsonPath)}: ${e.message}`;
    throw e;
  }
}

export function convertTfjsGraph(
  json: TfjsModelJson,
  weights: Map<string, WeightTensor>,
  graphName: string,
): Graph {
  return new Converter(json, weights, graphName).run();
}

/** Keras exports prefix every node with the same scopes ("StatefulPartitionedCall/functional_1/");
 * names repeat in every node and Q/DQ pair of the ONNX file, so the common scope is dropped. */
function commonScope(nodes: TfNode[]): string {
  const named = nodes.filter((n) => !['Placeholder', 'Identity', 'Const'].includes(n.op)).map((n) => n.name);
  if (named.length === 0) return '';
  let prefix = named[0].slice(0, named[0].lastIndexOf('/') + 1);
  for (const name of named)
    while (prefix && !name.startsWith(prefix))
      prefix = prefix.slice(0, prefix.lastIndexOf('/', prefix.length - 2) + 1);
  return prefix;
}

class Converter {
  private graph: Graph;
  private values = new Map<string, Value>();
  private scope: string;

  constructor(
    private json: TfjsModelJson,
    private weights: Map<string, WeightTensor>,
    graphName: string,
  ) {
    this.graph = new Graph(graphName);
    this.scope = commonScope(json.modelTopology.node);
  }

  run(): Graph {
    for (const node of topologicalOrder(this.json.modelTopology.node)) this.convert(this.shortNamed(node));
    for (const out of this.outputNames()) {
      const v = this.value(out, 'graph output');
      if (v.kind === 'const')
        throw new UnsupportedOpError('Const', out, 'constant graph outputs are not supported');
      const nhwc = v.nchw
        ? this.graph.add('Transpose', [v.name], { perm: { ints: NCHW_TO_NHWC } }, `${out}/to_nhwc`)
        : v.name;
      // Outputs keep the tfjs node names, so a manifest can refer to them.
      this.graph.exposeOutput(nhwc, out);
    }
    return this.graph;
  }

  /** The node with its name (the ONNX names derived from it) shortened; values stay keyed by it too. */
  private shortNamed(node: TfNode): TfNode {
    return {
      ...node,
      name: this.short(node.name),
      input: node.input?.map((i) => (i.startsWith('^') ? i : this.short(i))),
    };
  }

  private short(name: string): string {
    return this.scope && name.startsWith(this.scope) ? name.slice(this.scope.length) : name;
  }

  private outputNames(): string[] {
    const sig = this.json.signature ?? this.json.userDefinedMetadata?.signature;
    if (sig?.outputs) return Object.values(sig.outputs).map((o) => this.short(stripPort(o.name)));
    const consumed = new Set(this.json.modelTopology.node.flatMap((n) => (n.input ?? []).map(stripPort)));
    return this.json.modelTopology.node
      .filter((n) => n.op !== 'Const' && !consumed.has(n.name))
      .map((n) => this.short(n.name));
  }

  private value(ref: string, consumer: string): Value {
    const v = this.values.get(stripPort(ref));
    if (!v) throw new Error(`node "${consumer}" reads "${ref}", which no node produces`);
    return v;
  }

  private inputs(node: TfNode): Value[] {
    return (node.input ?? []).filter((i) => !i.startsWith('^')).map((i) => this.value(i, node.name));
  }

  private set(node: TfNode, name: string, rank: number, nchw = rank === 4): void {
    this.values.set(node.name, { kind: 'onnx', name, rank, nchw });
  }

  private convert(node: TfNode): void {
    const g = this.graph;
    const ins = () => this.inputs(node);
    switch (node.op) {
      case 'Const': {
        const w = this.weights.get(node.name) ?? this.weights.get(this.scope + node.name);
        if (!w) throw new Error(`Const node "${node.name}" has no entry in the weights manifest`);
        this.values.set(node.name, { kind: 'const', tensor: w });
        return;
      }
      case 'Placeholder': {
        const dims = (node.attr?.shape?.shape?.dim ?? []).map((d) => Number(d.size));
        const shape = (dims.length === 4 ? NHWC_TO_NCHW.map((i) => dims[i]) : dims).map((d) =>
          d < 0 ? 'batch' : d,
        );
        g.addInput({ name: node.name, type: 'float32', shape });
        this.set(node, node.name, dims.length);
        return;
      }
      case 'Identity':
      case 'StopGradient':
        this.values.set(node.name, ins()[0]);
        return;
      case 'Conv2D':
      case '_FusedConv2D':
      case 'DepthwiseConv2dNative':
      case 'FusedDepthwiseConv2dNative':
        this.conv(node, ins());
        return;
      case 'MatMul':
      case '_FusedMatMul':
        this.matmul(node, ins());
        return;
      case 'Add':
      case 'AddV2':
      case 'BiasAdd':
      case 'Sub':
      case 'Mul':
      case 'RealDiv':
      case 'Maximum':
      case 'Minimum':
        this.binary(node, ins());
        return;
      case 'Relu':
      case 'Relu6':
      case 'Sigmoid':
      case 'Tanh':
      case 'Elu':
      case 'Square':
      case 'Sqrt':
      case 'Rsqrt':
      case 'Exp':
      case 'Neg':
      case 'Abs': {
        const x = this.activation(node, ins()[0]);
        this.set(node, this.unary(node.op, x.name, node.name), x.rank, x.nchw);
        return;
      }
      case 'MaxPool':
      case 'AvgPool':
        this.pool(node, ins()[0]);
        return;
      case 'Pad':
      case 'PadV2':
      case 'MirrorPad':
        this.pad(node, ins());
        return;
      case 'Reshape':
        this.reshape(node, ins());
        return;
      case 'Squeeze':
        this.squeeze(node, ins()[0]);
        return;
      case 'ConcatV2':
        this.concat(node, ins());
        return;
      case 'Mean':
      case 'Max':
      case 'Sum':
        this.reduce(node, ins());
        return;
      case 'Softmax':
        this.softmax(node, ins()[0]);
        return;
      default:
        throw new UnsupportedOpError(node.op, node.name);
    }
  }

  private activation(node: TfNode, v: Value): { name: string; rank: number; nchw: boolean } {
    if (v.kind === 'onnx') return v;
    // A constant fed to an element-wise op: materialise it as stored (tfjs layout).
    return { name: this.constInit(node.name, v.tensor), rank: v.tensor.shape.length, nchw: false };
  }

  private constInit(name: string, t: WeightTensor, dims = t.shape): string {
    if (t.dtype === 'int32') {
      return this.graph.addInitializer(`${name}/const`, 'int32', dims, Int32Array.from(t.values));
    }
    return this.graph.addInitializer(`${name}/const`, 'float32', dims, Float32Array.from(t.values));
  }

  private unary(op: string, x: string, name: string): string {
    const g = this.graph;
    switch (op) {
      case 'Relu6':
        return g.add(
          'Clip',
          [x, g.floatConst(`${name}/min`, [0], []), g.floatConst(`${name}/max`, [6], [])],
          {},
          name,
        );
      case 'Square':
        return g.add('Mul', [x, x], {}, name);
      case 'Rsqrt':
        return g.add('Reciprocal', [g.add('Sqrt', [x], {}, `${name}/sqrt`)], {}, name);
      case 'Elu':
        return g.add('Elu', [x], { alpha: { f: 1 } }, name);
      default:
        return g.add(op, [x], {}, name);
    }
  }

  private fusedActivation(node: TfNode, x: string, ops: string[]): string {
    const acts = ops.filter((o) => o !== 'BiasAdd');
    if (acts.length > 1) throw new UnsupportedOpError(node.op, node.name, `fused ops ${ops.join(',')}`);
    const act = acts[0];
    if (!act) return x;
    if (!['Relu', 'Relu6', 'Elu', 'Sigmoid', 'Tanh'].includes(act)) {
      throw new UnsupportedOpError(node.op, node.name, `fused activation ${act}`);
    }
    return this.unary(act, x, `${node.name}/${act.toLowerCase()}`);
  }

  private conv(node: TfNode, ins: Value[]): void {
    const [x, filter, bias] = ins;
    if (x.kind !== 'onnx' || x.rank !== 4 || filter.kind !== 'const') {
      throw new UnsupportedOpError(node.op, node.name, 'expects a 4-D activation and a constant filter');
    }
    const depthwise = node.op.includes('Depthwise');
    const [kh, kw, cin, cout] = filter.tensor.shape; // depthwise: [kh, kw, cin, multiplier]
    const fused = strings(node.attr?.fused_ops);
    // ONNX: [out, in/group, kh, kw]. Depthwise output channel c*mult+m reads input channel c.
    const outChannels = depthwise ? cin * cout : cout;
    const w = new Float32Array(outChannels * (depthwise ? 1 : cin) * kh * kw);
    const src = filter.tensor.values;
    for (let y = 0; y < kh; y++) {
      for (let xx = 0; xx < kw; xx++) {
        for (let i = 0; i < cin; i++) {
          for (let o = 0; o < cout; o++) {
            const v = src[((y * kw + xx) * cin + i) * cout + o];
            if (depthwise) w[((i * cout + o) * kh + y) * kw + xx] = v;
            else w[((o * cin + i) * kh + y) * kw + xx] = v;
          }
        }
      }
    }
    const inputs = [
      x.name,
      this.graph.addInitializer(
        `${node.name}/weights`,
        'float32',
        [outChannels, depthwise ? 1 : cin, kh, kw],
        w,
      ),
    ];
    if (fused.includes('BiasAdd')) {
      if (bias?.kind !== 'const') throw new UnsupportedOpError(node.op, node.name, 'bias must be constant');
      inputs.push(this.graph.floatConst(`${node.name}/bias`, bias.tensor.values as Float32Array));
    }
    const strides = ints(node.attr?.strides);
    const dilations = ints(node.attr?.dilations);
    const attrs: Parameters<Graph['add']>[2] = {
      kernel_shape: { ints: [kh, kw] },
      strides: { ints: strides.length === 4 ? [strides[1], strides[2]] : [1, 1] },
      dilations: { ints: dilations.length === 4 ? [dilations[1], dilations[2]] : [1, 1] },
      group: { i: depthwise ? cin : 1 },
      ...this.padding(node),
    };
    const conv = this.graph.add('Conv', inputs, attrs, node.name);
    this.set(node, this.fusedActivation(node, conv, fused), 4);
  }

  private padding(node: TfNode): Record<string, { s: string } | { ints: number[] }> {
    const mode = decodeString(node.attr?.padding?.s) || 'VALID';
    if (mode === 'SAME') return { auto_pad: { s: 'SAME_UPPER' } };
    if (mode === 'VALID') return { pads: { ints: [0, 0, 0, 0] } };
    if (mode === 'EXPLICIT') {
      const p = ints(node.attr?.explicit_paddings); // NHWC pairs
      return { pads: { ints: [p[2], p[4], p[3], p[5]] } };
    }
    throw new UnsupportedOpError(node.op, node.name, `padding ${mode}`);
  }

  private matmul(node: TfNode, ins: Value[]): void {
    const [a, b, bias] = ins;
    const transA = Boolean(node.attr?.transpose_a?.b);
    const transB = Boolean(node.attr?.transpose_b?.b);
    const fused = strings(node.attr?.fused_ops);
    const aName = this.activation(node, a).name;
    const bName = b.kind === 'const' ? this.constInit(`${node.name}/b`, b.tensor) : b.name;
    const inputs = [aName, bName];
    if (fused.includes('BiasAdd')) {
      if (bias?.kind !== 'const') throw new UnsupportedOpError(node.op, node.name, 'bias must be constant');
      inputs.push(this.graph.floatConst(`${node.name}/bias`, bias.tensor.values as Float32Array));
    }
    const gemm = this.graph.add(
      'Gemm',
      inputs,
      { transA: { i: transA ? 1 : 0 }, transB: { i: transB ? 1 : 0 } },
      node.name,
    );
    this.set(node, this.fusedActivation(node, gemm, fused), 2);
  }

  private binary(node: TfNode, ins: Value[]): void {
    const [a, b] = ins;
    const op = {
      Add: 'Add',
      AddV2: 'Add',
      BiasAdd: 'Add',
      Sub: 'Sub',
      Mul: 'Mul',
      RealDiv: 'Div',
      Maximum: 'Max',
      Minimum: 'Min',
    }[node.op] as string;
    const layoutFrom = [a, b].find((v) => v.kind === 'onnx' && v.nchw);
    const nchw = layoutFrom !== undefined;
    const operand = (v: Value, i: number): string => {
      if (v.kind === 'onnx') {
        if (nchw && !v.nchw && v.rank === 4)
          throw new UnsupportedOpError(node.op, node.name, 'mixed 4-D layouts');
        return v.name;
      }
      return this.constInit(
        `${node.name}/${i}`,
        v.tensor,
        nchw ? nchwBroadcastDims(v.tensor.shape, node) : v.tensor.shape,
      );
    };
    const aName = operand(a, 0);
    const bName = operand(b, 1);
    if (a.kind === 'const' && b.kind === 'const')
      throw new UnsupportedOpError(node.op, node.name, 'constant folding');
    const rank = Math.max(...[a, b].map((v) => (v.kind === 'onnx' ? v.rank : v.tensor.shape.length)));
    this.set(node, this.graph.add(op, [aName, bName], {}, node.name), rank, nchw);
  }

  private pool(node: TfNode, x: Value): void {
    if (x.kind !== 'onnx' || !x.nchw)
      throw new UnsupportedOpError(node.op, node.name, 'expects a 4-D activation');
    const k = ints(node.attr?.ksize);
    const s = ints(node.attr?.strides);
    const op = node.op === 'MaxPool' ? 'MaxPool' : 'AveragePool';
    const out = this.graph.add(
      op,
      [x.name],
      { kernel_shape: { ints: [k[1], k[2]] }, strides: { ints: [s[1], s[2]] }, ...this.padding(node) },
      node.name,
    );
    this.set(node, out, 4);
  }

  private pad(node: TfNode, ins: Value[]): void {
    const [x, paddings, constant] = ins;
    if (x.kind !== 'onnx' || paddings.kind !== 'const')
      throw new UnsupportedOpError(node.op, node.name, 'paddings must be constant');
    const p = Array.from(paddings.tensor.values);
    const rank = x.rank;
    // tfjs pairs [before, after] per NHWC axis; ONNX wants all befores, then all afters, in its own axis order.
    const order = x.nchw ? NHWC_TO_NCHW : [...Array(rank).keys()];
    const pads = [...order.map((ax) => p[ax * 2]), ...order.map((ax) => p[ax * 2 + 1])];
    const inputs = [x.name, this.graph.int64Const(`${node.name}/pads`, pads)];
    const attrs: Record<string, { s: string }> = {};
    if (node.op === 'MirrorPad')
      attrs.mode = { s: decodeString(node.attr?.mode?.s) === 'SYMMETRIC' ? 'edge' : 'reflect' };
    if (constant?.kind === 'const')
      inputs.push(this.graph.floatConst(`${node.name}/value`, [constant.tensor.values[0]], []));
    this.set(node, this.graph.add('Pad', inputs, attrs, node.name), rank, x.nchw);
  }

  private toNhwc(node: TfNode, x: Value): string {
    if (x.kind !== 'onnx') return this.activation(node, x).name;
    return x.nchw
      ? this.graph.add('Transpose', [x.name], { perm: { ints: NCHW_TO_NHWC } }, `${node.name}/to_nhwc`)
      : x.name;
  }

  private fromNhwc(node: TfNode, name: string, rank: number): void {
    if (rank !== 4) {
      this.set(node, name, rank, false);
      return;
    }
    this.set(
      node,
      this.graph.add('Transpose', [name], { perm: { ints: NHWC_TO_NCHW } }, `${node.name}/to_nchw`),
      4,
      true,
    );
  }

  private reshape(node: TfNode, ins: Value[]): void {
    const [x, shape] = ins;
    if (shape.kind !== 'const') throw new UnsupportedOpError(node.op, node.name, 'shape must be constant');
    const dims = Array.from(shape.tensor.values);
    const out = this.graph.add(
      'Reshape',
      [this.toNhwc(node, x), this.graph.int64Const(`${node.name}/shape`, dims)],
      {},
      node.name,
    );
    this.fromNhwc(node, out, dims.length);
  }

  private squeeze(node: TfNode, x: Value): void {
    if (x.kind !== 'onnx') throw new UnsupportedOpError(node.op, node.name, 'constant input');
    const axes = ints(node.attr?.squeeze_dims);
    if (axes.length === 0) throw new UnsupportedOpError(node.op, node.name, 'squeeze without explicit axes');
    const out = this.graph.add(
      'Squeeze',
      [this.toNhwc(node, x), this.graph.int64Const(`${node.name}/axes`, axes)],
      {},
      node.name,
    );
    this.fromNhwc(node, out, x.rank - axes.length);
  }

  private concat(node: TfNode, ins: Value[]): void {
    const axisValue = ins[ins.length - 1];
    if (axisValue.kind !== 'const') throw new UnsupportedOpError(node.op, node.name, 'axis must be constant');
    const parts = ins.slice(0, -1).map((v) => this.activation(node, v));
    const rank = parts[0].rank;
    let axis = Number(axisValue.tensor.values[0]);
    if (axis < 0) axis += rank;
    const nchw = parts.every((p) => p.nchw);
    const out = this.graph.add(
      'Concat',
      parts.map((p) => p.name),
      { axis: { i: nchw ? NHWC_AXIS_IN_NCHW[axis] : axis } },
      node.name,
    );
    this.set(node, out, rank, nchw);
  }

  private reduce(node: TfNode, ins: Value[]): void {
    const [x, axesValue] = ins;
    if (x.kind !== 'onnx' || axesValue.kind !== 'const')
      throw new UnsupportedOpError(node.op, node.name, 'axes must be constant');
    const keep = Boolean(node.attr?.keep_dims?.b);
    const axes = Array.from(axesValue.tensor.values).map((a) => (a < 0 ? a + x.rank : a));
    const op = { Mean: 'ReduceMean', Max: 'ReduceMax', Sum: 'ReduceSum' }[node.op] as string;
    // Spatial reductions of NCHW data give the same result layout as NHWC; others go through NHWC.
    const spatial = x.nchw && [...axes].sort().join() === '1,2';
    const input = spatial || !x.nchw ? x.name : this.toNhwc(node, x);
    const onnxAxes = spatial ? axes.map((a) => NHWC_AXIS_IN_NCHW[a]) : axes;
    const rankOut = keep ? x.rank : x.rank - axes.length;
    const attrs = { keepdims: { i: keep ? 1 : 0 } };
    const axesName = this.graph.int64Const(`${node.name}/axes`, onnxAxes);
    // ReduceSum takes axes as an input from opset 13; the others only from opset 18.
    const out =
      op === 'ReduceSum'
        ? this.graph.add(op, [input, axesName], attrs, node.name)
        : this.graph.add(op, [input], { ...attrs, axes: { ints: onnxAxes } }, node.name);
    if (spatial || !x.nchw) this.set(node, out, rankOut, x.nchw && keep);
    else this.fromNhwc(node, out, rankOut);
  }

  private softmax(node: TfNode, x: Value): void {
    if (x.kind !== 'onnx') throw new UnsupportedOpError(node.op, node.name, 'constant input');
    const axis = x.nchw ? 1 : x.rank - 1; // tfjs softmax is over the last (channel) axis
    this.set(node, this.graph.add('Softmax', [x.name], { axis: { i: axis } }, node.name), x.rank, x.nchw);
  }
}

/** Dims for a constant broadcast against NCHW data, from its NHWC-broadcast shape. */
function nchwBroadcastDims(shape: number[], node: TfNode): number[] {
  if (shape.length <= 1) return shape.length === 1 && shape[0] > 1 ? [shape[0], 1, 1] : shape;
  if (shape.length === 4 && shape[0] === 1 && shape[1] === 1 && shape[2] === 1) return [1, shape[3], 1, 1];
  throw new UnsupportedOpError(node.op, node.name, `constant of shape [${shape}] against 4-D data`);
}

function topologicalOrder(nodes: TfNode[]): TfNode[] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const done = new Set<string>();
  const order: TfNode[] = [];
  const visit = (n: TfNode, path: Set<string>): void => {
    if (done.has(n.name)) return;
    if (path.has(n.name)) throw new Error(`graph has a cycle through "${n.name}"`);
    path.add(n.name);
    for (const i of n.input ?? []) {
      const dep = byName.get(stripPort(i.replace(/^\^/, '')));
      if (dep) visit(dep, path);
    }
    path.delete(n.name);
    done.add(n.name);
    order.push(n);
  };
  for (const n of nodes) visit(n, new Set());
  return order;
}

function stripPort(ref: string): string {
  return ref.replace(/^\^/, '').replace(/:\d+$/, '');
}

function ints(attr: TfAttr | undefined): number[] {
  return (attr?.list?.i ?? []).map(Number);
}

function strings(attr: TfAttr | undefined): string[] {
  return (attr?.list?.s ?? []).map(decodeString);
}

function decodeString(b64: string | undefined): string {
  return b64 ? Buffer.from(b64, 'base64').toString('utf8') : '';
}
