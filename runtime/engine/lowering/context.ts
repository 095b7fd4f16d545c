// What the op lowerers share while lowering one graph: the plan being built, the quantized tensors found so
// far, and the checks every lowerer makes of its inputs.
import type { GateSite } from '../../models/gated/pattern.ts';
import type { Graph, GraphNode, Tensor } from '../../models/onnx/graph.ts';
import type { NetworkPlan, PlanOp, Shape3 } from '../kernels-addon.ts';

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

export interface QParams {
  scale: number;
  zp: number;
}

/** A uint8 plan tensor. */
export interface QTensor extends QParams {
  id: number;
  shape: Shape3;
}

/** A DequantizeLinear of an initializer (weights, bias). */
export interface DqConst {
  values: Tensor;
  scales: Float32Array;
  zps?: Tensor;
  axis: number;
}

/** A float result waiting for the QuantizeLinear that gives its output parameters. */
export type Pending = (out: QParams) => QTensor;

/** Every gate's nodes mapped to their gate, and the gates by their Where nodes (./relu0-gate.ts). */
export interface GateSubgraphs {
  nodes: Map<GraphNode, GateSite>;
  sites: Map<GraphNode, GateSite>;
}

/** A gate decision's mask: the plan tensor holding it, the dilation its conv applies, the gate op. */
export interface GateMask {
  id: number;
  dilate: number;
  gate: PlanOp;
}

export class LoweringContext {
  readonly ops: PlanOp[] = [];
  readonly producedBy = new Map<number, PlanOp>();
  /** QuantizeLinear outputs (uint8) and DequantizeLinear outputs (floats that are exactly a plan tensor). */
  readonly u8 = new Map<string, QTensor>();
  readonly dq = new Map<string, QTensor>();
  readonly consts = new Map<string, DqConst>();
  readonly pending = new Map<string, Pending>();
  fc: { name: string; size: number; id: number } | undefined;
  readonly tensorNames: string[] = [];
  macs = 0;
  /** The graph input, and its quantization once its QuantizeLinear is reached. */
  readonly input: { name: string; shape: Shape3 };
  inputParams: QParams | undefined;
  /** Plan ops of each predictor, and the mask tensor of each gate decision (Greater output). */
  readonly gateOps = new Map<GraphNode, PlanOp>();
  readonly masks = new Map<string, GateMask>();
  readonly gateList: LoweredModel['gates'] = [];
  private tensors = 1;
  private readonly consumers: Map<string, GraphNode[]>;
  private readonly producers: Map<string, GraphNode>;

  constructor(
    readonly graph: Graph,
    readonly gates: GateSubgraphs,
  ) {
    this.consumers = graph.consumers();
    this.producers = graph.producers();
    if (graph.inputs.length !== 1)
      throw new LoweringError('graph', `${graph.inputs.length} inputs, expected 1`);
    const gi = graph.inputs[0];
    const [, channels, height, width] = gi.shape ?? [];
    if (gi.type !== 'float32' || gi.shape?.length !== 4 || ![channels, height, width].every(Number.isInteger))
      throw new LoweringError('graph', `input "${gi.name}" must be float [N, C, H, W] with fixed C, H, W`);
    this.input = { name: gi.name, shape: [height as number, width as number, channels as number] };
  }

  users(t: string): GraphNode[] {
    return this.consumers.get(t) ?? [];
  }

  /** Appends `op`, giving it the next plan tensor as output. */
  push(op: PlanOp): number {
    op.output = this.tensors++;
    this.ops.push(op);
    this.producedBy.set(op.output, op);
    return op.output;
  }

  emit(op: PlanOp, shape: Shape3, out: QParams): QTensor {
    return { id: this.push(op), shape, ...out };
  }

  scalar(node: GraphNode, name: string | undefined, type: Tensor['type']): number {
    const t = name ? this.graph.initializers.get(name) : undefined;
    if (!t || t.type !== type || t.data.length !== 1)
      throw new LoweringError(node, `"${name}" must be a ${type} scalar initializer`);
    return Number(t.data[0]);
  }

  /** The scale and zero point of a QuantizeLinear or DequantizeLinear. */
  qparams(node: GraphNode): QParams {
    return {
      scale: this.scalar(node, node.inputs[1], 'float32'),
      zp: node.inputs[2] ? this.scalar(node, node.inputs[2], 'uint8') : 0,
    };
  }

  /** Input `i` of `node` as the uint8 plan tensor it was dequantized from. */
  activation(node: GraphNode, i: number): QTensor {
    const t = this.dq.get(node.inputs[i]);
    if (!t)
      throw new LoweringError(
        node,
        `input "${node.inputs[i]}" is not dequantized from a uint8 tensor (a float model, or an op on float data)`,
      );
    return t;
  }

  constant(node: GraphNode, i: number, what: string): DqConst {
    const c = this.consts.get(node.inputs[i]);
    if (!c)
      throw new LoweringError(
        node,
        `${what} "${node.inputs[i]}" must be a DequantizeLinear of an initializer`,
      );
    return c;
  }

  /** The dequantized tensor `t` and the uint8 tensor behind it have no other reader, so the op that
   * produced it may be changed (a ReLU fused into it, closed pixels left out). */
  soleReader(t: string): boolean {
    const dqNode = this.producers.get(t);
    return this.users(t).length === 1 && dqNode !== undefined && this.users(dqNode.inputs[0]).length === 1;
  }

  sameParams(node: GraphNode, a: QParams, b: QParams, what: string): void {
    if (a.scale !== b.scale || a.zp !== b.zp)
      throw new LoweringError(node, `${what} needs equal input and output quantization parameters`);
  }

  quantizerOf(t: string): GraphNode | undefined {
    return this.users(t).find((n) => n.op === 'QuantizeLinear');
  }

  /** The lowered model, once every node is. */
  result(): LoweredModel {
    const { input, inputParams, fc, graph } = this;
    if (!inputParams) throw new LoweringError('graph', `input "${input.name}" is not quantized`);
    const output = graph.outputs[0];
    if (graph.outputs.length !== 1 || !fc || fc.name !== output.name)
      throw new LoweringError('graph', 'the single graph output must be produced by a final Gemm (fc)');
    return {
      plan: { tensors: this.tensors, input: { id: 0, shape: input.shape }, output: fc.id, ops: this.ops },
      input: {
        name: input.name,
        channels: input.shape[2],
        height: input.shape[0],
        width: input.shape[1],
        scale: inputParams.scale,
        zeroPoint: inputParams.zp,
      },
      output: { name: fc.name, size: fc.size },
      tensorNames: this.tensorNames,
      gates: this.gateList,
      macs: this.macs,
    };
  }
}
