// The ONNX pattern of a ReLU-zero gate (docs/relu-zero.md), found by structure in the fp32 or the int8
// graph: what the native kernel engine lowers to its gate ops, and what tests inspect.
import type { Graph, GraphNode } from '../onnx/graph.ts';

/** One gated conv as the kernel engine sees it. */
export interface GateSite {
  /** The gated Conv node. */
  conv: GraphNode;
  /** The Relu between the conv and the Where, for convs that feed a ReLU. */
  relu?: GraphNode;
  /** The predictor Conv (one output channel) on the site input: the stem's or the block's input. */
  predictor: GraphNode;
  /** AveragePool of the predictor's pixel logits to tile logits (tile granularity only). */
  tiles?: GraphNode;
  /** Slice cropping the tiles, spread back over their pixels, to the conv's output (with tiles). */
  slice?: GraphNode;
  /** MaxPool 3x3 of the logits: a block's conv1 follows its conv2 mask dilated by one pixel. */
  dilate?: GraphNode;
  /** Greater(logits, threshold): true = compute this output pixel. */
  open: GraphNode;
  /** Where(open, conv or relu output, 0). */
  where: GraphNode;
}

/** Finds every gate (docs/relu-zero.md) by structure; Q/DQ pairs are looked through, so it reads the
 * quantized graph too. */
export function findGates(g: Graph): GateSite[] {
  const producers = g.producers();
  const through = (t: string): GraphNode | undefined => {
    let n = producers.get(t);
    while (n && (n.op === 'DequantizeLinear' || n.op === 'QuantizeLinear')) n = producers.get(n.inputs[0]);
    return n;
  };
  const isZero = (t: string) => {
    const c = g.initializers.get(t);
    return c !== undefined && c.data.length === 1 && Number(c.data[0]) === 0;
  };
  const sites: GateSite[] = [];
  for (const where of g.nodes) {
    if (where.op !== 'Where' || !isZero(where.inputs[2])) continue;
    const open = producers.get(where.inputs[0]);
    if (open?.op !== 'Greater') continue;
    let node = through(open.inputs[0]);
    const dilate = node?.op === 'MaxPool' ? node : undefined;
    if (dilate) node = through(dilate.inputs[0]);
    let tiles: GraphNode | undefined;
    const slice = node?.op === 'Slice' ? node : undefined;
    if (slice) {
      const resize = through(slice.inputs[0]);
      tiles = resize?.op === 'Resize' ? through(resize.inputs[0]) : undefined;
      node = tiles?.op === 'AveragePool' ? through(tiles.inputs[0]) : undefined;
    }
    const predictor = node;
    let conv = through(where.inputs[1]);
    const relu = conv?.op === 'Relu' ? conv : undefined;
    if (relu) conv = through(relu.inputs[0]);
    if (predictor?.op !== 'Conv' || conv?.op !== 'Conv') continue;
    sites.push({ conv, relu, predictor, tiles, slice, dilate, open, where });
  }
  return sites;
}
