// Rewrites an fp32 graph into ONNX QDQ form: uint8 asymmetric per-tensor activations (QuantizeLinear ->
// DequantizeLinear after each activation), int8 symmetric per-channel weights and int32 biases behind
// DequantizeLinear. ONNX Runtime fuses these node groups into QLinearConv / QLinearAdd / QGemm.
import { Graph, type GraphNode } from '../../../runtime/models/onnx/graph.ts';
import type { Range } from './calibrate.ts';

/** Ops that run on quantized data (their activation inputs get Q/DQ). Reshape and Transpose are not
 * among them: a tensor that only flows into those on its way out (a detector's box regressors) stays
 * float, since 8 bits over a +-150 px range would round keypoints to 1 px. */
const QUANTIZED_OPS = new Set([
  'Conv',
  'Gemm',
  'Add',
  'MaxPool',
  'AveragePool',
  'Pad',
  'ReduceMean',
  'Concat',
  'Relu',
  'Where',
]);
/** Ops whose output has exactly the input's value set, so it shares the input's parameters. */
const PASS_THROUGH = new Set(['MaxPool', 'Pad', 'AveragePool']);
/** Producers whose output, when it only feeds a ReLU, takes the ReLU's (zero-based) parameters. */
const RELU_FUSABLE = new Set(['Conv', 'Gemm', 'Add']);

/** Where(open, x, 0), a ReLU-zero gate (docs/relu-zero.md): its output is x or real 0. */
function isGate(graph: Graph, n: GraphNode): boolean {
  const zero = graph.initializers.get(n.inputs[2]);
  return n.op === 'Where' && zero !== undefined && zero.data.length === 1 && Number(zero.data[0]) === 0;
}

export interface ActivationParams {
  scale: number;
  zeroPoint: number;
}

export interface QuantizationPlan {
  /** Tensors that get Q/DQ. */
  quantized: string[];
  /** The subset whose range must be calibrated (the rest share a neighbour's parameters). */
  calibrated: string[];
  /** For each quantized tensor, the calibrated tensor whose parameters it uses. */
  paramsFrom: Map<string, string>;
}

export function planQuantization(graph: Graph): QuantizationPlan {
  const consumers = graph.consumers();
  const producers = graph.producers();
  const isActivation = (t: string) => t !== '' && !graph.initializers.has(t);
  const quantizedInput = (n: GraphNode, t: string, i: number) => {
    if (!QUANTIZED_OPS.has(n.op) || !isActivation(t)) return false;
    // Add with a constant operand (folded batch-norm) stays float; Add and Concat quantize every input.
    if (n.op === 'Add') return n.inputs.every(isActivation);
    // A gate quantizes the value it passes (its condition stays boolean).
    if (n.op === 'Where') return i === 1 && isGate(graph, n);
    return i === 0 || n.op === 'Concat';
  };
  const quantized = new Set<string>();
  for (const n of graph.nodes) {
    n.inputs.forEach((t, i) => {
      if (quantizedInput(n, t, i)) quantized.add(t);
    });
  }

  const paramsFrom = new Map<string, string>();
  const source = (t: string): string => {
    const known = paramsFrom.get(t);
    if (known) return known;
    const producer = producers.get(t);
    const users = consumers.get(t) ?? [];
    let from = t;
    if (producer && RELU_FUSABLE.has(producer.op) && users.length === 1 && users[0].op === 'Relu') {
      from = source(users[0].outputs[0]);
    } else if (users.length === 1 && isGate(graph, users[0]) && users[0].inputs[1] === t) {
      // A gated value shares its gate's parameters, so a closed pixel is exactly the zero point and
      // the native kernels can leave it unwritten (the conv output, via its ReLU when it has one).
      from = source(users[0].outputs[0]);
    } else if (producer && PASS_THROUGH.has(producer.op) && quantized.has(producer.inputs[0])) {
      from = source(producer.inputs[0]);
    }
    paramsFrom.set(t, from);
    return from;
  };
  for (const t of quantized) source(t);
  const calibrated = [...new Set(paramsFrom.values())];
  return { quantized: [...quantized], calibrated, paramsFrom };
}

export function activationParams(r: Range): ActivationParams {
  const span = r.hi - r.lo;
  const scale = Math.fround(span > 0 ? span / 255 : 1);
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-r.lo / scale)));
  return { scale, zeroPoint };
}

export interface QuantizedGraph {
  graph: Graph;
  activations: Map<string, ActivationParams>;
  weightTensors: number;
}

export function quantizeGraph(
  fp32: Graph,
  plan: QuantizationPlan,
  ranges: Map<string, Range>,
): QuantizedGraph {
  const params = new Map<string, ActivationParams>();
  for (const t of plan.quantized) {
    const from = plan.paramsFrom.get(t) as string;
    const r = ranges.get(from);
    if (!r) throw new Error(`no calibrated range for tensor "${from}"`);
    params.set(t, activationParams(r));
  }

  const g = new Graph(fp32.name);
  for (const n of fp32.nodes) for (const o of n.outputs) g.unique(o);
  for (const i of fp32.inputs) g.addInput(i);
  for (const o of fp32.outputs) g.addOutput(o);
  let weightTensors = 0;

  const dequantized = new Map<string, string>();
  const addQdq = (t: string) => {
    const p = params.get(t);
    if (!p) return;
    // Short suffixes: these names repeat in every Q/DQ pair, which is a fair share of a small model.
    const scale = g.floatConst(`${t}/s`, [p.scale], []);
    const zp = g.addInitializer(`${t}/z`, 'uint8', [], Uint8Array.of(p.zeroPoint));
    const q = g.add('QuantizeLinear', [t, scale, zp], {}, `${t}/q`);
    dequantized.set(t, g.add('DequantizeLinear', [q, scale, zp], {}, `${t}/dq`));
  };

  for (const i of fp32.inputs) addQdq(i.name);
  for (const node of fp32.nodes) {
    const inputs = node.inputs.map((t) => dequantized.get(t) ?? t);
    if (node.op === 'Conv' || node.op === 'Gemm') {
      const x = params.get(node.inputs[0]);
      if (x) {
        const transB = node.attrs.transB;
        // Per output channel: Conv weights are [out, in, kh, kw]; Gemm's B is [in, out] unless transposed.
        const axis = node.op === 'Conv' || (transB && 'i' in transB && transB.i === 1) ? 0 : 1;
        const w = fp32.initializers.get(node.inputs[1]);
        if (!w) throw new Error(`${node.op} "${node.name}": weights must be an initializer`);
        const wq = quantizeWeights(g, node.inputs[1], w.dims, w.data as Float32Array, axis);
        inputs[1] = wq.dequantized;
        const b = node.inputs[2] ? fp32.initializers.get(node.inputs[2]) : undefined;
        if (b) inputs[2] = quantizeBias(g, node.inputs[2], b.data as Float32Array, x.scale, wq.scales);
        weightTensors++;
      }
    }
    g.nodes.push({ ...node, name: g.unique(node.name), inputs });
    for (const o of node.outputs) addQdq(o);
  }
  // Copy the float initializers still referenced (shapes, pads, fp32 params of float ops).
  const used = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const [name, t] of fp32.initializers) if (used.has(name)) g.initializers.set(name, t);
  return { graph: g, activations: params, weightTensors };
}

function quantizeWeights(g: Graph, name: string, dims: number[], w: Float32Array, axis: number) {
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const absMax = new Float64Array(channels);
  w.forEach((v, i) => {
    const c = channelOf(i);
    absMax[c] = Math.max(absMax[c], Math.abs(v));
  });
  const scales = Float32Array.from(absMax, (m) => (m > 0 ? m / 127 : 1));
  const q = Int8Array.from(w, (v, i) => Math.max(-127, Math.min(127, Math.round(v / scales[channelOf(i)]))));
  const qName = g.addInitializer(`${name}/q`, 'int8', dims, q);
  const scaleName = g.addInitializer(`${name}/s`, 'float32', [channels], scales);
  // Symmetric, so all zeros; spelled out because ORT's QGemm requires a zero point shaped like the scale.
  const zpName = g.addInitializer(`${name}/z`, 'int8', [channels], new Int8Array(channels));
  const dequantized = g.add(
    'DequantizeLinear',
    [qName, scaleName, zpName],
    { axis: { i: axis } },
    `${name}/dq`,
  );
  return { dequantized, scales };
}

function quantizeBias(
  g: Graph,
  name: string,
  b: Float32Array,
  inputScale: number,
  weightScales: Float32Array,
): string {
  const scales = Float32Array.from(weightScales, (s) => inputScale * s);
  const q = Int32Array.from(b, (v, i) => Math.round(v / scales[i]));
  const qName = g.addInitializer(`${name}/q`, 'int32', [b.length], q);
  const scaleName = g.addInitializer(`${name}/s`, 'float32', [b.length], scales);
  return g.add('DequantizeLinear', [qName, scaleName], { axis: { i: 0 } }, `${name}/dq`);
}
