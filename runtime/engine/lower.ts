// Lowers an int8 QDQ model (as tools/models/quantize/qdq.ts writes it) into the native kernels' Network
// plan: each QuantizeLinear closes one integer op, whose input and output parameters come from the
// DequantizeLinear / QuantizeLinear pairs around it. The nodes are visited in order, each by its op's
// lowerer (lowering/ops.ts); anything outside their patterns throws a LoweringError naming the node, and
// the caller keeps ONNX Runtime for that model. A ReLU-zero gate's nodes are lowered as a whole when its
// decision is reached (lowering/relu0-gate.ts).
import { type OnnxModel, readOnnx } from '../models/onnx/reader.ts';
import { type LoweredModel, LoweringContext, LoweringError } from './lowering/context.ts';
import { OP_LOWERERS } from './lowering/ops.ts';
import { gateSubgraphs, lowerGateMask } from './lowering/relu0-gate.ts';

export { type LoweredModel, LoweringError } from './lowering/context.ts';
export { quantizeU8 } from './lowering/quantization.ts';

export function lowerQdqModel(model: Uint8Array | OnnxModel): LoweredModel {
  const { graph } = model instanceof Uint8Array ? readOnnx(model) : model;
  const ctx = new LoweringContext(graph, gateSubgraphs(graph));
  for (const node of graph.nodes) {
    if (node.domain) throw new LoweringError(node, `operator domain "${node.domain}" is not supported`);
    const gate = ctx.gates.nodes.get(node);
    if (gate) {
      // The gate's nodes are computed by its ops, emitted once its decision is reached.
      if (node === gate.open) ctx.masks.set(node.outputs[0], lowerGateMask(ctx, gate));
      continue;
    }
    const lower = OP_LOWERERS.get(node.op);
    if (!lower) throw new LoweringError(node, 'operator not supported by the native kernels');
    lower(ctx, node);
    const out = node.outputs[0];
    const users = ctx.users(out);
    if (ctx.pending.has(out) && (users.length !== 1 || users[0].op !== 'QuantizeLinear'))
      throw new LoweringError(node, 'its float output must feed exactly one QuantizeLinear');
  }
  return ctx.result();
}
