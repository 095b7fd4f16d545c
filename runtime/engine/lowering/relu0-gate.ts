// A ReLU-zero gate (docs/relu-zero.md) is lowered as a whole: its predictor and decision become one gate op
// (shared by the decisions of one predictor), and its Where(open, conv, 0) marks the gated conv to compute
// only where the mask is open.
import { findGates, type GateSite } from '../../models/gated/pattern.ts';
import type { Graph, GraphNode } from '../../models/onnx/graph.ts';
import { intsAttr, windowAttrs, windowOut } from './attributes.ts';
import { type GateMask, type GateSubgraphs, type LoweringContext, LoweringError } from './context.ts';
import { channelScales, convBias, f32, ohwiOf } from './quantization.ts';

/** Every gate's nodes (predictor to decision, with their Q/DQ; not the predictor's weight constants or
 * its input), mapped to their gate, and the gates by their Where nodes. */
export function gateSubgraphs(graph: Graph): GateSubgraphs {
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

/** A gate decision's mask: the site's gate op (one per predictor) and, for a block's conv1, the
 * dilation the conv applies to it. */
export function lowerGateMask(ctx: LoweringContext, site: GateSite): GateMask {
  const { predictor, tiles, slice, dilate, open } = site;
  const threshold = ctx.scalar(open, open.inputs[1], 'float32');
  let gate = ctx.gateOps.get(predictor);
  if (!gate) {
    const x = ctx.activation(predictor, 0);
    const w = ctx.constant(predictor, 1, 'weights');
    const [cout, cin, kh, kw] = w.values.dims;
    if (w.values.type !== 'int8' || cout !== 1 || cin !== x.shape[2])
      throw new LoweringError(predictor, `weights must be int8 [1, ${x.shape[2]}, kh, kw]`);
    const logitsQ = ctx.quantizerOf(predictor.outputs[0]);
    if (!logitsQ) throw new LoweringError(predictor, 'the predictor output must be quantized');
    const logits = ctx.qparams(logitsQ);
    const { stride, pads } = windowAttrs(predictor);
    const [sw] = channelScales(predictor, w, 1, 0);
    const bias = predictor.inputs[2]
      ? convBias(predictor, ctx.constant(predictor, 2, 'bias'), x.scale, Float32Array.of(sw))[0]
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
      ? sliceEnds(ctx.graph, slice)
      : [
          windowOut(predictor, x.shape[0], kh, stride[0], pads[0] + pads[2]),
          windowOut(predictor, x.shape[1], kw, stride[1], pads[1] + pads[3]),
        ];
    // The graph requantizes the cropped tile logits when a dilation max-pool reads them too.
    const decisionQ = slice ? ctx.quantizerOf(slice.outputs[0]) : undefined;
    const decision = decisionQ ? ctx.qparams(decisionQ) : undefined;
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
    ctx.push(gate);
    ctx.gateOps.set(predictor, gate);
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

/** Where(open, x, 0): the conv behind x computes only where its gate's mask is open. */
export function lowerWhere(ctx: LoweringContext, node: GraphNode): void {
  const mask = ctx.masks.get(node.inputs[0]);
  const x = ctx.activation(node, 1);
  const conv = ctx.producedBy.get(x.id);
  const site = ctx.gates.sites.get(node);
  if (!mask || !site) throw new LoweringError(node, 'only a ReLU-zero gate, Where(open, x, 0), is supported');
  // The conv skips closed pixels, which is only sound when nothing else reads its output.
  if (conv?.op !== 'conv' || !ctx.soleReader(node.inputs[1]))
    throw new LoweringError(node, 'a gate must alone consume a Conv output (or its fused ReLU)');
  ctx.pending.set(node.outputs[0], (params) => {
    ctx.sameParams(node, x, params, 'a gate');
    ctx.gateList.push({ conv: site.conv.name, open: node.inputs[0], mask: mask.id, dilate: mask.dilate });
    conv.mask = mask.id;
    if (mask.dilate > 1) conv.maskDilate = mask.dilate;
    // The gate reads only the site input, which exists before the conv: run it just before.
    const at = ctx.ops.indexOf(mask.gate);
    const before = ctx.ops.indexOf(conv);
    if (at > before) ctx.ops.splice(before, 0, ...ctx.ops.splice(at, 1));
    return x;
  });
}

function sliceEnds(graph: Graph, slice: GraphNode): [number, number] {
  const ends = graph.initializers.get(slice.inputs[2]);
  const axes = graph.initializers.get(slice.inputs[3]);
  if (ends?.type !== 'int64' || axes?.type !== 'int64' || Array.from(axes.data, Number).join() !== '2,3')
    throw new LoweringError(slice, 'the crop must be an int64 Slice over axes [2, 3]');
  const [h, w] = Array.from(ends.data as BigInt64Array, Number);
  return [h, w];
}
